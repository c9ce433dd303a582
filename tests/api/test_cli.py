"""The command line: version, serve (flags, env vars, the listening line, bad options) and
`memfuse db status|reset|validate|recreate` on a stopped server's data dir."""

import json
import os
import secrets
import sqlite3
import subprocess
import time

import pytest

from conftest import PG, child_env, free_port, memfuse_bin, pg_dsn_for, run_cli, sqlite_only
from helpers import (add_knowledge, add_messages, create_agent, create_session, create_user, msgs, ok)

COUNT_KEYS = {"users", "agents", "sessions", "rounds", "messages", "knowledge", "api_keys"}


def db_status(data_dir):
    p = run_cli("db", "status", "--data-dir", data_dir)
    assert p.returncode == 0, f"db status rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    try:
        st = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"db status did not print one JSON object: {p.stdout!r}")
    assert set(st) == {"store", "path", "schema_version", "counts"}, sorted(st)
    assert isinstance(st["path"], str)
    if PG:  # the database of this data dir, described without secrets
        assert st["store"] == "postgres"
        assert "dbname=" in st["path"] and "password" not in st["path"], st["path"]
        st["file"] = None
    else:
        assert st["store"] == "sqlite"
    # "path" should be the database file itself; test_db_status_path_is_a_file checks that strictly,
    # here an "sqlite:" prefix is tolerated so the other db tests still run.
    if not PG:
        st["file"] = st["path"][len("sqlite:"):] if st["path"].startswith("sqlite:") else st["path"]
        assert os.path.isfile(st["file"]), st["path"]
    assert isinstance(st["schema_version"], int) and st["schema_version"] >= 1
    assert COUNT_KEYS <= set(st["counts"]), sorted(st["counts"])  # extra counts (e.g. vectors) are fine
    return st


def populate(api):
    """2 users, 1 agent, 2 sessions, 3 rounds, 5 messages, 2 knowledge items, 1 api key."""
    u1, u2 = create_user(api), create_user(api)
    a = create_agent(api)
    s1, s2 = create_session(api, u1["id"], a["id"]), create_session(api, u2["id"], a["id"])
    add_messages(api, s1["id"], msgs("one", "two", role="alt"))
    add_messages(api, s1["id"], msgs("three"))
    add_messages(api, s2["id"], msgs("four", "five", role="alt"))
    add_knowledge(api, u1["id"], ["k1", "k2"])
    ok(api.post(f"/users/{u2['id']}/api-keys", json={"name": "k"}), 201)
    return u1


def test_version(api):
    p = run_cli("version", timeout=10)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip(), "version prints nothing"
    version = ok(api.get("/health"))["version"]
    assert version in p.stdout, f"health version {version!r} not in `memfuse version` output {p.stdout!r}"


def test_listening_line_on_stdout(server):
    line = f"memfuse listening on http://127.0.0.1:{server.port}"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and line not in server.stdout():
        time.sleep(0.05)
    out = server.stdout()
    assert line in out, f"stdout was {out!r} (is stdout flushed after the line?)"
    assert out.count("memfuse listening on") == 1


def test_config_from_environment(spawn):
    srv = spawn(config_via_env=True, name="env")
    api = srv.api()
    u = create_user(api)
    assert ok(api.get(f"/users/{u['id']}"))["user"] == u
    srv.stop()
    assert db_status(srv.data_dir)["counts"]["users"] == 1, "MEMFUSE_DATA_DIR was not used"


def test_auth_from_environment(spawn):
    admin = "env-admin-" + secrets.token_hex(8)
    srv = spawn(env={"MEMFUSE_AUTH": "1", "MEMFUSE_ADMIN_KEY": admin}, name="env-auth")
    assert srv.api().get("/users").status_code == 401
    assert srv.api(admin).get("/users").status_code == 200


def test_missing_data_dir_is_created(spawn, tmp_path):
    nested = tmp_path / "does" / "not" / "exist"
    srv = spawn(data_dir=str(nested), name="mkdir")
    create_user(srv.api())
    srv.stop()
    assert db_status(str(nested))["counts"]["users"] == 1


def test_explicit_store_and_threads_flags(spawn):
    srv = spawn("--store", "sqlite", "--threads", "2", "--max-body", "2048", name="flags")
    api = srv.api()
    assert ok(api.get("/health"))["status"] == "ok"
    r = api.post("/users", json={"name": "x", "description": "y" * 3000})
    assert r.status_code == 413


def test_bad_options_exit_non_zero(tmp_path):
    port = str(free_port())
    loop = ["--host", "127.0.0.1", "--data-dir", str(tmp_path)]
    for args in (["serve", "--port", "notaport", *loop],
                 ["serve", "--port", "70000", *loop],
                 ["serve", "--port", port, "--no-such-flag", *loop],
                 ["serve", "--port", port, "--threads", "zero", *loop],
                 ["frobnicate"],
                 ["db", "explode", "--data-dir", str(tmp_path)]):
        try:
            p = subprocess.run([memfuse_bin(), *args], capture_output=True, text=True, timeout=10,
                               env=child_env())
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`memfuse {' '.join(args)}` did not exit (it should refuse the options)")
        assert p.returncode != 0, f"`memfuse {' '.join(args)}` exited 0"


@sqlite_only
def test_db_status_path_is_a_file(spawn):
    srv = spawn(name="db-path")
    srv.stop()
    st = db_status(srv.data_dir)
    assert os.path.isfile(st["path"]), f"db status \"path\" should be the database file, got {st['path']!r}"
    assert os.path.realpath(st["path"]).startswith(os.path.realpath(srv.data_dir))


def test_db_status_reset_validate_recreate(spawn):
    srv = spawn(name="db")
    api = srv.api()
    populate(api)
    srv.stop()
    st = db_status(srv.data_dir)
    assert {k: st["counts"][k] for k in COUNT_KEYS} == {"users": 2, "agents": 1, "sessions": 2, "rounds": 3, "messages": 5, "knowledge": 2,
                            "api_keys": 1}
    if not PG:
        assert os.path.realpath(st["file"]).startswith(os.path.realpath(srv.data_dir))
    p = run_cli("db", "validate", "--data-dir", srv.data_dir)
    assert p.returncode == 0, f"validate on a healthy store: rc={p.returncode}\n{p.stdout}\n{p.stderr}"

    p = run_cli("db", "reset", "--data-dir", srv.data_dir)
    assert p.returncode == 0, p.stderr
    after = db_status(srv.data_dir)
    assert all(v == 0 for v in after["counts"].values()), after["counts"]
    assert after["schema_version"] == st["schema_version"]
    assert run_cli("db", "validate", "--data-dir", srv.data_dir).returncode == 0

    # the server starts on the reset store and works from scratch
    srv.restart()
    api = srv.api()
    assert ok(api.get("/users"))["users"] == []
    populate(api)
    srv.stop()
    assert db_status(srv.data_dir)["counts"]["messages"] == 5

    p = run_cli("db", "recreate", "--data-dir", srv.data_dir)
    assert p.returncode == 0, p.stderr
    st2 = db_status(srv.data_dir)
    assert all(v == 0 for v in st2["counts"].values()), st2["counts"]
    assert run_cli("db", "validate", "--data-dir", srv.data_dir).returncode == 0
    srv.restart()
    assert ok(srv.api().get("/users"))["users"] == []


@sqlite_only
def test_db_validate_detects_a_missing_table(spawn):
    srv = spawn(name="db-drop")
    populate(srv.api())
    srv.stop()
    path = db_status(srv.data_dir)["file"]
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        victim = "messages" if "messages" in tables else tables[0]
        con.execute(f'DROP TABLE "{victim}"')
        con.commit()
    finally:
        con.close()
    p = run_cli("db", "validate", "--data-dir", srv.data_dir)
    assert p.returncode != 0, f"validate passed with table {victim!r} dropped"
    # recreate repairs it
    assert run_cli("db", "recreate", "--data-dir", srv.data_dir).returncode == 0
    assert run_cli("db", "validate", "--data-dir", srv.data_dir).returncode == 0


@pytest.mark.skipif(not PG, reason="PostgreSQL store only")
def test_db_validate_detects_a_missing_table_pg(spawn):
    srv = spawn(name="db-drop-pg")
    populate(srv.api())
    srv.stop()
    subprocess.run(["psql", pg_dsn_for(srv.data_dir), "-qAtX", "-v", "ON_ERROR_STOP=1", "-c",
                    "DROP TABLE knowledge CASCADE"], check=True, capture_output=True, timeout=30)
    p = run_cli("db", "validate", "--data-dir", srv.data_dir)
    assert p.returncode != 0, "validate passed with table knowledge dropped"
    assert "knowledge" in p.stdout + p.stderr
    assert run_cli("db", "recreate", "--data-dir", srv.data_dir).returncode == 0
    assert run_cli("db", "validate", "--data-dir", srv.data_dir).returncode == 0


@sqlite_only
def test_db_validate_detects_corruption(spawn):
    srv = spawn(name="db-corrupt")
    api = srv.api()
    populate(api)
    u = create_user(api)
    s = create_session(api, u["id"], create_agent(api)["id"])
    for i in range(10):
        add_messages(api, s["id"], msgs(*[f"filler text {i}-{j} " * 20 for j in range(10)]))
    srv.stop()
    path = db_status(srv.data_dir)["file"]
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(100)  # keep the 100-byte header, scribble over every page
        f.write(secrets.token_bytes(max(0, size - 100)))
    p = run_cli("db", "validate", "--data-dir", srv.data_dir, timeout=60)
    assert p.returncode != 0, "validate passed on a scribbled database file"
