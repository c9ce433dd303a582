"""Monitoring (issue 7, SPEC §2 ext): GET /metrics in the Prometheus text format, GET /api/v1/admin/stats
with the same families as JSON (admin only when auth is on), the seed's operation histograms with their
configurable thresholds, and `memfuse bench`.

The text is checked with a small parser written here from the format's rules (exposition format 0.0.4):
every sample belongs to a family declared by # TYPE before it, a family's lines are contiguous, no series
repeats, histograms have cumulative buckets ending in le="+Inf" equal to _count, counters are >= 0.
Counts are compared before and after requests on a server of this module's own, so they must move by
exactly what the requests did."""

import json
import math
import re
import secrets
import subprocess
import time

import pytest

from conftest import child_env, memfuse_bin, run_cli
from helpers import add_messages, create_agent, create_session, create_user, error, msgs, ok, query, word

OPS = ["pool_acquire", "service_lookup", "flush_handoff", "m0", "m1", "m2", "embed_batch", "vector_search",
       "bm25_search", "fusion"]
DEFAULT_THRESHOLDS_MS = {"pool_acquire": 10, "service_lookup": 10, "flush_handoff": 10, "m0": 100, "m1": 150,
                         "m2": 150, "embed_batch": 50, "vector_search": 10, "bm25_search": 10, "fusion": 10}
ADD_ROUTE = ("POST", "/api/v1/sessions/{}/messages")
EXPECTED_FAMILIES = {
    "memfuse_build_info": "gauge",
    "memfuse_uptime_seconds": "gauge",
    "process_resident_memory_bytes": "gauge",
    "memfuse_http_requests_total": "counter",
    "memfuse_http_request_duration_seconds": "histogram",
    "memfuse_op_duration_seconds": "histogram",
    "memfuse_op_threshold_seconds": "gauge",
    "memfuse_op_threshold_crossings_total": "counter",
    "memfuse_op_baseline_count": "gauge",
    "memfuse_op_recent_count": "gauge",
    "memfuse_op_regressed": "gauge",
    "memfuse_op_regressions_total": "counter",
    "memfuse_store_pool_size": "gauge",
    "memfuse_store_pool_connections": "gauge",
    "memfuse_store_pool_waiting": "gauge",
    "memfuse_store_pool_acquires_total": "counter",
    "memfuse_store_write_queue_depth": "gauge",
    "memfuse_store_write_batches_total": "counter",
    "memfuse_store_write_jobs_total": "counter",
    "memfuse_user_services": "gauge",
    "memfuse_query_cache_hits_total": "counter",
    "memfuse_query_cache_misses_total": "counter",
    "memfuse_query_cache_hit_ratio": "gauge",
    "memfuse_embed_queue_depth": "gauge",
    "memfuse_embed_lag_seconds": "gauge",
    "memfuse_embedded_total": "counter",
}


# --------------------------------------------------------------------------------------------------
# A Prometheus text-format parser (strict about what our writer must get right)

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _value(text, line):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise AssertionError(f"bad sample value {text!r} in line {line!r}")


def _labels(s, i, line):
    """Parses {k="v",...} starting at s[i] == '{'; returns (dict, index after '}')."""
    assert s[i] == "{"
    i += 1
    out = {}
    while True:
        if s[i] == "}":
            return out, i + 1
        m = LABEL_NAME.match(s, i)
        assert m, f"bad label name at {s[i:]!r} in {line!r}"
        name = m.group(0)
        i = m.end()
        assert s[i:i + 2] == '="', f"expected =\" after label {name} in {line!r}"
        i += 2
        val = []
        while True:
            c = s[i]
            if c == "\\":
                nxt = s[i + 1]
                assert nxt in ('\\', '"', "n"), f"bad escape \\{nxt} in {line!r}"
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                assert c != "\n"
                val.append(c)
                i += 1
        assert name not in out, f"label {name} twice in {line!r}"
        out[name] = "".join(val)
        if s[i] == ",":
            i += 1
        else:
            assert s[i] == "}", f"expected , or }} in {line!r}"


def parse_prometheus(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}; asserts the format's rules."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    fams = {}
    current = None  # the family whose samples are being read
    closed = set()  # families whose lines ended (a family's lines must be contiguous)
    seen = set()
    for line in text.split("\n")[:-1]:
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert METRIC_NAME.fullmatch(name), f"bad metric name in {line!r}"
                fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if current and current != name:
                    closed.add(current)
                assert name not in closed, f"family {name} is not contiguous"
                current = name
                if parts[1] == "TYPE":
                    assert fam["type"] is None, f"second TYPE for {name}"
                    assert not fam["samples"], f"TYPE after samples for {name}"
                    assert len(parts) == 4 and parts[3] in TYPES, f"bad TYPE line {line!r}"
                    fam["type"] = parts[3]
                else:
                    assert fam["help"] is None, f"second HELP for {name}"
                    fam["help"] = parts[3] if len(parts) == 4 else ""
            continue
        m = METRIC_NAME.match(line)
        assert m, f"bad sample line {line!r}"
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _labels(line, i, line)
        rest = line[i:].split()
        assert line[i] == " " and 1 <= len(rest) <= 2, f"bad sample line {line!r}"
        value = _value(rest[0], line)
        fam_name = sname
        for suffix in ("_bucket", "_sum", "_count"):
            base = sname[: -len(suffix)]
            if sname.endswith(suffix) and base in fams and fams[base]["type"] == "histogram":
                fam_name = base
        assert fam_name in fams and fams[fam_name]["type"], f"sample {sname} before its # TYPE"
        if current != fam_name:
            if current:
                closed.add(current)
            assert fam_name not in closed, f"family {fam_name} is not contiguous"
            current = fam_name
        key = (sname, tuple(sorted(labels.items())))
        assert key not in seen, f"series repeated: {line!r}"
        seen.add(key)
        fam = fams[fam_name]
        if fam["type"] == "histogram":
            assert sname != fam_name, f"a histogram has only _bucket/_sum/_count samples: {line!r}"
            if sname.endswith("_bucket"):
                assert "le" in labels, f"bucket without le: {line!r}"
        if fam["type"] == "counter" or sname.endswith(("_bucket", "_count")):
            assert value >= 0, f"negative count: {line!r}"
        fam["samples"].append((sname, labels, value))
    for name, fam in fams.items():
        assert fam["type"], f"family {name} has no TYPE"
        if fam["type"] == "histogram":
            check_histograms(name, fam["samples"])
    return fams


def check_histograms(name, samples):
    series = {}
    for sname, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            s["buckets"].append((_value(labels["le"], labels["le"]), value))
        elif sname.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    for key, s in series.items():
        b = s["buckets"]
        assert b and s["sum"] is not None and s["count"] is not None, f"{name}{key}: incomplete histogram"
        les = [le for le, _ in b]
        assert les == sorted(les) and len(set(les)) == len(les), f"{name}{key}: le not increasing"
        assert les[-1] == math.inf, f"{name}{key}: no +Inf bucket"
        counts = [c for _, c in b]
        assert counts == sorted(counts), f"{name}{key}: buckets not cumulative"
        assert counts[-1] == s["count"], f"{name}{key}: +Inf bucket {counts[-1]} != _count {s['count']}"
        assert s["sum"] >= 0


def sample(fams, family, name=None, **labels):
    """The value of the one sample of family with these labels (0 when the series is absent)."""
    name = name or family
    vals = [v for n, l, v in fams[family]["samples"] if n == name and all(l.get(k) == x for k, x in labels.items())
            and (name != family + "_bucket")]
    assert len(vals) <= 1, f"{name}{labels} matches {len(vals)} series"
    return vals[0] if vals else 0


def requests_of(fams, method, route, status):
    return sample(fams, "memfuse_http_requests_total", method=method, route=route, status=str(status))


def op_count(fams, op):
    return sample(fams, "memfuse_op_duration_seconds", "memfuse_op_duration_seconds_count", op=op)


def scrape(api):
    r = api.get(api.root + "/metrics")
    assert r.status_code == 200, r.text[:300]
    ct = r.headers.get("Content-Type", "")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, ct
    return parse_prometheus(r.text)


def wait_for(fn, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mon(module_spawn):
    return module_spawn("--embedder", "hash", name="metrics")


def test_parser_rejects_what_the_format_forbids():
    good = '# HELP a_total x\n# TYPE a_total counter\na_total{k="v\\"q"} 3\n'
    assert parse_prometheus(good)["a_total"]["samples"] == [("a_total", {"k": 'v"q'}, 3.0)]
    for bad in ['a_total 1\n',                                                      # no TYPE
                '# TYPE a counter\na{k="v"} 1\na{k="v"} 2\n',                        # repeated series
                '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
                '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',     # no +Inf
                '# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x="1"} 2\n',            # not contiguous
                '# TYPE a gauge\na{k="v} 1\n']:
        with pytest.raises((AssertionError, IndexError)):
            parse_prometheus(bad)


def test_metrics_parse_and_carry_every_family(mon):
    fams = scrape(mon.api())
    for name, typ in EXPECTED_FAMILIES.items():
        assert name in fams, f"{name} missing from /metrics"
        assert fams[name]["type"] == typ, (name, fams[name]["type"])
        assert fams[name]["help"], f"{name} has no HELP"
    assert sample(fams, "process_resident_memory_bytes") > 1 << 20
    assert sample(fams, "memfuse_uptime_seconds") > 0
    assert sample(fams, "memfuse_build_info", version=ok(mon.api().get("/health"))["version"]) == 1
    pools = {l["pool"] for _, l, _ in fams["memfuse_store_pool_size"]["samples"]}
    assert pools and pools <= {"sqlite_read", "postgres"}, pools


def test_every_seed_operation_is_exported_with_its_threshold(mon):
    """M1/M2/flush hand-off are recorded by the LLM layers: exported (count 0) before anything records them."""
    fams = scrape(mon.api())
    ops = {l["op"] for n, l, _ in fams["memfuse_op_duration_seconds"]["samples"] if n.endswith("_count")}
    assert ops == set(OPS)
    for op, ms in DEFAULT_THRESHOLDS_MS.items():
        assert sample(fams, "memfuse_op_threshold_seconds", op=op) == pytest.approx(ms / 1e3), op
        assert sample(fams, "memfuse_op_regressed", op=op) in (0, 1)
    assert sample(fams, "memfuse_op_regression_factor") == 2


def test_metrics_move_when_requests_are_made(mon):
    api = mon.api()
    u = create_user(api)
    a = create_agent(api)
    s = create_session(api, u["id"], a["id"])
    before = scrape(api)
    n = 4
    w = word()
    for i in range(n):
        add_messages(api, s["id"], msgs(f"{w} message number {i}"))
    # the vectors of the adds arrive in the background (and a stored vector rightly invalidates cached
    # answers: wait for them before asking twice)
    wait_for(lambda: sample(scrape(api), "memfuse_embedded_total") >= sample(before, "memfuse_embedded_total") + n,
             what="the embedding pipeline to store the new vectors")
    ok(api.get(f"/sessions/{s['id']}/messages"))
    query(api, u["id"], w, store_type="keyword")
    query(api, u["id"], w, store_type="keyword")  # the same question again: from the user's cache
    assert api.get("/no/such/route").status_code == 404
    after = scrape(api)

    def delta(fn, *args, **kw):
        return fn(after, *args, **kw) - fn(before, *args, **kw)

    assert delta(requests_of, *ADD_ROUTE, 201) == n
    assert delta(requests_of, "GET", "/api/v1/sessions/{}/messages", 200) == 1
    assert delta(requests_of, "POST", "/api/v1/users/{}/query", 200) == 2
    assert delta(requests_of, "", "unmatched", 404) == 1
    add_count = delta(sample, "memfuse_http_request_duration_seconds", "memfuse_http_request_duration_seconds_count",
                      method=ADD_ROUTE[0], route=ADD_ROUTE[1])
    assert add_count == n
    assert delta(op_count, "m0") == n
    assert delta(op_count, "bm25_search") == 1, "the repeated query must come from the cache"
    assert delta(op_count, "fusion") == 1
    assert delta(op_count, "service_lookup") >= n
    assert delta(op_count, "pool_acquire") >= 2
    assert delta(op_count, "embed_batch") >= 1
    assert delta(sample, "memfuse_query_cache_hits_total") == 1
    assert delta(sample, "memfuse_query_cache_misses_total") == 1
    assert 0 < sample(after, "memfuse_query_cache_hit_ratio") <= 1
    assert delta(sample, "memfuse_store_write_batches_total") >= 1
    assert delta(sample, "memfuse_store_write_jobs_total") >= n
    assert delta(sample, "memfuse_uptime_seconds") > 0
    for op in ("flush_handoff", "m1", "m2"):
        assert op_count(after, op) >= 0
    # the operation histogram's sum moved with its count
    assert delta(sample, "memfuse_op_duration_seconds", "memfuse_op_duration_seconds_sum", op="m0") > 0


def test_admin_stats_is_the_same_content_as_json(mon):
    api = mon.api()
    text = scrape(api)
    data = ok(api.get("/admin/stats"), 200, "Stats retrieved successfully", keys={"metrics", "llm_usage"})
    again = ok(api.get("/admin/stats/"))  # trailing slash too
    m = data["metrics"]
    assert set(m) == set(text), set(m) ^ set(text)
    assert set(again["metrics"]) == set(m)
    for name, fam in m.items():
        assert fam["type"] == text[name]["type"], name
        assert fam["help"] == text[name]["help"], name
        assert isinstance(fam["samples"], list)
        for s in fam["samples"]:
            assert set(s) <= {"labels", "value", "count", "sum", "p50", "p90", "p99", "p999", "buckets"}, s
            if fam["type"] == "histogram":
                assert s["count"] >= 0 and s["sum"] >= 0
                assert 0 <= s["p50"] <= s["p90"] <= s["p99"] <= s["p999"], s
                cum = [c for _, c in s["buckets"]]
                assert cum == sorted(cum) and cum[-1] == s["count"] and s["buckets"][-1][0] == "+Inf", s
            else:
                assert isinstance(s["value"], (int, float)), s
    ops = {s["labels"]["op"]: s for s in m["memfuse_op_duration_seconds"]["samples"]}
    assert set(ops) == set(OPS)
    thresholds = {s["labels"]["op"]: s["value"] for s in m["memfuse_op_threshold_seconds"]["samples"]}
    assert thresholds == {op: pytest.approx(ms / 1e3) for op, ms in DEFAULT_THRESHOLDS_MS.items()}


def test_admin_stats_is_admin_only_when_auth_is_on(spawn):
    admin_key = "admin-" + secrets.token_hex(16)
    srv = spawn("--auth", "--admin-key", admin_key, "--embedder", "hash", name="stats-auth")
    anon, admin = srv.api(), srv.api(admin_key)
    error(anon.get("/admin/stats"), 401, "Authentication failed: Missing API key")
    error(srv.api("not-a-valid-key-at-all").get("/admin/stats"), 401, "Authentication failed: Invalid API key")
    u = create_user(admin)
    key = ok(admin.post(f"/users/{u['id']}/api-keys", json={"name": "k"}), 201)["api_key"]["key"]
    error(srv.api(key).get("/admin/stats"), 403)
    assert "memfuse_op_duration_seconds" in ok(admin.get("/admin/stats"))["metrics"]
    error(srv.api(key, header="x-api-key").get("/admin/stats"), 403)
    assert "memfuse_op_duration_seconds" in ok(srv.api(admin_key, header="x-api-key").get("/admin/stats"))["metrics"]
    # /metrics stays public (aggregates only) and says nothing secret
    r = anon.get(anon.root + "/metrics")
    assert r.status_code == 200 and admin_key not in r.text and key not in r.text
    fams = parse_prometheus(r.text)
    assert requests_of(fams, "GET", "/api/v1/admin/stats", 401) == 2
    assert requests_of(fams, "GET", "/api/v1/admin/stats", 403) == 2


def test_op_thresholds_are_configurable_counted_and_logged(spawn):
    srv = spawn("--embedder", "hash", "--op-threshold", "m0=0", "--op-thresholds", "fusion=off, bm25_search=2.5",
                "--op-baseline", "3", env={"MEMFUSE_OP_THRESHOLDS": "m0=99,embed_batch=7"}, name="thresholds")
    api = srv.api()
    fams = scrape(api)
    assert sample(fams, "memfuse_op_threshold_seconds", op="m0") == 0, "the flag wins over the environment"
    assert sample(fams, "memfuse_op_threshold_seconds", op="embed_batch") == pytest.approx(0.007)
    assert sample(fams, "memfuse_op_threshold_seconds", op="bm25_search") == pytest.approx(0.0025)
    assert not [l for _, l, _ in fams["memfuse_op_threshold_seconds"]["samples"] if l["op"] == "fusion"], \
        "an operation whose threshold is off has no threshold sample"
    u = create_user(api)
    s = create_session(api, u["id"], create_agent(api)["id"])
    for i in range(4):
        add_messages(api, s["id"], msgs(f"threshold test {i}"))
    fams = scrape(api)
    assert sample(fams, "memfuse_op_threshold_crossings_total", op="m0") == 4, "every add is over a 0 ms threshold"
    assert sample(fams, "memfuse_op_threshold_crossings_total", op="fusion") == 0
    # the baseline of 3 observations is complete: its percentiles are exported
    assert sample(fams, "memfuse_op_baseline_count", op="m0") >= 3
    assert sample(fams, "memfuse_op_baseline_p99_seconds", op="m0") > 0
    log = wait_for(lambda: "over its 0.000 ms threshold" in open(srv.stderr_path).read() and
                   open(srv.stderr_path).read(), what="the crossing to be logged")
    line = next(l for l in log.splitlines() if "operation m0 took" in l)
    assert json.loads(line)["level"] in ("warn", "warning"), line


def test_op_threshold_config_via_env_alone(spawn):
    srv = spawn("--embedder", "hash", env={"MEMFUSE_OP_THRESHOLDS": "vector_search=off,m0=250",
                                           "MEMFUSE_OP_REGRESSION_FACTOR": "3"}, name="thresholds-env")
    fams = scrape(srv.api())
    assert sample(fams, "memfuse_op_threshold_seconds", op="m0") == pytest.approx(0.25)
    assert not [l for _, l, _ in fams["memfuse_op_threshold_seconds"]["samples"] if l["op"] == "vector_search"]
    assert sample(fams, "memfuse_op_regression_factor") == 3


@pytest.mark.parametrize("args,env,needle", [
    (["--op-threshold", "nosuch=1"], {}, "unknown operation 'nosuch'"),
    (["--op-threshold", "m0=fast"], {}, "not a number of milliseconds"),
    (["--op-regression-factor", "0.5"], {}, "--op-regression-factor"),
    ([], {"MEMFUSE_OP_THRESHOLDS": "m0"}, "MEMFUSE_OP_THRESHOLDS"),
])
def test_bad_op_settings_refuse_to_start(tmp_path, args, env, needle):
    r = run_cli("serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"), *args, env=env,
                timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr


# --------------------------------------------------------------------------------------------------
# memfuse bench

SCENARIOS = ["query-keyword", "query-vector", "query-hybrid", "list", "add", "chat", "health"]


def run_bench(*args, timeout=180):
    t0 = time.monotonic()
    r = subprocess.run([memfuse_bin(), "bench", *args], capture_output=True, text=True, timeout=timeout,
                       env=child_env(), stdin=subprocess.DEVNULL)
    return r, time.monotonic() - t0


def test_bench_runs_every_scenario_in_bounded_time():
    r, took = run_bench("--json", "--duration", "0.3", "--connections", "2", "--memories", "60",
                        "--server-arg", "--embedder", "--server-arg", "hash")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["started_server"] is True and out["url"].startswith("http://127.0.0.1:")
    assert out["server"]["start_ms"] > 0 and out["server"]["idle_rss_bytes"] > 1 << 20
    assert out["preload"]["vectors"] == 60
    assert [s["name"] for s in out["scenarios"]] == SCENARIOS
    for s in out["scenarios"]:
        assert s["requests"] > 0 and s["errors"] == 0, s
        assert s["connections"] == 2 and 0.3 <= s["seconds"] < 30, s
        assert 0 < s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["p999_ms"] <= s["max_ms"], s
        assert s["throughput_rps"] == pytest.approx(s["requests"] / s["seconds"], rel=1e-6)
    assert out["server"]["ops"]["m0"]["count"] > 0
    assert set(out["server"]["ops"]) == set(OPS)
    assert took < 120, f"a 0.3 s-per-scenario run took {took:.1f} s"


def test_bench_against_a_running_server_moves_its_metrics(mon):
    api = mon.api()
    before = scrape(api)
    r, _ = run_bench("--url", mon.root, "--scenario", "health,list", "--duration", "0.3", "--connections", "2",
                     "--memories", "10")
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    header = next(l for l in lines if l.startswith("scenario"))
    assert "p99.9 ms" in header and "req/s" in header
    rows = {l.split()[0]: l.split() for l in lines[lines.index(header) + 1:] if l.split() and
            l.split()[0] in ("health", "list")}
    assert set(rows) == {"health", "list"}
    health_requests = int(rows["health"][2])
    assert health_requests > 0 and int(rows["health"][3]) == 0
    after = scrape(api)
    moved = requests_of(after, "GET", "/api/v1/health", 200) - requests_of(before, "GET", "/api/v1/health", 200)
    assert moved >= health_requests  # plus the bench's own look and its untimed warm-up requests
    assert requests_of(after, "GET", "/api/v1/sessions/{}/messages", 200) > \
        requests_of(before, "GET", "/api/v1/sessions/{}/messages", 200)


def test_bench_rejects_bad_options():
    for args in (["--scenario", "nope"], ["--connections", "0"], ["--duration", "-1"], ["--what"]):
        r, _ = run_bench(*args, timeout=30)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "usage: memfuse bench" in r.stderr
