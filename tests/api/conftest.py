"""Fixtures that run the real `memfuse` binary.

- `server`: one session-wide server (default flags) shared by most tests; every test gets a fresh
  `api` client on it and uses unique names, so tests do not see each other's records.
- `spawn(*flags, env=..., data_dir=...)`: starts an extra server for one test (auth on, small body
  limit, small buffer thresholds, ...); `module_spawn` does the same for a whole module.
  `Server.restart()` starts it again on the same data dir (durability).
- Every server is stopped with SIGTERM and must exit 0 (clean shutdown is a requirement); a server
  that dies during a test fails that test and is restarted for the next one. Each server's stderr
  goes to a file whose tail is attached to the report of any failing test.

Binary: $MEMFUSE_BIN, else <repo>/build/memfuse.

Wrapper: $MEMFUSE_TEST_WRAPPER, when set, is a command prefix (split like a shell line) put before every
`memfuse serve` the suite starts, e.g. `valgrind --leak-check=full --log-file=/tmp/vg/%p.log`
(scripts/valgrind-suite.sh). Slow wrappers want longer MEMFUSE_TEST_START_TIMEOUT / _STOP_TIMEOUT.

PostgreSQL: when $MEMFUSE_TEST_PG_DSN is set (scripts/with-postgres.sh sets it), every server the suite
starts runs on `--store postgres` with a database of its own, created for its data dir on first start
(a restart reuses it, so durability tests check the same database), and `run_cli("db", ..., "--data-dir",
D)` addresses the database of D. Tests that only make sense on SQLite skip themselves via `PG` below.
"""

import itertools
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Api  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("MEMFUSE_TEST_START_TIMEOUT", "10"))
STOP_TIMEOUT = float(os.environ.get("MEMFUSE_TEST_STOP_TIMEOUT", "15"))

# Configuration variables of the server that must not leak from the caller's environment into
# the servers the suite starts (each test sets what it needs explicitly).
_CONFIG_ENV = ("MEMFUSE_HOST", "MEMFUSE_PORT", "MEMFUSE_DATA_DIR", "MEMFUSE_STORE", "MEMFUSE_THREADS",
               "MEMFUSE_MAX_BODY", "MEMFUSE_AUTH", "MEMFUSE_ADMIN_KEY", "MEMFUSE_LOG_LEVEL",
               "MEMFUSE_BUFFER_ROUNDS", "MEMFUSE_BUFFER_TOKENS", "MEMFUSE_BUFFER_IDLE",
               "MEMFUSE_RATE_LIMIT", "MEMFUSE_CONN_TIMEOUT", "MEMFUSE_OP_THRESHOLDS", "MEMFUSE_OP_BASELINE",
               "MEMFUSE_OP_WINDOW", "MEMFUSE_OP_REGRESSION_FACTOR", "MEMFUSE_LLM_BASE_URL", "MEMFUSE_LLM_MODEL",
               "MEMFUSE_LLM_API_KEY", "MEMFUSE_LLM_TIMEOUT_MS", "MEMFUSE_LLM_RETRIES", "MEMFUSE_LLM_CONCURRENCY",
               "MEMFUSE_LLM_MAX_TOKENS", "MEMFUSE_FLUSH_WORKERS", "MEMFUSE_FLUSH_RETRY_MS", "MEMFUSE_LAYER_TIMEOUT_MS",
               "MEMFUSE_FACT_MIN_CONFIDENCE", "MEMFUSE_FACT_DUP_SIMILARITY", "MEMFUSE_FACT_CANDIDATE_SIMILARITY",
               "MEMFUSE_FACT_CANDIDATES", "MEMFUSE_FUSION", "MEMFUSE_WEIGHT_KEYWORD", "MEMFUSE_WEIGHT_VECTOR",
               "MEMFUSE_CONTEXT_WINDOW")

_LIVE = []  # servers currently running, for failure reports
WRAPPER = shlex.split(os.environ.get("MEMFUSE_TEST_WRAPPER", ""))

# --- PostgreSQL mode --------------------------------------------------------------------------------
PG_DSN = os.environ.get("MEMFUSE_TEST_PG_DSN") or None
PG_ADMIN_DSN = os.environ.get("MEMFUSE_TEST_PG_ADMIN_DSN") or PG_DSN
PG = PG_DSN is not None
_PG_DBS = {}  # realpath of a data dir -> its DSN
_PG_SEQ = itertools.count(1)
sqlite_only = pytest.mark.skipif(PG, reason="SQLite-specific (database file on disk)")


def pg_dsn_for(data_dir):
    """The DSN of data_dir's own database, created on first use (PostgreSQL mode only)."""
    key = os.path.realpath(str(data_dir))
    if key not in _PG_DBS:
        name = f"mf_{os.getpid()}_{next(_PG_SEQ)}"
        subprocess.run(["psql", PG_ADMIN_DSN, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"'],
                       check=True, capture_output=True, timeout=60)
        _PG_DBS[key] = f"{PG_DSN} dbname={name}"
    return _PG_DBS[key]


def _pg_cli_args(args):
    """For `db` commands in PostgreSQL mode: --data-dir D also selects D's database."""
    args = [str(a) for a in args]
    if not PG or not args or args[0] != "db" or "--data-dir" not in args or "--store" in args:
        return args
    d = args[args.index("--data-dir") + 1]
    return [*args, "--store", "postgres", "--pg-dsn", pg_dsn_for(d)]


def memfuse_bin():
    b = os.environ.get("MEMFUSE_BIN") or str(REPO / "build" / "memfuse")
    if not os.path.isfile(b) or not os.access(b, os.X_OK):
        pytest.fail(f"memfuse binary not found or not executable: {b} (build it, or set MEMFUSE_BIN)",
                    pytrace=False)
    return b


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return f"<no log: {e}>"


def child_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
    env.update(extra or {})
    return env


def run_cli(*args, timeout=60, env=None):
    """Runs `memfuse <args>` to completion; returns CompletedProcess (text)."""
    return subprocess.run([memfuse_bin(), *_pg_cli_args(args)], capture_output=True, text=True,
                          timeout=timeout, env=child_env(env))


class Server:
    """One memfuse process on 127.0.0.1:<free port> with its own data dir and log files."""

    def __init__(self, data_dir, log_dir, flags=(), env=None, config_via_env=False, name="memfuse"):
        self.data_dir = str(data_dir)
        self.log_dir = Path(log_dir)
        self.flags = [str(f) for f in flags]
        self.env = dict(env or {})
        self.config_via_env = config_via_env
        self.name = name
        self.proc = None
        self.port = None
        self.starts = 0
        self.stdout_path = self.stderr_path = None

    # -- lifecycle ------------------------------------------------------------------------

    def command(self, port):
        if self.config_via_env:
            return [*WRAPPER, memfuse_bin(), "serve", *self.flags]
        pg = ["--store", "postgres", "--pg-dsn", pg_dsn_for(self.data_dir)] if PG and "--store" not in self.flags else []
        return [*WRAPPER, memfuse_bin(), "serve", "--host", "127.0.0.1", "--port", str(port),
                "--data-dir", self.data_dir, "--log-level", "warn", *pg, *self.flags]

    def start(self):
        last = ""
        for _attempt in range(3):
            port = free_port()
            self.starts += 1
            self.stdout_path = self.log_dir / f"{self.name}-{self.starts}.stdout"
            self.stderr_path = self.log_dir / f"{self.name}-{self.starts}.stderr"
            env = dict(self.env)
            if self.config_via_env:
                env.update({"MEMFUSE_HOST": "127.0.0.1", "MEMFUSE_PORT": str(port),
                            "MEMFUSE_DATA_DIR": self.data_dir, "MEMFUSE_LOG_LEVEL": "warn"})
                if PG and "MEMFUSE_STORE" not in self.env:
                    env.update({"MEMFUSE_STORE": "postgres", "MEMFUSE_PG_DSN": pg_dsn_for(self.data_dir)})
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(self.command(port), stdout=out, stderr=err,
                                             stdin=subprocess.DEVNULL, env=child_env(env))
            self.port = port
            if self._wait_ready():
                _LIVE.append(self)
                return self
            last = tail(self.stderr_path)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"memfuse did not answer GET /api/v1/health with 200 within {START_TIMEOUT}s\n"
                            f"cmd: {self.command(port)}\n--- stderr tail ---\n{last}", pytrace=False)
            if "in use" not in last.lower():  # retry only a lost port race
                break
        pytest.fail(f"memfuse exited during start-up (rc={self.proc.returncode})\ncmd: {self.command(self.port)}\n"
                    f"--- stderr tail ---\n{last}", pytrace=False)

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, expect_rc=0):
        """Signals the server and waits; asserts it exits with expect_rc within STOP_TIMEOUT."""
        if self in _LIVE:
            _LIVE.remove(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"{self.name} did not exit within {STOP_TIMEOUT}s of "
                                     f"{signal.Signals(sig).name}\n--- stderr tail ---\n{tail(self.stderr_path)}")
        rc = self.proc.returncode
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError(f"{self.name} exited with {rc} (expected {expect_rc}) after "
                                 f"{signal.Signals(sig).name}\n--- stderr tail ---\n{tail(self.stderr_path)}")
        return rc

    def kill9(self):
        if self in _LIVE:
            _LIVE.remove(self)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self):
        """Start again on the same data dir (the previous process must be stopped or killed)."""
        assert not self.alive, "restart() needs the previous process stopped"
        return self.start()

    # -- clients --------------------------------------------------------------------------

    @property
    def root(self):
        return f"http://127.0.0.1:{self.port}"

    def api(self, key=None, header="bearer"):
        if key is None:
            return Api(self.root)
        if header == "bearer":
            return Api(self.root, {"Authorization": f"Bearer {key}"})
        return Api(self.root, {"X-API-Key": key})

    def stdout(self):
        try:
            return Path(self.stdout_path).read_text(errors="replace")
        except OSError:
            return ""


class Spawner:
    def __init__(self, factory):
        self.factory = factory
        self.servers = []

    def __call__(self, *flags, env=None, data_dir=None, config_via_env=False, name="extra"):
        d = data_dir or self.factory.mktemp("data")
        logs = self.factory.mktemp("logs")
        s = Server(d, logs, flags=flags, env=env, config_via_env=config_via_env, name=name)
        self.servers.append(s)
        return s.start()

    def stop_all(self):
        problems = []
        for s in self.servers:
            if s.alive:
                try:
                    s.stop()
                except AssertionError as e:
                    problems.append(str(e))
            elif s in _LIVE:
                _LIVE.remove(s)
        return problems


# ------------------------------------------------------------------------------------------
# pytest hooks and fixtures


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long test (kill -9 durability, big concurrency); "
                                       "skipped in the sanitizer run with -m 'not slow'")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _LIVE:
        for s in list(_LIVE):
            rep.sections.append((f"memfuse stderr tail ({s.name}, port {s.port})", tail(s.stderr_path)))


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("default-data"), tmp_path_factory.mktemp("default-logs"),
               name="default").start()
    yield s
    if s.alive:
        s.stop()


@pytest.fixture
def api(server):
    """A fresh client on the shared server; fails the test if the server died during it."""
    client = server.api()
    yield client
    client.close()
    if not server.alive:
        rc = server.proc.returncode
        log = tail(server.stderr_path, 60)
        if server in _LIVE:
            _LIVE.remove(server)
        server.start()  # keep the rest of the suite running
        pytest.fail(f"the shared memfuse server died during this test (rc={rc})\n--- stderr tail ---\n{log}",
                    pytrace=False)


@pytest.fixture
def spawn(tmp_path_factory):
    sp = Spawner(tmp_path_factory)
    yield sp
    problems = sp.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_spawn(tmp_path_factory):
    sp = Spawner(tmp_path_factory)
    yield sp
    problems = sp.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
