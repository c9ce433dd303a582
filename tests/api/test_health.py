"""SPEC §2: health — cheap, no auth, no configuration or secrets."""

import secrets
import time

from helpers import ok

# SPEC §2's keys, plus (ext, issue 6: "the server says so ... in GET /api/v1/health") whether the LLM memory
# layers run: "llm" (off | ok | degraded) and "layers" (["M0"] or ["M0", "M1", "M2"]). Nothing else.
HEALTH_KEYS = {"status", "version", "uptime_s", "store", "embedder", "llm", "layers"}


def test_health_shape(api):
    data = ok(api.get("/health"), 200, "Server is healthy", keys=HEALTH_KEYS)
    assert data["status"] == "ok"
    assert isinstance(data["version"], str) and data["version"]
    assert isinstance(data["uptime_s"], (int, float)) and not isinstance(data["uptime_s"], bool)
    assert data["uptime_s"] >= 0
    assert data["store"] is not None and data["embedder"] is not None
    assert data["llm"] == "off" and data["layers"] == ["M0"]  # no LLM configured here


def test_health_uptime_grows(api):
    t1 = ok(api.get("/health"))["uptime_s"]
    time.sleep(1.2)
    t2 = ok(api.get("/health"))["uptime_s"]
    assert t2 > t1, (t1, t2)


def test_health_is_cheap_under_keep_alive(api):
    t0 = time.monotonic()
    for _ in range(200):
        assert api.get("/health").status_code == 200
    assert time.monotonic() - t0 < 10


def test_health_has_no_secrets_and_needs_no_auth(spawn):
    admin = "adm-" + secrets.token_hex(16)
    srv = spawn("--auth", "--admin-key", admin, name="health-auth")
    anon = srv.api()
    r = anon.get("/health")
    data = ok(r, 200, "Server is healthy", keys=HEALTH_KEYS)
    assert data["status"] == "ok"
    assert admin not in r.text
    assert srv.data_dir not in r.text, "health must not expose configuration (data dir)"
    # a bogus key does not matter on health either
    r = srv.api("not-a-key").get("/health")
    assert r.status_code == 200 and admin not in r.text
    r = srv.api(admin).get("/health/")
    assert r.status_code == 200 and admin not in r.text
    # while other routes do need a key
    assert anon.get("/users").status_code == 401


def test_metrics_prometheus_text(api):
    """SPEC §2 (ext): GET /metrics serves Prometheus text."""
    for _ in range(3):
        api.get("/health")
    r = api.get(api.root + "/metrics")
    assert r.status_code == 200, r.text[:300]
    assert "# TYPE" in r.text, r.text[:300]
