"""Tenant isolation battery (issue 8, SPEC §1), with auth on.

Every route of the API is probed against one user's ("the victim's") records with four kinds of
credentials — another user's key, no key, a revoked (deleted) key and an expired key — and the answers
must be exactly those of SPEC §1: 403 "Forbidden" for another user's key (or its own, scoped answer where
the route is scoped to the caller), 401 "Authentication failed: Missing API key" without a key, 401
"Authentication failed: Invalid API key" for a revoked or expired key. Before and after the probes the
full state of both users and the global lists is read back by the admin: nothing was changed, and no
answer carried any of the victim's data. The servers run with the LLM memory layers on (against the fake
LLM server, tests/api/fakellm.py), so every tenant also has episodes and facts, with vectors, to protect.

Then a user is deleted and nothing of it can be found by any route (lists, gets, query by keyword and by
vector, chunks, keys, facts, episodes) nor counted by `memfuse db status`.

THE ROUTE TABLE (ROUTES below) is the one place to extend when a route is added to the server: append one
Route(...) line. test_route_table_covers_every_server_route reads src/api/routes.c and fails, naming the
route, when the server has a route this table does not probe.
"""

import datetime
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional

import pytest

from conftest import REPO, run_cli
from fakellm import LAYER_FLAGS, FakeLLM, wait_for
from helpers import (add_knowledge, add_messages, create_agent, create_session, create_user, describe, error, msgs,
                     ok, uniq, word)

MISSING = "Authentication failed: Missing API key"
INVALID = "Authentication failed: Invalid API key"

# How a route treats a valid key of a user other than the one whose records the request names:
OWN = "own"        # the records belong to the user in the request: 403 "Forbidden"
ADMIN = "admin"    # admin only (creating/listing users and agents, changing agents): 403 "Forbidden"
SHARED = "shared"  # any valid key may read it (agents are not owned by a user): 200
SCOPED = "scoped"  # answers with the caller's own records only: 200 (or 404), checked by `scoped_check`
PUBLIC = "public"  # no authentication at all (health, metrics): 200 whatever the credentials


@dataclass
class Route:
    """One probe: method, path template (str.format over the victim's ids: uid sid aid mid kid key_id rid
    uname aname sname word), an optional body/params builder, how it treats another user's key, and the
    status the owner (or the admin, for ADMIN routes) gets — the positive control that the probe is a
    valid request and that a 403 is not some other refusal."""
    method: str
    path: str
    access: str = OWN
    body: Optional[Callable] = None      # t -> JSON body
    params: Optional[Callable] = None    # t -> query parameters
    owner_status: int = 200
    phase: int = 0                       # order of the positive control: 0 reads/writes, 1-4 deletions
    other_status: Optional[int] = None   # for SCOPED: the status another user's key gets
    other_message: Optional[str] = None  # for SCOPED with an error status: its exact message

    @property
    def id(self):
        q = "?" + ",".join(sorted(self.params(SAMPLE))) if self.params else ""
        return f"{self.method} {self.path}{q}"


# --------------------------------------------------------------------------------------------------------
# THE ROUTE TABLE. Append a line for every new route (see the module docstring).
ROUTES = [
    Route("GET", "/health", PUBLIC),
    Route("GET", "/metrics", PUBLIC),
    Route("GET", "/admin/stats", ADMIN),
    # users (SPEC §3)
    Route("GET", "/users", ADMIN),
    Route("GET", "/users", ADMIN, params=lambda t: {"name": t.uname}),
    Route("POST", "/users", ADMIN, body=lambda t: {"name": uniq("intruder")}, owner_status=201),
    Route("GET", "/users/{uid}"),
    Route("PUT", "/users/{uid}", body=lambda t: {"description": "changed by " + uniq()}),
    Route("DELETE", "/users/{uid}", owner_status=204, phase=4),
    # agents (SPEC §4)
    Route("GET", "/agents", ADMIN),
    Route("GET", "/agents", ADMIN, params=lambda t: {"name": t.aname}),
    Route("POST", "/agents", ADMIN, body=lambda t: {"name": uniq("intruder")}, owner_status=201),
    Route("GET", "/agents/{aid}", SHARED),
    Route("PUT", "/agents/{aid}", ADMIN, body=lambda t: {"description": "changed"}),
    Route("DELETE", "/agents/{aid}", ADMIN, phase=4),
    # sessions (SPEC §5)
    Route("GET", "/sessions", SCOPED, other_status=200),
    Route("GET", "/sessions", SCOPED, params=lambda t: {"agent_id": t.aid}, other_status=200),
    Route("GET", "/sessions", SCOPED, params=lambda t: {"name": t.sname}, other_status=404,
          other_message="Session with name '{sname}' not found"),
    Route("GET", "/sessions", params=lambda t: {"user_id": t.uid}),
    Route("GET", "/sessions", params=lambda t: {"name": t.sname, "user_id": t.uid}),
    Route("POST", "/sessions", body=lambda t: {"user_id": t.uid, "agent_id": t.aid}, owner_status=201),
    Route("GET", "/sessions/{sid}"),
    Route("PUT", "/sessions/{sid}", body=lambda t: {"name": uniq("renamed")}),
    Route("DELETE", "/sessions/{sid}", phase=3),
    # messages (SPEC §6)
    Route("GET", "/sessions/{sid}/messages"),
    Route("GET", "/sessions/{sid}/messages", params=lambda t: {"limit": "100", "buffer_only": "true"}),
    Route("POST", "/sessions/{sid}/messages", body=lambda t: {"messages": msgs("intruder")}, owner_status=201),
    Route("POST", "/sessions/{sid}/messages/read", body=lambda t: {"message_ids": t.mids}),
    Route("PUT", "/sessions/{sid}/messages",
          body=lambda t: {"message_ids": t.mids[:1], "new_messages": msgs(f"{t.word} rewritten")}),
    Route("DELETE", "/sessions/{sid}/messages", body=lambda t: {"message_ids": t.mids[1:2]}, phase=1),
    # knowledge (SPEC §7)
    Route("GET", "/users/{uid}/knowledge"),
    Route("POST", "/users/{uid}/knowledge", body=lambda t: {"knowledge": ["intruder"]}, owner_status=201),
    Route("POST", "/users/{uid}/knowledge/read", body=lambda t: {"knowledge_ids": t.kids}),
    Route("PUT", "/users/{uid}/knowledge", body=lambda t: {"knowledge_ids": t.kids, "new_knowledge": ["hacked"]}),
    Route("DELETE", "/users/{uid}/knowledge", body=lambda t: {"knowledge_ids": t.kids}, phase=1),
    # query (SPEC §8)
    Route("POST", "/users/{uid}/query", body=lambda t: {"query": t.word}),
    Route("POST", "/users/{uid}/query", body=lambda t: {"query": t.word, "store_type": "vector"}),
    Route("POST", "/users/{uid}/query", body=lambda t: {"query": t.word, "store_type": "keyword",
                                                       "session_id": t.sid, "agent_id": t.aid}),
    # API keys (SPEC §9)
    Route("GET", "/users/{uid}/api-keys"),
    Route("POST", "/users/{uid}/api-keys", body=lambda t: {"name": "intruder"}, owner_status=201),
    Route("DELETE", "/users/{uid}/api-keys/{key_id}", phase=2),
    # introspection (SPEC §10)
    Route("GET", "/sessions/{sid}/chunks"),
    Route("GET", "/rounds/{rid}/chunks"),
    Route("GET", "/chunks/stats", params=lambda t: {"user_id": t.uid}),
    Route("GET", "/chunks/stats", params=lambda t: {"session_id": t.sid}),
    Route("GET", "/chunks/stats", SCOPED, other_status=200),
    # (ext) the LLM memory layers
    Route("GET", "/users/{uid}/facts"),
    Route("GET", "/users/{uid}/facts", params=lambda t: {"history": "true"}),
    Route("GET", "/users/{uid}/facts/{fid}"),
    Route("DELETE", "/users/{uid}/facts/{fid}", phase=1),
    Route("GET", "/users/{uid}/episodes"),
    Route("GET", "/users/{uid}/episodes", params=lambda t: {"session_id": t.sid, "order": "asc"}),
]
# --------------------------------------------------------------------------------------------------------

SAMPLE = SimpleNamespace(uid="u", sid="s", aid="a", mid="m", kid="k", key_id="key", rid="r", uname="un",
                         aname="an", sname="sn", word="w", mids=["m"], kids=["k"], fid="f")


def fill(route, t):
    ctx = {k: v for k, v in vars(t).items() if isinstance(v, str)}
    path = route.path.format(**ctx)
    kw = {}
    if route.body:
        kw["json"] = route.body(t)
    if route.params:
        kw["params"] = route.params(t)
    return path, kw


def send(api, route, t):
    path, kw = fill(route, t)
    if path == "/metrics":
        path = api.root + "/metrics"
    return api.request(route.method, path, **kw)


# --------------------------------------------------------------------------------------------------------
# Fixtures: one auth server, an agent, tenants with messages, knowledge, a key, a round and vectors


@pytest.fixture(scope="module")
def fake_llm():
    f = FakeLLM()
    yield f
    f.stop()


def layered_server(spawner, fake, name):
    """An auth server with the LLM layers on: every add is one flush, so each tenant gets episodes and facts."""
    admin_key = "admin-" + secrets.token_hex(16)
    srv = spawner("--auth", "--admin-key", admin_key, "--embedder", "hash", "--llm-base-url", fake.url,
                  *LAYER_FLAGS, name=name)
    return SimpleNamespace(srv=srv, admin_key=admin_key, admin=srv.api(admin_key))


@pytest.fixture(scope="module")
def auth(module_spawn, fake_llm):
    return layered_server(module_spawn, fake_llm, "isolation")


def make_tenant(auth, agent):
    admin = auth.admin
    u = create_user(admin)
    s = create_session(admin, u["id"], agent["id"])
    w = word("iso")
    mids = add_messages(admin, s["id"], msgs(f"{w} alpha secret", f"{w} beta secret", f"{w} gamma", role="alt"))
    kids = add_knowledge(admin, u["id"], [f"{w} knowledge item"])
    key = ok(admin.post(f"/users/{u['id']}/api-keys", json={"name": "tenant"}), 201)["api_key"]
    chunks = ok(admin.get(f"/sessions/{s['id']}/chunks"))["chunks"]
    return SimpleNamespace(uid=u["id"], uname=u["name"], sid=s["id"], sname=s["name"], aid=agent["id"],
                           aname=agent["name"], word=w, mids=mids, mid=mids[0], kids=kids, kid=kids[0],
                           key=key["key"], key_id=key["id"], rid=chunks[0]["metadata"]["round_id"],
                           api=auth.srv.api(key["key"]))


def wait_layers(api, t, n_episodes, n_facts, timeout=30):
    """Until the tenant has its episodes and facts, all of them with vectors (found by a vector query), and
    records their ids on t (fid: one current fact)."""
    def ready():
        fs = ok(api.get(f"/users/{t.uid}/facts"))["facts"]
        es = ok(api.get(f"/users/{t.uid}/episodes"))["episodes"]
        if len(fs) < n_facts or len(es) < n_episodes:
            return None
        res = ok(api.post(f"/users/{t.uid}/query", json={"query": t.word, "store_type": "vector", "top_k": 100}))
        found = {r["id"] for r in res["results"]}
        ids = [f["id"] for f in fs] + [e["id"] for e in es]
        return ids if set(ids) <= found else None
    ids = wait_for(ready, timeout=timeout, what=f"{n_episodes} episodes and {n_facts} facts of {t.uid} with vectors")
    t.layer_ids = ids
    t.fid = ids[0]


def wait_vectors(api, uid, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        st = ok(api.get("/chunks/stats", params={"user_id": uid}))
        if st["by_store"]["vector"] >= st["total_chunks"] > 0:
            return st
        assert time.monotonic() < deadline, f"vectors did not catch up: {st}"
        time.sleep(0.05)


def snapshot(admin, tenants):
    """Everything the admin can read of these tenants, plus the global lists."""
    state = {"users": sorted(json.dumps(x, sort_keys=True) for x in ok(admin.get("/users"))["users"]),
             "agents": sorted(json.dumps(x, sort_keys=True) for x in ok(admin.get("/agents"))["agents"])}
    for t in tenants:
        sessions = ok(admin.get("/sessions", params={"user_id": t.uid}))["sessions"]
        per = {"user": ok(admin.get(f"/users/{t.uid}"))["user"], "sessions": sessions,
               "knowledge": ok(admin.get(f"/users/{t.uid}/knowledge"))["knowledge"],
               "keys": ok(admin.get(f"/users/{t.uid}/api-keys"))["api_keys"],
               "stats": ok(admin.get("/chunks/stats", params={"user_id": t.uid})),
               "facts": ok(admin.get(f"/users/{t.uid}/facts", params={"history": "true"}))["facts"],
               "episodes": ok(admin.get(f"/users/{t.uid}/episodes", params={"limit": 100}))["episodes"],
               "query": [(r["id"], r["content"]) for r in ok(admin.post(
                   f"/users/{t.uid}/query", json={"query": t.word, "store_type": "keyword", "top_k": 100}))["results"]]}
        for s in sessions:
            per[s["id"]] = {
                "messages": ok(admin.get(f"/sessions/{s['id']}/messages", params={"limit": 100, "order": "asc"}))[
                    "messages"],
                "chunks": ok(admin.get(f"/sessions/{s['id']}/chunks", params={"limit": 100}))["chunks"]}
        state[t.uid] = per
    return state


def markers(t):
    """Strings that only the tenant's own data contains."""
    return [t.word, t.uid, t.sid, t.uname, t.sname, t.key, *t.mids, *t.kids, *getattr(t, "layer_ids", [])]


@pytest.fixture(scope="module")
def world(auth):
    agent = create_agent(auth.admin)
    victim, attacker = make_tenant(auth, agent), make_tenant(auth, agent)
    for t in (victim, attacker):
        wait_vectors(auth.admin, t.uid)
        wait_layers(auth.admin, t, 1, 2)
    return SimpleNamespace(agent=agent, victim=victim, attacker=attacker)


# --------------------------------------------------------------------------------------------------------


def test_route_table_covers_every_server_route():
    """Fails when the server has a route that ROUTES does not probe (append it to the table)."""
    src = (REPO / "src" / "api" / "routes.c").read_text()
    server = set()
    for method, v1, pattern in re.findall(r'\{\s*"([A-Z]+)",\s*(V1\s+)?"([^"]+)"', src):
        server.add((method, ("/api/v1" if v1 else "") + pattern))
    assert len(server) >= 30, f"could not read the route table of src/api/routes.c: {sorted(server)}"
    probed = {(r.method, ("" if r.path == "/metrics" else "/api/v1") + re.sub(r"\{[a-z_]+\}", "{}", r.path))
              for r in ROUTES}
    missing = sorted(server - probed)
    assert not missing, f"routes of the server that the isolation battery does not probe: {missing} " \
                        f"(append a Route(...) line to ROUTES in {Path(__file__).name})"
    assert not sorted(probed - server), f"ROUTES probes routes the server does not have: {sorted(probed - server)}"


def expiring_key(auth, t, seconds):
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    body = {"name": "expiring", "expires_at": exp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    k = ok(auth.admin.post(f"/users/{t.uid}/api-keys", json=body), 201)["api_key"]
    return k, exp


def test_every_route_refuses_foreign_missing_revoked_and_expired_keys(auth, world):
    v, a = world.victim, world.attacker
    srv = auth.srv
    # the attacker's revoked key: works once, then is deleted
    revoked = ok(auth.admin.post(f"/users/{a.uid}/api-keys", json={"name": "revoked"}), 201)["api_key"]
    ok(srv.api(revoked["key"]).get(f"/users/{a.uid}"))
    ok(auth.admin.delete(f"/users/{a.uid}/api-keys/{revoked['id']}"))
    # the victim's own key that expires in ~2 s: it works before, and must not after
    expiring, exp = expiring_key(auth, v, 2.0)
    ok(srv.api(expiring["key"]).get(f"/users/{v.uid}"))
    # and one created already expired
    past = ok(auth.admin.post(f"/users/{v.uid}/api-keys", json={"name": "past", "expires_at": "2020-02-02T00:00:00Z"}),
              201)["api_key"]
    wait = (exp - datetime.datetime.now(datetime.timezone.utc)).total_seconds() + 0.3
    if wait > 0:
        time.sleep(wait)

    before = snapshot(auth.admin, [v, a])
    own_stats = ok(a.api.get("/chunks/stats", params={"user_id": a.uid}))
    callers = {
        "another user's key": a.api,
        "no key": srv.api(),
        "a revoked key": srv.api(revoked["key"]),
        "an expired key (2 s)": srv.api(expiring["key"]),
        "an expired key (past)": srv.api(past["key"], header="x-api-key"),
    }
    leaks = markers(v)
    probes = 0
    for route in ROUTES:
        for who, client in callers.items():
            r = send(client, route, v)
            probes += 1
            where = f"{route.id} with {who}"
            assert r.status_code < 500, f"{where}: {describe(r)}"
            if route.access == PUBLIC:
                assert r.status_code == 200, f"{where}: {describe(r)}"
            elif who != "another user's key":
                msg = MISSING if who == "no key" else INVALID
                body = error(r, 401, msg, field="api_key")
                assert body["errors"] == [{"field": "api_key", "message": "API key is required" if who == "no key"
                                           else "Invalid API key"}], f"{where}: {describe(r)}"
            elif route.access in (OWN, ADMIN):
                body = error(r, 403, "Forbidden")
                assert body == {"status": "error", "code": 403, "data": None, "message": "Forbidden",
                                "errors": [{"field": "general", "message": "Forbidden"}]}, f"{where}: {describe(r)}"
            elif route.access == SHARED:
                assert ok(r)["agent"]["id"] == v.aid, f"{where}: {describe(r)}"
                continue  # the shared agent is the only record named, and it is not the victim's
            elif route.access == SCOPED:
                if route.other_status == 200:
                    data = ok(r)
                    if "sessions" in data:
                        assert {s["user_id"] for s in data["sessions"]} <= {a.uid}, f"{where}: {describe(r)}"
                        assert [s["id"] for s in data["sessions"]] == [a.sid], f"{where}: {describe(r)}"
                    else:  # chunk stats without a user: the caller's own counts
                        assert data == own_stats, f"{where}: {describe(r)}"
                else:
                    error(r, route.other_status, route.other_message.format(**vars(v)))
            for m in leaks:
                if route.access == SCOPED and route.other_message and m in v.sname:
                    continue  # the 404 repeats the name the caller sent (it holds the user's name)
                assert m not in r.text, f"{where}: the answer carries the victim's {m!r}: {describe(r)}"
    assert probes == len(ROUTES) * len(callers)
    after = snapshot(auth.admin, [v, a])
    assert after == before, "a refused request changed some state"


def test_metrics_carry_no_tenant_data(auth, world):
    text = auth.srv.api().get(auth.srv.root + "/metrics").text
    for t in (world.victim, world.attacker):
        for m in markers(t):
            assert m not in text, f"/metrics shows {m!r}"


def test_own_requests_through_foreign_ids_reach_nothing(auth, world):
    """The caller's own routes, naming the other user's ids in the body or query: nothing of the other
    user is read, changed or deleted."""
    v, a = world.victim, world.attacker
    k = a.api
    before = snapshot(auth.admin, [v, a])
    error(k.post(f"/sessions/{a.sid}/messages/read", json={"message_ids": v.mids}), 404,
          "Some message IDs were not found", field="message_ids")
    error(k.put(f"/sessions/{a.sid}/messages", json={"message_ids": v.mids[:1], "new_messages": msgs("x")}), 404,
          "Some message IDs were not found")
    error(k.delete(f"/sessions/{a.sid}/messages", json={"message_ids": v.mids[:1]}), 404,
          "Some message IDs were not found")
    assert ok(k.post(f"/users/{a.uid}/knowledge/read", json={"knowledge_ids": v.kids}))["knowledge"] == []
    assert ok(k.put(f"/users/{a.uid}/knowledge", json={"knowledge_ids": v.kids, "new_knowledge": ["x"]}))[
        "knowledge_ids"] == []
    assert ok(k.delete(f"/users/{a.uid}/knowledge", json={"knowledge_ids": v.kids}))["knowledge_ids"] == []
    error(k.delete(f"/users/{a.uid}/api-keys/{v.key_id}"), 404,
          f"API key with ID '{v.key_id}' not found for user '{a.uid}'", field="key_id")
    error(k.post(f"/users/{a.uid}/query", json={"query": v.word, "session_id": v.sid}), 404,
          f"Session '{v.sid}' not found for user '{a.uid}'", field="session_id")
    for st in (None, "keyword", "vector"):
        body = {"query": f"{v.word} alpha secret", "top_k": 1000}
        if st:
            body["store_type"] = st
        res = ok(k.post(f"/users/{a.uid}/query", json=body))["results"]
        assert not {r["id"] for r in res} & set(v.mids + v.kids), st
        assert {r["metadata"]["user_id"] for r in res} <= {a.uid}, st
    error(k.get("/chunks/stats", params={"user_id": a.uid, "session_id": v.sid}), 403, "Forbidden")
    assert snapshot(auth.admin, [v, a]) == before


def test_owner_and_admin_get_through_on_every_route(auth, world):
    """Positive control: with the right key every probe of the table succeeds (so the refusals above are
    refusals, not malformed requests). Runs on a fresh tenant, deletions last."""
    agent = create_agent(auth.admin)
    t = make_tenant(auth, agent)
    wait_layers(auth.admin, t, 1, 2)
    # the key the table deletes is a second one: t.api keeps working until the user goes
    t.key_id = ok(auth.admin.post(f"/users/{t.uid}/api-keys", json={"name": "to-delete"}), 201)["api_key"]["id"]
    for route in sorted(ROUTES, key=lambda r: r.phase):
        client = auth.admin if route.access == ADMIN else t.api
        r = send(client, route, t)
        want = route.owner_status
        if route.access == SCOPED and route.other_status == 404:
            want = 200  # the owner finds its own session by name
        assert r.status_code == want, f"{route.id} as owner: {describe(r)}"
        if route.access == PUBLIC:
            continue
        if want == 204:
            assert r.content == b""
        else:
            ok(r, want)


def counts(data_dir):
    p = run_cli("db", "status", "--data-dir", data_dir)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)["counts"]


def test_deleted_user_is_gone_from_every_route_and_from_db_status(spawn, fake_llm):
    auth = layered_server(spawn, fake_llm, "isolation-delete")
    srv, admin_key = auth.srv, auth.admin_key
    agent = create_agent(auth.admin)
    keep, gone = make_tenant(auth, agent), make_tenant(auth, agent)
    # a second session and a second key for the user that goes, so every kind of record has several rows
    s2 = create_session(auth.admin, gone.uid, agent["id"])
    add_messages(auth.admin, s2["id"], msgs(f"{gone.word} delta secret"))
    ok(auth.admin.post(f"/users/{gone.uid}/api-keys", json={"name": "second"}), 201)
    for t, episodes, facts in ((keep, 1, 2), (gone, 2, 3)):  # an episode per add, a fact per user message
        wait_vectors(auth.admin, t.uid)
        wait_layers(auth.admin, t, episodes, facts)
    for st in ("keyword", "vector"):  # findable before
        res = ok(auth.admin.post(f"/users/{gone.uid}/query", json={"query": f"{gone.word} alpha secret",
                                                                    "store_type": st, "top_k": 50}))["results"]
        assert gone.mids[0] in {r["id"] for r in res}, st
    srv.stop()
    c0 = counts(srv.data_dir)
    srv.restart()
    admin = srv.api(admin_key)
    keep_before = snapshot(admin, [keep])
    r = admin.delete(f"/users/{gone.uid}")
    assert r.status_code == 204 and r.content == b"", describe(r)

    uid, sid = gone.uid, gone.sid
    user_msg, sess_msg = f"User with ID '{uid}' not found", f"Session with ID '{sid}' not found"
    error(admin.get(f"/users/{uid}"), 404, user_msg, field="user_id")
    error(admin.get("/users", params={"name": gone.uname}), 404, f"User with name '{gone.uname}' not found")
    assert uid not in {u["id"] for u in ok(admin.get("/users"))["users"]}
    error(admin.get("/sessions", params={"user_id": uid}), 404, user_msg)
    error(admin.get("/sessions", params={"name": gone.sname}), 404, f"Session with name '{gone.sname}' not found")
    listed = ok(admin.get("/sessions"))["sessions"]
    assert not {s["id"] for s in listed} & {sid, s2["id"]} and uid not in {s["user_id"] for s in listed}
    for s in (sid, s2["id"]):
        msg = f"Session with ID '{s}' not found"
        error(admin.get(f"/sessions/{s}"), 404, msg)
        error(admin.get(f"/sessions/{s}/messages"), 404, msg)
        error(admin.post(f"/sessions/{s}/messages/read", json={"message_ids": gone.mids}), 404, msg)
        error(admin.get(f"/sessions/{s}/chunks"), 404, msg)
        error(admin.get("/chunks/stats", params={"session_id": s}), 404, msg)
    error(admin.get(f"/rounds/{gone.rid}/chunks"), 404, f"Round with ID '{gone.rid}' not found")
    error(admin.get(f"/users/{uid}/knowledge"), 404, user_msg)
    error(admin.post(f"/users/{uid}/knowledge/read", json={"knowledge_ids": gone.kids}), 404, user_msg)
    error(admin.get(f"/users/{uid}/api-keys"), 404, user_msg)
    error(admin.get("/chunks/stats", params={"user_id": uid}), 404, user_msg)
    error(admin.get(f"/users/{uid}/facts"), 404, user_msg)
    error(admin.get(f"/users/{uid}/facts/{gone.fid}"), 404, user_msg)
    error(admin.delete(f"/users/{uid}/facts/{gone.fid}"), 404, user_msg)
    error(admin.get(f"/users/{uid}/episodes"), 404, user_msg)
    for st in (None, "keyword", "vector"):
        body = {"query": f"{gone.word} alpha secret", "top_k": 1000}
        if st:
            body["store_type"] = st
        error(admin.post(f"/users/{uid}/query", json=body), 404, user_msg)
        res = ok(admin.post(f"/users/{keep.uid}/query", json=body))["results"]  # the same agent's other user
        assert not {r["id"] for r in res} & set(gone.mids + gone.kids + gone.layer_ids), st
    error(srv.api(gone.key).get(f"/users/{keep.uid}"), 401, INVALID)  # its keys are gone too
    # what is left is exactly the other user's
    stats = ok(admin.get("/chunks/stats"))
    assert stats["total_chunks"] == ok(admin.get("/chunks/stats", params={"user_id": keep.uid}))["total_chunks"]
    after = snapshot(admin, [keep])
    assert after[keep.uid] == keep_before[keep.uid] and after["agents"] == keep_before["agents"]
    assert [json.loads(u)["id"] for u in after["users"]] == [keep.uid]
    srv.stop()
    c1 = counts(srv.data_dir)
    # its layers: an episode per add (2), a fact per user message (3); every one of them has a vector
    gone_counts = {"users": 1, "agents": 0, "sessions": 2, "rounds": 2, "messages": 4, "knowledge": 1,
                   "api_keys": 2, "episodes": 2, "facts": 3, "vectors": 5 + 2 + 3}
    expected = {k: c0[k] - gone_counts.get(k, 0) for k in c0}
    assert c1 == expected, f"db status after the delete: {c1}, expected {expected} (before: {c0})"
    assert c1["users"] == 1 and c1["messages"] == 3 and c1["vectors"] == 4 + 1 + 2 and c1["api_keys"] == 1
    assert c1["episodes"] == 1 and c1["facts"] == 2 and c1["flushes_pending"] == 0
    srv.restart()  # and a restart does not bring anything back
    error(srv.api(admin_key).get(f"/users/{uid}"), 404, user_msg)
