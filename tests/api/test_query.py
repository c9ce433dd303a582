"""SPEC §8: POST /users/{uid}/query — checks in order, top_k, store_type, result shape, scope,
include flags, agent filter, tenant isolation, and immediate visibility of new messages."""

import pytest

from helpers import (add_knowledge, add_messages, create_agent, create_session, create_user, error, fake_id,
                     invalid, msgs, ok, query, user_404, word, world)


def q(api, uid, **body):
    return api.post(f"/users/{uid}/query", json=body)


# ---------------------------------------------------------------------------------------------
# Checks and validation


def test_unknown_user_is_404(api):
    uid = fake_id()
    user_404(q(api, uid, query="x"), uid)
    # the user is checked before the session and agent
    user_404(q(api, uid, query="x", session_id=fake_id(), agent_id=fake_id()), uid)


def test_unknown_or_foreign_session_is_404(api):
    u, a, s = world(api)
    other, _, other_s = world(api, agent=a)
    sid = fake_id()
    for bad in (sid, other_s["id"]):
        error(q(api, u["id"], query="x", session_id=bad), 404, f"Session '{bad}' not found for user '{u['id']}'",
              field="session_id")
    # session is checked before agent
    error(q(api, u["id"], query="x", session_id=sid, agent_id=fake_id()), 404,
          f"Session '{sid}' not found for user '{u['id']}'", field="session_id")
    ok(q(api, u["id"], query="x", session_id=s["id"]))


def test_unknown_agent_is_404(api):
    u, a, s = world(api)
    aid = fake_id()
    error(q(api, u["id"], query="x", agent_id=aid), 404, f"Agent '{aid}' not found", field="agent_id")
    ok(q(api, u["id"], query="x", agent_id=a["id"]))


@pytest.mark.parametrize("body,field", [
    ({}, "query"), ({"query": None}, "query"), ({"query": 12}, "query"),
    ({"query": "x", "top_k": 1001}, "top_k"), ({"query": "x", "top_k": "abc"}, "top_k"),
    ({"query": "x", "top_k": [5]}, "top_k"),
    ({"query": "x", "store_type": "hybrid"}, "store_type"), ({"query": "x", "store_type": "foo"}, "store_type"),
    ({"query": "x", "store_type": "KEYWORD"}, "store_type"), ({"query": "x", "store_type": 1}, "store_type"),
    ({"query": "x", "include_knowledge": "nope"}, "include_knowledge"),
])
def test_invalid_body_is_422(api, body, field):
    u = create_user(api)
    invalid(q(api, u["id"], **body), field)


# ---------------------------------------------------------------------------------------------
# top_k


@pytest.fixture
def eight(api):
    u, a, s = world(api)
    w = word()
    ids = add_messages(api, s["id"], msgs(*[f"{w} item number {i}" for i in range(8)]))
    return u, s, w, ids


def test_top_k_default_is_5(api, eight):
    u, s, w, ids = eight
    assert len(query(api, u["id"], w, store_type="keyword")) == 5
    assert len(query(api, u["id"], w, store_type="keyword", top_k=None)) == 5


@pytest.mark.parametrize("k,expected", [(0, 5), (-1, 5), (-1000, 5), (1, 1), (3, 3), (7, 7), (8, 8), (1000, 8)])
def test_top_k_values(api, eight, k, expected):
    u, s, w, ids = eight
    res = query(api, u["id"], w, store_type="keyword", top_k=k)
    assert len(res) == expected
    assert {r["id"] for r in res} <= set(ids)


def test_results_never_exceed_top_k_for_any_store(api, eight):
    u, s, w, ids = eight
    for st in (None, "keyword", "vector", "graph"):
        opts = {"top_k": 3}
        if st:
            opts["store_type"] = st
        assert len(query(api, u["id"], w, **opts)) <= 3


# ---------------------------------------------------------------------------------------------
# store_type and result shape


def test_keyword_and_default_find_bm25_hits(api):
    u, a, s = world(api)
    w = word()
    ids = add_messages(api, s["id"], msgs(f"I really like {w}", "something unrelated entirely", role="alt"))
    kw = query(api, u["id"], w, store_type="keyword", top_k=10)
    assert [r["id"] for r in kw] == ids[:1]
    assert kw[0]["metadata"]["retrieval"]["source"] == "keyword"
    hybrid = query(api, u["id"], w, top_k=10)
    assert ids[0] in [r["id"] for r in hybrid]
    hybrid_null = query(api, u["id"], w, top_k=10, store_type=None)
    assert ids[0] in [r["id"] for r in hybrid_null]


@pytest.mark.parametrize("st", ["vector", "graph"])
def test_vector_and_graph_answer_200(api, st):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("the cat sat on the mat", "dogs are loyal animals"))
    res = query(api, u["id"], "cat on a mat", store_type=st, top_k=10)
    for r in res:
        assert r["id"] in ids
        assert r["metadata"]["retrieval"]["source"] == st
        assert r["metadata"]["user_id"] == u["id"]


def test_message_result_fields(api):
    u, a, s = world(api)
    w = word()
    ids = add_messages(api, s["id"], [{"role": "assistant", "content": f"answer with {w}"}])
    rec = ok(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": ids}))["messages"][0]
    for st in ("keyword", None):
        opts = {"store_type": st} if st else {}
        res = query(api, u["id"], w, top_k=10, **opts)
        hit = [r for r in res if r["id"] == ids[0]]
        assert hit, res
        r = hit[0]
        assert r["content"] == f"answer with {w}"
        assert r["type"] == "message" and r["role"] == "assistant"
        assert r["created_at"] == rec["created_at"] and r["updated_at"] == rec["updated_at"]
        md = r["metadata"]
        assert md["user_id"] == u["id"] and md["agent_id"] == a["id"]
        assert md["session_id"] == s["id"] and md["session_name"] == s["name"]
        assert md["level"] == 0 and md["scope"] is None
        if "similarity" in md["retrieval"]:
            assert isinstance(md["retrieval"]["similarity"], (int, float))


def test_knowledge_result_fields(api):
    u, a, s = world(api)
    w = word()
    kid = add_knowledge(api, u["id"], [f"knowledge about {w}"])[0]
    for sid in (None, s["id"]):
        opts = {"session_id": sid} if sid else {}
        res = query(api, u["id"], w, store_type="keyword", **opts)
        assert len(res) == 1
        r = res[0]
        assert r["id"] == kid and r["content"] == f"knowledge about {w}"
        assert r["type"] == "knowledge" and r["role"] is None
        md = r["metadata"]
        assert md["user_id"] == u["id"] and md["level"] == 0
        assert md["session_id"] is None and md["session_name"] is None and md["agent_id"] is None
        assert md["scope"] is None, "a hit without a session has scope null"


def test_no_results_message(api):
    u = create_user(api)
    r = q(api, u["id"], query=word())
    data = ok(r, 200, "No results found", keys={"results", "total"})
    assert data == {"results": [], "total": 0}


def test_found_n_results_message(api):
    u, a, s = world(api)
    w = word()
    add_messages(api, s["id"], msgs(f"{w} a", f"{w} b", f"{w} c"))
    r = q(api, u["id"], query=w, store_type="keyword")
    data = ok(r, 200, "Found 3 results")
    assert data["total"] == 3
    r = q(api, u["id"], query=w, store_type="keyword", top_k=1)
    ok(r, 200, "Found 1 results")


def test_scores_sorted_and_bounded(api):
    u, a, s = world(api)
    w = word()
    add_messages(api, s["id"], msgs(f"{w}", f"{w} {w} {w} repeated", f"a long text that mentions {w} only once "
                                                                      "among many many other words of filler"))
    add_knowledge(api, u["id"], [f"{w} knowledge"])
    for st in (None, "keyword", "vector"):
        opts = {"store_type": st} if st else {}
        query(api, u["id"], w, top_k=20, **opts)  # query() checks sort order and [0, 1]


def test_explain_keeps_the_result_shape(api):
    u, a, s = world(api)
    w = word()
    ids = add_messages(api, s["id"], msgs(f"{w} explained"))
    res = query(api, u["id"], w, explain=True, top_k=5)
    assert ids[0] in [r["id"] for r in res]


# ---------------------------------------------------------------------------------------------
# Scope, include flags, agent filter, isolation


def test_scope_tags(api):
    u, a, s1 = world(api)
    s2 = create_session(api, u["id"], a["id"])
    w = word()
    m1 = add_messages(api, s1["id"], msgs(f"{w} in session one"))
    m2 = add_messages(api, s2["id"], msgs(f"{w} in session two"))
    k = add_knowledge(api, u["id"], [f"{w} as knowledge"])
    res = query(api, u["id"], w, store_type="keyword", session_id=s1["id"], top_k=10)
    scope = {r["id"]: r["metadata"]["scope"] for r in res}
    assert scope == {m1[0]: "in_session", m2[0]: "cross_session", k[0]: None}
    res = query(api, u["id"], w, store_type="keyword", session_id=s2["id"], top_k=10)
    scope = {r["id"]: r["metadata"]["scope"] for r in res}
    assert scope == {m1[0]: "cross_session", m2[0]: "in_session", k[0]: None}
    res = query(api, u["id"], w, store_type="keyword", top_k=10)
    assert {r["id"]: r["metadata"]["scope"] for r in res} == {m1[0]: None, m2[0]: None, k[0]: None}
    # the default (hybrid) path tags the same way
    for r in query(api, u["id"], w, session_id=s1["id"], top_k=10):
        if r["type"] == "message":
            expected = "in_session" if r["metadata"]["session_id"] == s1["id"] else "cross_session"
            assert r["metadata"]["scope"] == expected, r
        else:
            assert r["metadata"]["scope"] is None


def test_include_flags(api):
    u, a, s = world(api)
    w = word()
    m = add_messages(api, s["id"], msgs(f"{w} message"))
    k = add_knowledge(api, u["id"], [f"{w} knowledge"])
    for st in ("keyword", None):
        opts = {"store_type": st} if st else {}
        both = {r["id"] for r in query(api, u["id"], w, top_k=10, **opts)}
        assert both == set(m + k)
        only_k = query(api, u["id"], w, top_k=10, include_messages=False, **opts)
        assert {r["id"] for r in only_k} == set(k) and all(r["type"] == "knowledge" for r in only_k)
        only_m = query(api, u["id"], w, top_k=10, include_knowledge=False, **opts)
        assert {r["id"] for r in only_m} == set(m) and all(r["type"] == "message" for r in only_m)
        assert query(api, u["id"], w, top_k=10, include_messages=False, include_knowledge=False, **opts) == []
        explicit = {r["id"] for r in query(api, u["id"], w, top_k=10, include_messages=True,
                                           include_knowledge=True, **opts)}
        assert explicit == set(m + k)


def test_agent_filter_restricts_messages_not_knowledge(api):
    u = create_user(api)
    a1, a2 = create_agent(api), create_agent(api)
    s1, s2 = create_session(api, u["id"], a1["id"]), create_session(api, u["id"], a2["id"])
    w = word()
    m1 = add_messages(api, s1["id"], msgs(f"{w} with agent one"))
    m2 = add_messages(api, s2["id"], msgs(f"{w} with agent two"))
    k = add_knowledge(api, u["id"], [f"{w} knowledge"])
    res = query(api, u["id"], w, store_type="keyword", agent_id=a1["id"], top_k=10)
    assert {r["id"] for r in res} == set(m1 + k)
    res = query(api, u["id"], w, store_type="keyword", agent_id=a2["id"], top_k=10)
    assert {r["id"] for r in res} == set(m2 + k)
    for st in (None, "vector"):
        opts = {"store_type": st} if st else {}
        for r in query(api, u["id"], w, agent_id=a1["id"], top_k=50, **opts):
            assert r["id"] not in m2, f"agent filter ignored by {st}: {r}"
    # agent with no session of this user: knowledge only
    a3 = create_agent(api)
    res = query(api, u["id"], w, store_type="keyword", agent_id=a3["id"], top_k=10)
    assert {r["id"] for r in res} == set(k)


def test_search_never_returns_another_users_data(api):
    a = create_agent(api)
    u1, _, s1 = world(api, agent=a)
    u2, _, s2 = world(api, agent=a)
    w = word()
    mine = add_messages(api, s1["id"], msgs(f"{w} belongs to one"))
    mine += add_knowledge(api, u1["id"], [f"{w} knowledge of one"])
    theirs = add_messages(api, s2["id"], msgs(f"{w} belongs to two", f"{w} {w} two again"))
    theirs += add_knowledge(api, u2["id"], [f"{w} knowledge of two"])
    for st in (None, "keyword", "vector", "graph"):
        opts = {"store_type": st} if st else {}
        res = query(api, u1["id"], w, top_k=1000, **opts)
        assert {r["id"] for r in res} <= set(mine), f"{st}: {res}"
        assert all(r["metadata"]["user_id"] == u1["id"] for r in res)
        res = query(api, u1["id"], w, top_k=1000, session_id=s1["id"], agent_id=a["id"], **opts)
        assert {r["id"] for r in res} <= set(mine)
    assert {r["id"] for r in query(api, u1["id"], w, store_type="keyword", top_k=100)} == set(mine)


def test_new_messages_are_searchable_immediately(api):
    u, a, s = world(api)
    for i in range(10):
        w = word()
        ids = add_messages(api, s["id"], msgs(f"brand new fact {w}"))
        assert [r["id"] for r in query(api, u["id"], w, store_type="keyword")] == ids, f"iteration {i}"
        assert ids[0] in [r["id"] for r in query(api, u["id"], w, top_k=100)], f"hybrid, iteration {i}"


def test_result_metadata_follows_session_rename(api):
    u, a, s = world(api)
    w = word()
    ids = add_messages(api, s["id"], msgs(f"{w} before the rename"))
    new_name = "renamed-" + w
    ok(api.put(f"/sessions/{s['id']}", json={"name": new_name}))
    for st in ("keyword", None):
        opts = {"store_type": st} if st else {}
        hit = [r for r in query(api, u["id"], w, top_k=10, **opts) if r["id"] == ids[0]]
        assert hit and hit[0]["metadata"]["session_name"] == new_name, hit
