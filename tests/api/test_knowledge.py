"""SPEC §7: knowledge — all five calls, ownership, and the unknown-user 404 on each."""

import pytest

from helpers import (KNOWLEDGE_KEYS, add_knowledge, assert_record, create_user, fake_id, invalid, ok, query,
                     user_404, word)


def listing(api, uid):
    data = ok(api.get(f"/users/{uid}/knowledge"), 200, "Knowledge items retrieved successfully", keys={"knowledge"})
    for k in data["knowledge"]:
        assert_record(k, KNOWLEDGE_KEYS)
        assert k["user_id"] == uid
    return data["knowledge"]


def read(api, uid, ids):
    data = ok(api.post(f"/users/{uid}/knowledge/read", json={"knowledge_ids": ids}), 200,
              "Knowledge items retrieved successfully", keys={"knowledge"})
    for k in data["knowledge"]:
        assert_record(k, KNOWLEDGE_KEYS)
    return data["knowledge"]


def test_add_and_list(api):
    u = create_user(api)
    items = ["Paris is the capital of France.", "The user likes green tea. 🍵", "line\nbreak"]
    ids = add_knowledge(api, u["id"], items)
    assert len(set(ids)) == 3
    got = {k["id"]: k["content"] for k in listing(api, u["id"])}
    assert got == dict(zip(ids, items))
    assert [k["content"] for k in read(api, u["id"], ids)] == items


def test_add_empty_list(api):
    u = create_user(api)
    data = ok(api.post(f"/users/{u['id']}/knowledge", json={"knowledge": []}), 201,
              "Knowledge items added successfully", keys={"knowledge_ids"})
    assert data == {"knowledge_ids": []}
    assert listing(api, u["id"]) == []


@pytest.mark.parametrize("body,field", [({}, "knowledge"), ({"knowledge": "text"}, "knowledge"),
                                        ({"knowledge": ["ok", 5]}, "knowledge"), ({"knowledge": None}, "knowledge")])
def test_add_invalid_is_422(api, body, field):
    u = create_user(api)
    invalid(api.post(f"/users/{u['id']}/knowledge", json=body), field)
    assert listing(api, u["id"]) == []


def test_read_only_existing_ids_of_the_user(api):
    u, other = create_user(api), create_user(api)
    mine = add_knowledge(api, u["id"], ["k1", "k2"])
    theirs = add_knowledge(api, other["id"], ["secret of other"])
    got = read(api, u["id"], [mine[1], fake_id(), theirs[0], mine[0]])
    assert sorted(k["id"] for k in got) == sorted(mine)
    assert all(k["user_id"] == u["id"] for k in got)
    assert read(api, u["id"], theirs) == []
    assert read(api, u["id"], []) == []
    invalid(api.post(f"/users/{u['id']}/knowledge/read", json={}), "knowledge_ids")


def test_update(api):
    u = create_user(api)
    ids = add_knowledge(api, u["id"], ["a", "b", "c"])
    before = {k["id"]: k for k in listing(api, u["id"])}
    data = ok(api.put(f"/users/{u['id']}/knowledge", json={"knowledge_ids": [ids[0], ids[2]],
                                                          "new_knowledge": ["A", "C", "ignored extra"]}),
              200, "Knowledge items updated successfully", keys={"knowledge_ids"})
    assert data["knowledge_ids"] == [ids[0], ids[2]]
    after = {k["id"]: k for k in listing(api, u["id"])}
    assert [after[i]["content"] for i in ids] == ["A", "b", "C"]
    assert len(after) == 3, "extra new_knowledge must be ignored, not added"
    assert after[ids[1]] == before[ids[1]]
    assert after[ids[0]]["created_at"] == before[ids[0]]["created_at"]
    assert after[ids[0]]["updated_at"] > before[ids[0]]["updated_at"]


def test_update_fewer_new_is_422_and_changes_nothing(api):
    u = create_user(api)
    ids = add_knowledge(api, u["id"], ["a", "b"])
    before = listing(api, u["id"])
    invalid(api.put(f"/users/{u['id']}/knowledge", json={"knowledge_ids": ids, "new_knowledge": ["only one"]}))
    invalid(api.put(f"/users/{u['id']}/knowledge", json={"knowledge_ids": ids}), "new_knowledge")
    assert listing(api, u["id"]) == before


def test_update_returns_only_ids_actually_updated(api):
    u, other = create_user(api), create_user(api)
    ids = add_knowledge(api, u["id"], ["mine"])
    theirs = add_knowledge(api, other["id"], ["theirs"])
    data = ok(api.put(f"/users/{u['id']}/knowledge",
                      json={"knowledge_ids": [fake_id(), ids[0], theirs[0]], "new_knowledge": ["x", "MINE", "HACKED"]}))
    assert data["knowledge_ids"] == [ids[0]]
    assert [k["content"] for k in listing(api, u["id"])] == ["MINE"]
    assert [k["content"] for k in listing(api, other["id"])] == ["theirs"]


def test_delete_returns_only_ids_actually_deleted(api):
    u, other = create_user(api), create_user(api)
    ids = add_knowledge(api, u["id"], ["one", "two"])
    theirs = add_knowledge(api, other["id"], ["theirs"])
    data = ok(api.delete(f"/users/{u['id']}/knowledge", json={"knowledge_ids": [ids[0], fake_id(), theirs[0]]}),
              200, "Knowledge items deleted successfully", keys={"knowledge_ids"})
    assert data["knowledge_ids"] == [ids[0]]
    assert [k["id"] for k in listing(api, u["id"])] == [ids[1]]
    assert [k["id"] for k in listing(api, other["id"])] == theirs
    data = ok(api.delete(f"/users/{u['id']}/knowledge", json={"knowledge_ids": [ids[0]]}))
    assert data["knowledge_ids"] == []
    invalid(api.delete(f"/users/{u['id']}/knowledge", json={}), "knowledge_ids")


def test_unknown_user_is_404_on_all_five(api):
    uid = fake_id()
    user_404(api.get(f"/users/{uid}/knowledge"), uid)
    user_404(api.post(f"/users/{uid}/knowledge", json={"knowledge": ["x"]}), uid)
    user_404(api.post(f"/users/{uid}/knowledge/read", json={"knowledge_ids": [fake_id()]}), uid)
    user_404(api.put(f"/users/{uid}/knowledge", json={"knowledge_ids": [fake_id()], "new_knowledge": ["x"]}), uid)
    user_404(api.delete(f"/users/{uid}/knowledge", json={"knowledge_ids": [fake_id()]}), uid)


def test_knowledge_is_indexed_updated_and_removed_in_search(api):
    u = create_user(api)
    old, new = word("kold"), word("knew")
    ids = add_knowledge(api, u["id"], [f"fact about {old}"])
    res = query(api, u["id"], old, store_type="keyword")
    assert [(r["id"], r["type"]) for r in res] == [(ids[0], "knowledge")]
    ok(api.put(f"/users/{u['id']}/knowledge", json={"knowledge_ids": ids, "new_knowledge": [f"fact about {new}"]}))
    assert query(api, u["id"], old, store_type="keyword") == []
    assert [r["id"] for r in query(api, u["id"], new, store_type="keyword")] == ids
    ok(api.delete(f"/users/{u['id']}/knowledge", json={"knowledge_ids": ids}))
    assert query(api, u["id"], new, store_type="keyword") == []
    assert query(api, u["id"], new, top_k=20) == []
