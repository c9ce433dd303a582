"""A short soak (issue 8; the long one is `make soak`): ~20 s of mixed requests from 4 keep-alive clients
plus clients that open a fresh connection per request, against one server. Resources, not timing:
after the load (and a pause for connections to close) the server holds no more file descriptors and no
more threads than after a warm-up, and its RSS grew by no more than a fixed allowance plus a generous
amount per message stored. Every answer is 2xx."""

import os
import random
import threading
import time

import pytest
import requests

from helpers import Api, add_knowledge, add_messages, create_agent, create_session, create_user, msgs, ok

DURATION = 20
WORDS = "hiking lake coffee violin birthday train garden recipe marathon doctor deadline camera snow".split()


def sample(pid):
    st = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            st[k] = v.strip()
    return {"rss_kb": int(st["VmRSS"].split()[0]), "threads": int(st["Threads"]), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def settle(pid, seconds=3.0):
    """The sample after idle connections have had time to close (the least fds seen over a few seconds)."""
    best = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s = sample(pid)
        if best is None or s["fds"] < best["fds"]:
            best = s
        time.sleep(0.25)
    return best


def client(root, worlds, stop, counts, problems, seed, fresh_connections):
    rnd = random.Random(seed)
    c = Api(root)
    try:
        while not stop.is_set():
            uid, sid, mids = rnd.choice(worlds)
            r = rnd.random()
            if fresh_connections:
                c.close()
                c = Api(root)
            try:
                if r < 0.15:
                    resp = c.post(f"/sessions/{sid}/messages", json={"messages": msgs(
                        " ".join(rnd.choice(WORDS) for _ in range(8)))})
                elif r < 0.35:
                    resp = c.get(f"/sessions/{sid}/messages", params={"limit": 20})
                elif r < 0.55:
                    resp = c.post(f"/users/{uid}/query", json={"query": " ".join(rnd.sample(WORDS, 3)), "top_k": 5,
                                                               "store_type": rnd.choice([None, "keyword", "vector"])})
                elif r < 0.65:
                    resp = c.post(f"/sessions/{sid}/messages/read", json={"message_ids": rnd.sample(mids, 2)})
                elif r < 0.75:
                    resp = c.get(f"/users/{uid}")
                elif r < 0.8:
                    resp = c.get(f"/users/{uid}/knowledge")
                else:
                    resp = c.get("/health")
            except requests.RequestException as e:
                problems.append(repr(e))
                return
            counts[0] += 1
            if resp.status_code // 100 != 2:
                problems.append(f"{resp.status_code} {resp.text[:200]}")
            elif r < 0.15:
                counts[1] += 1
    finally:
        c.close()


def run_load(srv, worlds, seconds, n_keepalive=4, n_fresh=2):
    stop = threading.Event()
    counts = [[0, 0] for _ in range(n_keepalive + n_fresh)]
    problems = []
    threads = [threading.Thread(target=client, args=(srv.root, worlds, stop, counts[i], problems, i, i >= n_keepalive))
               for i in range(n_keepalive + n_fresh)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    return sum(c[0] for c in counts), sum(c[1] for c in counts), problems


@pytest.mark.slow
def test_short_soak_no_fd_thread_growth_and_bounded_rss(spawn):
    srv = spawn("--embedder", "hash", name="soak")
    pid = srv.proc.pid
    api = srv.api()
    agent = create_agent(api)
    worlds = []
    for u in range(8):
        user = create_user(api)
        s = create_session(api, user["id"], agent["id"])
        mids = add_messages(api, s["id"], msgs(*[f"seed {u} {k} " + " ".join(WORDS[k:k + 4]) for k in range(10)]))
        add_knowledge(api, user["id"], [f"knowledge {u} {w}" for w in WORDS[:4]])
        worlds.append((user["id"], s["id"], mids))
    # warm-up: every path once at full concurrency (read connections, indexes, caches, thread pools)
    n, _adds, problems = run_load(srv, worlds, 5)
    assert not problems, problems[:5]
    base = settle(pid)
    n, adds, problems = run_load(srv, worlds, DURATION)
    assert not problems, problems[:5]
    assert n >= 2000, f"only {n} requests in {DURATION} s: the soak proved little"
    end = settle(pid)
    print(f"short soak: {n} requests ({adds} adds) in {DURATION} s; start {base}, end {end}")
    assert srv.alive
    assert end["fds"] <= base["fds"] + 2, f"file descriptors grew: {base} -> {end} after {n} requests"
    assert end["threads"] <= base["threads"], f"threads grew: {base} -> {end} after {n} requests"
    # a stored message costs its row cache, vector (2 KiB at 512 dimensions), index entries: allow 16 KiB
    allowance_kb = 48 * 1024 + 16 * adds
    assert end["rss_kb"] - base["rss_kb"] <= allowance_kb, \
        f"RSS grew by {end['rss_kb'] - base['rss_kb']} kB over {n} requests ({adds} adds; allowance {allowance_kb} kB)"
    # and the server still answers and stops cleanly (the spawn fixture checks exit 0)
    assert ok(api.get("/health"))["status"] == "ok"
