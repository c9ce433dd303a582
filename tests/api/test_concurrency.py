"""Concurrency: parallel adds, racing creates and deletes, readers beside writers."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import (Api, add_messages, create_agent, create_session, create_user, list_ids, msgs, ok,
                     read_messages, uniq, word, world)


def run_parallel(n, fn, timeout=60):
    """Runs fn(i) on n threads released together; returns results in index order."""
    barrier = threading.Barrier(n, timeout=timeout)

    def wrapped(i):
        barrier.wait()
        return fn(i)
    with ThreadPoolExecutor(max_workers=n) as ex:
        futures = [ex.submit(wrapped, i) for i in range(n)]
        return [f.result(timeout=timeout) for f in futures]


def test_50_concurrent_adds_to_one_session(server, api):
    u, a, s = world(api)
    sid = s["id"]

    def add(i):
        c = Api(server.root)
        try:
            r = c.post(f"/sessions/{sid}/messages",
                       json={"messages": msgs(f"t{i:02d}-first", f"t{i:02d}-second", role="alt")})
            return r.status_code, (r.json().get("data") or {}).get("message_ids"), r.text[:300]
        finally:
            c.close()
    results = run_parallel(50, add)
    assert all(st == 201 for st, _, _ in results), [txt for st, _, txt in results if st != 201][:5]
    all_ids = [i for _, ids, _ in results for i in ids]
    assert len(all_ids) == 100 and len(set(all_ids)) == 100, "ids must be distinct"
    stored = read_messages(api, sid, all_ids)
    expected = {mid: f"t{i:02d}-{'first' if j == 0 else 'second'}"
                for i, (_, ids, _) in enumerate(results) for j, mid in enumerate(ids)}
    assert {m["id"]: m["content"] for m in stored} == expected
    asc = list_ids(api, sid, order="asc", limit=100)
    assert sorted(asc) == sorted(all_ids)
    pos = {mid: k for k, mid in enumerate(asc)}
    for _, ids, _ in results:
        assert pos[ids[0]] < pos[ids[1]], "messages of one round must keep their input order"
    desc = list_ids(api, sid, order="desc", limit=100)
    assert desc == asc[::-1]
    # buffer invariants hold after the storm
    t = set(list_ids(api, sid, buffer_only="true", limit=100))
    f = set(list_ids(api, sid, buffer_only="false", limit=100))
    assert not t & f and t | f == set(all_ids)
    assert len(t) < 10, "at most 4 rounds (8 messages) can still be buffered"


def test_racing_creates_with_the_same_name(server, api):
    name = uniq("race")

    def create(kind):
        def go(i):
            c = Api(server.root)
            try:
                r = c.post(f"/{kind}", json={"name": name})
                return r.status_code, r.json()
            finally:
                c.close()
        return go
    for kind, title in (("users", "User"), ("agents", "Agent")):
        res = run_parallel(12, create(kind))
        codes = sorted(st for st, _ in res)
        assert codes == [201] + [400] * 11, codes
        for st, body in res:
            if st == 400:
                assert body["message"] == f"{title} with name '{name}' already exists"
        assert len(ok(api.get(f"/{kind}", params={"name": name}))[kind]) == 1


def test_racing_session_names_and_deletes(server, api):
    u, a = create_user(api), create_agent(api)
    name = uniq("sess-race")

    def create(i):
        c = Api(server.root)
        try:
            return c.post("/sessions", json={"user_id": u["id"], "agent_id": a["id"], "name": name}).status_code
        finally:
            c.close()
    codes = sorted(run_parallel(10, create))
    assert codes == [201] + [400] * 9, codes
    sess = ok(api.get("/sessions", params={"user_id": u["id"]}))["sessions"]
    assert len(sess) == 1
    sid = sess[0]["id"]
    add_messages(api, sid, msgs("to be deleted"))

    def delete(i):
        c = Api(server.root)
        try:
            return c.delete(f"/sessions/{sid}").status_code
        finally:
            c.close()
    codes = sorted(run_parallel(10, delete))
    assert codes == [200] + [404] * 9, codes


def test_adds_to_many_sessions_of_one_user_keep_buffer_invariants(server, api):
    u, a = create_user(api), create_agent(api)
    sessions = [create_session(api, u["id"], a["id"]) for _ in range(4)]

    def add(i):
        c = Api(server.root)
        try:
            out = []
            for k in range(5):
                r = c.post(f"/sessions/{sessions[i % 4]['id']}/messages", json={"messages": msgs(f"w{i}-{k}")})
                assert r.status_code == 201, r.text
                out += r.json()["data"]["message_ids"]
            return out
        finally:
            c.close()
    written = [i for ids in run_parallel(8, add) for i in ids]
    seen, buffered_sessions = [], 0
    for s in sessions:
        t = list_ids(api, s["id"], buffer_only="true", limit=100)
        f = list_ids(api, s["id"], buffer_only="false", limit=100)
        assert not set(t) & set(f)
        seen += t + f
        buffered_sessions += bool(t)
    assert sorted(seen) == sorted(written)
    assert buffered_sessions <= 1, "a user's buffer holds rounds of one session only"


def test_readers_beside_writers(server, api):
    u, a, s = world(api)
    w = word()
    stop = time.monotonic() + 1.5
    failures = []

    def writer(i):
        c = Api(server.root)
        n = 0
        try:
            while time.monotonic() < stop and n < 300:
                r = c.post(f"/sessions/{s['id']}/messages", json={"messages": msgs(f"{w} writer {i} n {n}")})
                if r.status_code != 201:
                    failures.append(("add", r.status_code, r.text[:200]))
                n += 1
        finally:
            c.close()
        return n

    def reader(i):
        c = Api(server.root)
        n = 0
        try:
            while time.monotonic() < stop and n < 300:
                if i % 2:
                    r = c.post(f"/users/{u['id']}/query", json={"query": w, "store_type": "keyword" if n % 2 else None})
                else:
                    r = c.get(f"/sessions/{s['id']}/messages", params={"buffer_only": "true" if n % 2 else "false"})
                if r.status_code != 200:
                    failures.append(("read", r.status_code, r.text[:200]))
                n += 1
        finally:
            c.close()
        return n

    def worker(i):
        return writer(i) if i < 4 else reader(i)
    counts = run_parallel(8, worker)
    assert not failures, failures[:5]
    written = sum(counts[:4])
    t = list_ids(api, s["id"], buffer_only="true", limit=100)
    assert len(t) <= 4, "at most 4 single-message rounds can remain buffered"
    assert ok(api.get("/chunks/stats", params={"user_id": u["id"]}))["total_chunks"] == written


@pytest.mark.slow
def test_many_keep_alive_clients(server):
    def hammer(i):
        c = Api(server.root)
        try:
            codes = [c.get("/health").status_code for _ in range(300)]
            return codes.count(200)
        finally:
            c.close()
    assert run_parallel(16, hammer, timeout=120) == [300] * 16


def test_single_thread_server_serves_concurrent_keep_alive_clients(spawn):
    srv = spawn("--threads", "1", name="threads1")
    clients = [srv.api() for _ in range(4)]
    u, a, s = world(clients[0])
    # interleave requests on 4 open keep-alive connections
    for k in range(5):
        for i, c in enumerate(clients):
            add_messages(c, s["id"], msgs(f"c{i} k{k}"))
    assert len(list_ids(clients[3], s["id"], limit=100)) == 20

    def burst(i):
        return [clients[i].get("/health").status_code for _ in range(50)]
    assert run_parallel(4, burst) == [[200] * 50] * 4


def test_deleting_a_user_during_writes_leaves_no_orphans(spawn):
    """Adds racing a DELETE /users/{id}: afterwards the store holds nothing of that user."""
    from test_cli import db_status
    srv = spawn(name="delete-race")
    api = srv.api()
    a = create_agent(api)
    u = create_user(api)
    sessions = [create_session(api, u["id"], a["id"]) for _ in range(2)]
    ok(api.post(f"/users/{u['id']}/knowledge", json={"knowledge": ["k"]}), 201)
    stop = threading.Event()
    unexpected = []

    def writer(i):
        c = Api(srv.root)
        n = 0
        try:
            while not stop.is_set() and n < 2000:
                r = c.post(f"/sessions/{sessions[i % 2]['id']}/messages", json={"messages": msgs(f"w{i} {n}", "x")})
                if r.status_code == 404:
                    return n
                if r.status_code != 201:
                    unexpected.append((r.status_code, r.text[:200]))
                    return n
                n += 1
            return n
        finally:
            c.close()
    with ThreadPoolExecutor(max_workers=4) as ex:
        futures = [ex.submit(writer, i) for i in range(4)]
        time.sleep(0.4)
        r = api.delete(f"/users/{u['id']}")
        assert r.status_code == 204, r.text
        time.sleep(0.2)
        stop.set()
        written = [f.result(timeout=30) for f in futures]
    assert not unexpected, unexpected[:3]
    assert sum(written) > 0
    for s in sessions:
        assert api.get(f"/sessions/{s['id']}").status_code == 404
    srv.stop()
    counts = db_status(srv.data_dir)["counts"]
    assert counts["agents"] == 1
    leftovers = {k: v for k, v in counts.items() if k != "agents" and v}
    assert not leftovers, f"orphans after deleting the only user during writes: {leftovers}"
