"""SPEC §10 introspection, as this project defines it: a chunk is a retrieval unit; for now one chunk
per message (chunk_id = message id) and one per knowledge item (counted in stats)."""

import pytest

from helpers import (add_knowledge, add_messages, create_session, describe, error, fake_id, msgs, ok,
                     session_404, user_404, world)

CHUNK_META = {"session_id", "round_id", "user_id", "role", "strategy", "created_at"}


def chunks_of(api, path, id_key, id_value, **params):
    r = api.get(path, params=params)
    data = ok(r)
    assert {"chunks", "total_count", id_key, "store_type"} <= set(data), describe(r)
    assert data[id_key] == id_value
    assert data["store_type"] == params.get("store_type", data["store_type"])
    if "store_type" not in params:
        assert data["store_type"] in (None, "all"), describe(r)
    assert isinstance(data["total_count"], int)
    for c in data["chunks"]:
        assert set(c) == {"chunk_id", "content", "metadata"}, c
        assert CHUNK_META <= set(c["metadata"]), c
    ids = [c["chunk_id"] for c in data["chunks"]]
    assert len(ids) == len(set(ids)), f"duplicate chunks: {describe(r)}"
    return data


def session_chunks(api, sid, **params):
    return chunks_of(api, f"/sessions/{sid}/chunks", "session_id", sid, **params)


def round_chunks(api, rid, **params):
    return chunks_of(api, f"/rounds/{rid}/chunks", "round_id", rid, **params)


@pytest.fixture
def two_rounds(api):
    u, a, s = world(api)
    r1 = add_messages(api, s["id"], msgs("round one a", "round one b", "round one c", role="alt"))
    r2 = add_messages(api, s["id"], msgs("round two a", "round two b", role="alt"))
    recs = ok(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": r1 + r2}))["messages"]
    return u, s, r1, r2, {m["id"]: m for m in recs}


def test_one_chunk_per_message(api, two_rounds):
    u, s, r1, r2, recs = two_rounds
    data = session_chunks(api, s["id"], limit=100)
    assert data["total_count"] == 5 and len(data["chunks"]) == 5
    by_id = {c["chunk_id"]: c for c in data["chunks"]}
    assert set(by_id) == set(r1 + r2)
    for cid, c in by_id.items():
        m = recs[cid]
        md = c["metadata"]
        assert c["content"] == m["content"]
        assert md["session_id"] == s["id"] and md["user_id"] == u["id"] and md["role"] == m["role"]
        assert md["strategy"] == "message" and md["created_at"] == m["created_at"]
    rounds1 = {by_id[i]["metadata"]["round_id"] for i in r1}
    rounds2 = {by_id[i]["metadata"]["round_id"] for i in r2}
    assert len(rounds1) == 1 and len(rounds2) == 1 and rounds1 != rounds2
    assert all(isinstance(x, str) and x for x in rounds1 | rounds2)


def test_limit_default_and_cap(api):
    u, a, s = world(api)
    add_messages(api, s["id"], msgs(*[f"chunk {i}" for i in range(120)]))
    assert len(session_chunks(api, s["id"])["chunks"]) == 20
    assert len(session_chunks(api, s["id"], limit=500)["chunks"]) == 100
    assert len(session_chunks(api, s["id"], limit=100)["chunks"]) == 100
    assert len(session_chunks(api, s["id"], limit=5)["chunks"]) == 5


def test_sorting(api, two_rounds):
    u, s, r1, r2, recs = two_rounds
    asc = session_chunks(api, s["id"], sort_by="created_at", order="asc")["chunks"]
    stamps = [c["metadata"]["created_at"] for c in asc]
    assert stamps == sorted(stamps)
    desc = session_chunks(api, s["id"], sort_by="created_at", order="desc")["chunks"]
    stamps = [c["metadata"]["created_at"] for c in desc]
    assert stamps == sorted(stamps, reverse=True)
    ids = [c["chunk_id"] for c in session_chunks(api, s["id"], sort_by="chunk_id", order="asc")["chunks"]]
    assert ids == sorted(r1 + r2)
    ids = [c["chunk_id"] for c in session_chunks(api, s["id"], sort_by="chunk_id", order="desc")["chunks"]]
    assert ids == sorted(r1 + r2, reverse=True)
    ids = [c["chunk_id"] for c in session_chunks(api, s["id"], sort_by="chunk_id", order="asc", limit=2)["chunks"]]
    assert ids == sorted(r1 + r2)[:2]
    assert len(session_chunks(api, s["id"], sort_by="strategy")["chunks"]) == 5


CHUNK_400 = [
    ({"limit": "0"}, "Invalid limit parameter", "limit", "Limit must be greater than 0"),
    ({"limit": "x"}, "Invalid limit parameter", "limit", "Limit must be an integer"),
    ({"sort_by": "timestamp"}, "Invalid sort_by parameter", "sort_by",
     "sort_by must be one of: created_at, chunk_id, strategy"),
    ({"order": "sideways"}, "Invalid order parameter", "order", "order must be one of: asc, desc"),
    ({"store_type": "hybrid"}, "Invalid store_type parameter", "store_type",
     "store_type must be one of: vector, keyword, graph"),
    ({"store_type": "foo"}, "Invalid store_type parameter", "store_type",
     "store_type must be one of: vector, keyword, graph"),
]


@pytest.mark.parametrize("params,message,field,field_message", CHUNK_400,
                         ids=[f"{k}={v}" for p, *_ in CHUNK_400 for k, v in p.items()])
def test_bad_parameters_are_400(api, two_rounds, params, message, field, field_message):
    u, s, r1, r2, recs = two_rounds
    rid = session_chunks(api, s["id"])["chunks"][0]["metadata"]["round_id"]
    for path in (f"/sessions/{s['id']}/chunks", f"/rounds/{rid}/chunks"):
        r = api.get(path, params=params)
        body = error(r, 400, message, field=field, field_message=field_message)
        assert body["errors"] == [{"field": field, "message": field_message}], describe(r)


def test_store_type_filter(api, two_rounds):
    u, s, r1, r2, recs = two_rounds
    kw = session_chunks(api, s["id"], store_type="keyword", limit=100)
    assert {c["chunk_id"] for c in kw["chunks"]} == set(r1 + r2), "keyword chunks exist as soon as the add returns"
    for st in ("vector", "graph"):
        data = session_chunks(api, s["id"], store_type=st, limit=100)
        assert {c["chunk_id"] for c in data["chunks"]} <= set(r1 + r2)


def test_unknown_session_and_round_are_404(api):
    sid, rid = fake_id(), fake_id()
    session_404(api.get(f"/sessions/{sid}/chunks"), sid)
    error(api.get(f"/rounds/{rid}/chunks"), 404, f"Round with ID '{rid}' not found", field="round_id")


def test_round_chunks(api, two_rounds):
    u, s, r1, r2, recs = two_rounds
    by_id = {c["chunk_id"]: c for c in session_chunks(api, s["id"])["chunks"]}
    for r in (r1, r2):
        rid = by_id[r[0]]["metadata"]["round_id"]
        data = round_chunks(api, rid, limit=100)
        assert {c["chunk_id"] for c in data["chunks"]} == set(r)
        assert data["total_count"] == len(r)
        assert all(c["metadata"]["round_id"] == rid for c in data["chunks"])
        asc = [c["chunk_id"] for c in round_chunks(api, rid, sort_by="chunk_id", order="asc")["chunks"]]
        assert asc == sorted(r)
        assert len(round_chunks(api, rid, limit=1)["chunks"]) == 1


def test_chunks_follow_message_updates(api, two_rounds):
    u, s, r1, r2, recs = two_rounds
    ok(api.put(f"/sessions/{s['id']}/messages", json={"message_ids": [r1[0]], "new_messages": msgs("rewritten")}))
    by_id = {c["chunk_id"]: c for c in session_chunks(api, s["id"], limit=100)["chunks"]}
    assert by_id[r1[0]]["content"] == "rewritten"
    ok(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": r2}))
    ids = {c["chunk_id"] for c in session_chunks(api, s["id"], limit=100)["chunks"]}
    assert ids == set(r1)
    rid = by_id[r2[0]]["metadata"]["round_id"]
    r = api.get(f"/rounds/{rid}/chunks")
    if r.status_code == 200:
        assert ok(r)["chunks"] == []
    else:
        error(r, 404, f"Round with ID '{rid}' not found", field="round_id")


def test_stats(api):
    u, a, s1 = world(api)
    s2 = create_session(api, u["id"], a["id"])
    add_messages(api, s1["id"], msgs("a", "b", "c"))
    add_messages(api, s2["id"], msgs("d", "e"))
    add_knowledge(api, u["id"], ["k1", "k2"])
    data = ok(api.get("/chunks/stats", params={"user_id": u["id"]}))
    assert {"total_chunks", "by_store", "filters"} <= set(data)
    assert data["total_chunks"] == 7
    assert isinstance(data["by_store"], dict) and isinstance(data["filters"], dict)
    assert data["filters"].get("user_id") == u["id"]
    data = ok(api.get("/chunks/stats/", params={"user_id": u["id"], "session_id": s1["id"]}))
    assert data["total_chunks"] == 3
    assert data["filters"].get("user_id") == u["id"] and data["filters"].get("session_id") == s1["id"]
    uid = fake_id()
    user_404(api.get("/chunks/stats", params={"user_id": uid}), uid)
    # another user's numbers are separate
    other, _, so = world(api, agent=a)
    assert ok(api.get("/chunks/stats", params={"user_id": other["id"]}))["total_chunks"] == 0
