"""Crash consistency (issue 8): kill -9 the server at random moments, 20 times, under concurrent adds,
updates and deletes, restarting it each time. After every restart:
  - every add that got 201 is present with its content (unless a later acknowledged delete removed it);
  - every acknowledged update shows its new text, every acknowledged delete is gone;
  - a write that got no answer is either fully there or fully absent (a round is never half-stored);
  - an update or delete that got no answer happened wholly or not at all: the message has the old text or
    the new one (and the keyword index finds it by the text it has), or it is gone entirely;
  - every live message is findable by keyword at once, and by vector once the pipeline has caught up
    (checked after every restart, on a sample);
  - `memfuse db validate` passes (integrity, foreign keys, keyword index in sync).
The loop checks that it really killed while writes were in flight (a request that was sent and got its
connection reset, not only refused connections afterwards) in most cycles.
Runs on SQLite (`make test-api`) and on PostgreSQL (`make test-pg`: the server is killed, the database
stays up; tests/api/test_pg_kill_loop.py kills PostgreSQL itself).
Bounded: 20 cycles of ~0.4-1.2 s of load each."""

import random
import threading
import time

import pytest
import requests

from conftest import run_cli
from helpers import Api, create_agent, create_session, create_user, ok, read_messages

CYCLES = 20


class Ledger:
    """What the clients know for certain, from acknowledged answers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.content = {}        # id -> content the server acknowledged last
        self.owner = {}          # id -> the writer that added it (only it updates or deletes it)
        self.deleted = set()
        self.rounds = []         # acknowledged rounds: list of ids
        self.unknown = []        # rounds sent without an answer: list of contents (all-or-nothing)
        self.unsure_updates = []  # (id, new text) of updates sent without an answer, this cycle
        self.unsure_deletes = []  # ids of deletes sent without an answer, this cycle
        self.settled = {"update applied": 0, "update not applied": 0, "delete applied": 0, "delete not applied": 0}
        self.in_flight = 0       # requests cut by the kill after they were sent (reset, not refused)


def writer(root, sid, tag, stop, led, seed):
    rnd = random.Random(seed)
    c = Api(root)
    n = 0
    while not stop.is_set() and n < 100000:
        n += 1
        op = rnd.random()
        with led.lock:
            # only its own messages: two writers racing on one message would make the order of their
            # acknowledgements, not of their commits, decide what the ledger expects
            live = [i for i in led.content if i not in led.deleted and led.owner.get(i) == tag]
        try:
            if op < 0.7 or len(live) < 4:
                texts = [f"{tag} c{n} m{j} walnut{rnd.randint(0, 9)}" for j in range(1 + n % 3)]
                r = c.post(f"/sessions/{sid}/messages",
                           json={"messages": [{"role": "user", "content": t} for t in texts]}, timeout=10)
                if r.status_code == 201:
                    ids = r.json()["data"]["message_ids"]
                    with led.lock:
                        led.rounds.append(ids)
                        led.content.update(zip(ids, texts))
                        led.owner.update((i, tag) for i in ids)
                else:
                    with led.lock:
                        led.unknown.append(texts)
            elif op < 0.85:
                mid = rnd.choice(live)
                text = f"{tag} updated {n} hazel"
                r = c.put(f"/sessions/{sid}/messages",
                          json={"message_ids": [mid], "new_messages": [{"role": "user", "content": text}]}, timeout=10)
                if r.status_code == 200:
                    with led.lock:
                        led.content[mid] = text
            else:
                mid = rnd.choice(live)
                r = c.delete(f"/sessions/{sid}/messages", json={"message_ids": [mid]}, timeout=10)
                if r.status_code == 200:
                    with led.lock:
                        led.deleted.add(mid)
        except requests.RequestException as e:
            if "refused" not in str(e).lower():
                with led.lock:
                    led.in_flight += 1
            if op < 0.7 or len(live) < 4:
                with led.lock:
                    led.unknown.append(texts)
            # an update or delete without an answer may or may not have happened: settled after the restart
            elif op < 0.85:
                with led.lock:
                    led.unsure_updates.append((mid, text))
            else:
                with led.lock:
                    led.unsure_deletes.append(mid)
            return  # the server is gone


def settle_unanswered(api, uid, sid, led, cycle):
    """Updates and deletes cut by the kill: each happened wholly or not at all. Afterwards the ledger knows."""
    with led.lock:
        updates, led.unsure_updates = led.unsure_updates, []
        deletes, led.unsure_deletes = led.unsure_deletes, []
    new_texts = {}
    for mid, text in updates:
        new_texts.setdefault(mid, set()).add(text)
    for mid in set(new_texts) | set(deletes):
        r = api.post(f"/sessions/{sid}/messages/read", json={"message_ids": [mid]})
        if r.status_code == 404:
            assert mid in deletes or mid in led.deleted, f"cycle {cycle}: {mid} vanished without a delete"
            led.settled["delete applied" if mid in deletes else "update not applied"] += 1
            led.deleted.add(mid)
            continue
        got = ok(r)["messages"][0]["content"]
        allowed = new_texts.get(mid, set()) | {led.content.get(mid)}
        assert got in allowed, f"cycle {cycle}: {mid} has {got!r}, neither acknowledged nor sent: {allowed}"
        res = ok(api.post(f"/users/{uid}/query", json={"query": got, "store_type": "keyword", "top_k": 20}))
        assert mid in [h["id"] for h in res["results"]], \
            f"cycle {cycle}: {mid} (after an unanswered write) not findable by its text {got!r}"
        if mid in new_texts:
            led.settled["update applied" if got in new_texts[mid] else "update not applied"] += 1
        if mid in deletes:
            led.settled["delete not applied"] += 1
        led.content[mid] = got


def wait_for_vectors(api, uid, cycle, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        st = ok(api.get("/chunks/stats", params={"user_id": uid}))
        if st["by_store"]["vector"] >= st["total_chunks"]:
            return
        assert time.monotonic() < deadline, f"cycle {cycle}: the embedding pipeline did not catch up: {st}"
        time.sleep(0.1)


@pytest.mark.slow
def test_kill9_loop_under_mixed_writes(spawn):
    srv = spawn("--embedder", "hash", name="crash-loop")
    api = srv.api()
    u = create_user(api)
    a = create_agent(api)
    s = create_session(api, u["id"], a["id"])
    led = Ledger()
    rnd = random.Random(7)
    cut = 0  # cycles whose kill cut a request in flight
    for cycle in range(CYCLES):
        stop = threading.Event()
        root = api.root
        threads = [threading.Thread(target=writer, args=(root, s["id"], f"t{cycle}w{i}", stop, led, cycle * 10 + i))
                   for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.4, 1.2))
        with led.lock:
            flying = led.in_flight
        srv.kill9()
        stop.set()
        for t in threads:
            t.join(15)
        with led.lock:
            cut += led.in_flight > flying
        srv.restart()
        api = srv.api()
        settle_unanswered(api, u["id"], s["id"], led, cycle)
        with led.lock:
            content = dict(led.content)
            deleted = set(led.deleted)
            unknown = list(led.unknown)
        live = [i for i in content if i not in deleted]
        # acknowledged adds and updates are there, with the acknowledged text
        for k in range(0, len(live), 500):
            chunk = live[k:k + 500]
            got = {m["id"]: m["content"] for m in read_messages(api, s["id"], chunk)}
            for i in chunk:
                assert got[i] == content[i], f"cycle {cycle}: {i} has {got[i]!r}, acknowledged {content[i]!r}"
        # acknowledged deletes are gone
        for i in deleted:
            r = api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": [i]})
            assert r.status_code == 404, f"cycle {cycle}: deleted {i} is back"
        # unanswered rounds: all of a round's messages, or none
        for texts in unknown[-20:]:
            hits = set()
            for t in texts:
                res = ok(api.post(f"/users/{u['id']}/query", json={"query": t, "store_type": "keyword", "top_k": 50}))
                if any(r["content"] == t for r in res["results"]):
                    hits.add(t)
            assert hits in (set(), set(texts)), f"cycle {cycle}: a round was half-stored: {sorted(hits)} of {texts}"
        # every live message is findable by keyword right away (sample)
        for i in random.Random(cycle).sample(live, min(10, len(live))):
            res = ok(api.post(f"/users/{u['id']}/query", json={"query": content[i], "store_type": "keyword", "top_k": 20}))
            assert i in [r["id"] for r in res["results"]], f"cycle {cycle}: {i} not findable by keyword"
        # and by vector once the pipeline has caught up with what the restart found unembedded (sample)
        wait_for_vectors(api, u["id"], cycle)
        for i in random.Random(cycle + 1000).sample(live, min(5, len(live))):
            res = ok(api.post(f"/users/{u['id']}/query", json={"query": content[i], "store_type": "vector", "top_k": 5}))
            assert i in [r["id"] for r in res["results"]], f"cycle {cycle}: {i} not findable by vector"
    print(f"crash loop: {len(led.rounds)} rounds acknowledged, {len(led.unknown)} unanswered; "
          f"unanswered updates/deletes settled: {led.settled}")
    # the kills hit writes in flight (not only idle moments between requests)
    assert cut >= CYCLES // 2, f"only {cut} of {CYCLES} kills cut a request in flight"
    # the loop really wrote, updated and deleted (a quiet run would prove nothing)
    updated = sum(1 for i, t in led.content.items() if "updated" in t)
    assert len(led.rounds) >= 200 and updated >= 10 and len(led.deleted) >= 10, \
        (len(led.rounds), updated, len(led.deleted))
    # finally, the pipeline catches up: every live message gets a vector
    deadline = time.monotonic() + 60
    total = len([i for i in led.content if i not in led.deleted])
    while time.monotonic() < deadline:
        st = ok(api.get("/chunks/stats", params={"user_id": u["id"]}))
        if st["by_store"]["vector"] >= st["total_chunks"]:
            break
        time.sleep(0.2)
    assert st["by_store"]["vector"] >= st["total_chunks"] >= total
    # and by vector: the exact text of a live message finds it (sample)
    live = [i for i in led.content if i not in led.deleted]
    for i in random.Random(99).sample(live, min(20, len(live))):
        res = ok(api.post(f"/users/{u['id']}/query", json={"query": led.content[i], "store_type": "vector", "top_k": 5}))
        assert i in [r["id"] for r in res["results"]], f"{i} not findable by vector"
    srv.stop()
    r = run_cli("db", "validate", "--data-dir", srv.data_dir, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
