"""PostgreSQL store only: the database stopped and started again while clients write and read.

While it is down every request that needs it answers 503 with Retry-After within the client timeout
(no hang, no crash); once it is back the server recovers by itself (the pool reconnects, the writer
reconnects), and every message whose add was acknowledged with 201 is there. Runs only when the suite
runs against PostgreSQL (scripts/with-postgres.sh exports MEMFUSE_TEST_PG_CTL to stop/start it)."""

import os
import shlex
import subprocess
import threading
import time

import pytest
import requests

from conftest import PG
from helpers import Api, msgs, ok, world

pytestmark = pytest.mark.skipif(not PG or not os.environ.get("MEMFUSE_TEST_PG_CTL"),
                                reason="needs the PostgreSQL store and a cluster it may stop (with-postgres.sh)")


def pg_ctl(action):
    cmd = shlex.split(os.environ["MEMFUSE_TEST_PG_CTL"]) + [action]
    if action == "stop":
        cmd += ["-m", "fast"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def test_restart_under_load_answers_503_then_recovers_without_losing_acks(spawn):
    srv = spawn(name="pg-outage")
    api = srv.api()
    _u, _a, s = world(api)
    acked, statuses, problems = [], {}, []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(i):
        c = Api(srv.root)
        n = 0
        try:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = c.post(f"/sessions/{s['id']}/messages", json={"messages": msgs(f"w{i} n{n}")})
                except requests.RequestException as e:  # a hang past the client timeout or a crash
                    with lock:
                        problems.append(f"request failed: {e!r}")
                    return
                took = time.monotonic() - t0
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 201:
                        acked.extend(r.json()["data"]["message_ids"])
                    elif r.status_code == 503:
                        if not r.headers.get("Retry-After"):
                            problems.append("503 without Retry-After")
                    else:
                        problems.append(f"unexpected {r.status_code}: {r.text[:200]}")
                    if took > 10:
                        problems.append(f"a request took {took:.1f}s")
                n += 1
                if r.status_code == 503:
                    time.sleep(0.05)
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        before = len(acked)
        pg_ctl("stop")
        time.sleep(1.0)
        # reads that need the database answer 503 too
        r = api.get(f"/sessions/{s['id']}/messages")
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After"), r.headers
        assert srv.alive
        pg_ctl("start")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(acked) <= before + 20:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not problems, problems[:5]
    assert statuses.get(503, 0) > 0, f"the outage was not seen: {statuses}"
    assert len(acked) > before + 20, f"writes did not recover after the restart: {statuses}"
    assert srv.alive

    # every acknowledged message survived (read back by id, 100 at a time: 404 names any missing one)
    for k in range(0, len(acked), 100):
        r = api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": acked[k:k + 100]})
        assert r.status_code == 200, f"acknowledged messages missing after the restart: {r.text[:300]}"
        assert len(r.json()["data"]["messages"]) == len(acked[k:k + 100])
    r = api.get("/health")
    assert r.status_code == 200
