"""SPEC §6: messages — add, list (all four parameters), read, update, delete."""

import json

import pytest

from helpers import (MESSAGE_KEYS, add_messages, assert_record, create_agent, create_session, create_user,
                     describe, error, fake_id, invalid, list_ids, list_messages, msgs, ok, query, read_messages,
                     session_404, word, world)


def ids_not_found(r, missing):
    """404 "Some message IDs were not found" listing exactly `missing`."""
    body = error(r, 404, "Some message IDs were not found")
    assert len(body["errors"]) == 1, describe(r)
    item = body["errors"][0]
    assert item["field"] == "message_ids", describe(r)
    prefix = "Message IDs not found: "
    assert item["message"].startswith(prefix), describe(r)
    listed = item["message"][len(prefix):].split(", ")
    assert sorted(listed) == sorted(missing), f"listed {listed}, expected {missing}"
    assert item["message"] == prefix + ", ".join(missing), "ids should be listed in request order"


# ---------------------------------------------------------------------------------------------
# Add


def test_add_returns_one_id_per_input_in_order(api):
    u, a, s = world(api)
    batch = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
             {"role": "system", "content": "be nice"}]
    ids = add_messages(api, s["id"], batch)
    got = read_messages(api, s["id"], ids)
    assert [(m["role"], m["content"]) for m in got] == [(b["role"], b["content"]) for b in batch]
    for m, i in zip(got, ids):
        assert_record(m, MESSAGE_KEYS)
        assert m["id"] == i and m["session_id"] == s["id"]


def test_add_ignores_extra_fields(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], [{"role": "user", "content": "x", "metadata": {"a": 1}, "name": "n",
                                       "id": "client-id", "created_at": "1999-01-01T00:00:00.000000Z"}])
    m = read_messages(api, s["id"], ids)[0]
    assert set(m) == MESSAGE_KEYS and m["id"] != "client-id" and not m["created_at"].startswith("1999")


def test_content_round_trips_exactly(api):
    u, a, s = world(api)
    texts = ['quotes " and \\ backslash', "new\nline\ttab\r", "emoji 🎉 中文 ﷺ", "<b>html</b> & amp;",
             "  leading and trailing  ", "{\"json\": [1, 2]}", "\u2028\u2029", "a" * 100000]
    raw = json.dumps({"messages": msgs(*texts)}, ensure_ascii=False).encode()
    r = api.post(f"/sessions/{s['id']}/messages", data=raw, headers={"Content-Type": "application/json"})
    ids = ok(r, 201)["message_ids"]
    assert [m["content"] for m in read_messages(api, s["id"], ids)] == texts
    assert [m["content"] for m in list_messages(api, s["id"], order="asc")] == texts


@pytest.mark.parametrize("role", ["tool", "User", "", "function", None, 3])
def test_role_outside_enum_is_422(api, role):
    u, a, s = world(api)
    invalid(api.post(f"/sessions/{s['id']}/messages", json={"messages": [{"role": role, "content": "x"}]}), "role")
    assert list_ids(api, s["id"]) == []


@pytest.mark.parametrize("msg", [{"role": "user", "content": ""}, {"role": "user"}, {"content": "x"},
                                 {"role": "user", "content": None}, {"role": "user", "content": ["x"]}])
def test_bad_message_is_422(api, msg):
    u, a, s = world(api)
    field = "role" if "role" not in msg else "content"
    invalid(api.post(f"/sessions/{s['id']}/messages", json={"messages": msgs("fine") + [msg]}), field)
    assert list_ids(api, s["id"]) == []


def test_missing_messages_key_is_422(api):
    u, a, s = world(api)
    body = invalid(api.post(f"/sessions/{s['id']}/messages", json={"msgs": []}), "messages")
    assert {"type": "missing", "loc": ["body", "messages"], "msg": "Field required"} in \
        [{k: d[k] for k in ("type", "loc", "msg")} for d in body["detail"]]


def test_unknown_session_is_404_on_every_route(api):
    sid = fake_id()
    session_404(api.post(f"/sessions/{sid}/messages", json={"messages": msgs("x")}), sid)
    session_404(api.get(f"/sessions/{sid}/messages"), sid)
    session_404(api.post(f"/sessions/{sid}/messages/read", json={"message_ids": [fake_id()]}), sid)
    session_404(api.put(f"/sessions/{sid}/messages", json={"message_ids": [fake_id()], "new_messages": msgs("y")}),
                sid)
    session_404(api.delete(f"/sessions/{sid}/messages", json={"message_ids": [fake_id()]}), sid)


def test_added_message_is_visible_to_the_very_next_request(api):
    u, a, s = world(api)
    for i in range(10):
        w = word()
        ids = add_messages(api, s["id"], msgs(f"fresh {w} number {i}"))
        res = query(api, u["id"], w, store_type="keyword")
        assert [x["id"] for x in res] == ids, f"round {i}: keyword query missed a message just added"
        assert list_ids(api, s["id"], limit=1) == ids
        assert [m["id"] for m in read_messages(api, s["id"], ids)] == ids


# ---------------------------------------------------------------------------------------------
# List


def test_list_defaults_newest_first_limit_20(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs(*[f"m{i}" for i in range(25)]))
    got = list_messages(api, s["id"])
    assert [m["id"] for m in got] == list(reversed(ids))[:20]
    assert [m["content"] for m in got] == [f"m{i}" for i in range(24, 4, -1)]


def test_list_limit_is_capped_to_100(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs(*[f"c{i}" for i in range(120)]))
    for lim in (100, 101, 1000, 99999999):
        assert list_ids(api, s["id"], limit=lim, order="asc") == ids[:100]
    assert list_ids(api, s["id"], limit=100) == list(reversed(ids))[:100]
    assert list_ids(api, s["id"], limit=7, order="asc") == ids[:7]
    assert list_ids(api, s["id"], limit=1) == [ids[-1]]


def test_order_and_sort_by_timestamp_across_rounds(api):
    u, a, s = world(api)
    r1 = add_messages(api, s["id"], msgs("r1a", "r1b", "r1c", role="alt"))
    r2 = add_messages(api, s["id"], msgs("r2a", "r2b", role="alt"))
    r3 = add_messages(api, s["id"], msgs("r3a"))
    everything = r1 + r2 + r3
    assert list_ids(api, s["id"], order="asc") == everything
    assert list_ids(api, s["id"], order="desc") == everything[::-1]
    assert list_ids(api, s["id"], sort_by="timestamp", order="asc") == everything
    assert list_ids(api, s["id"], sort_by="timestamp") == everything[::-1]
    # sort then limit
    assert list_ids(api, s["id"], order="asc", limit=2) == everything[:2]
    assert list_ids(api, s["id"], order="desc", limit=2) == everything[::-1][:2]
    asc = list_messages(api, s["id"], order="asc")
    stamps = [m["created_at"] for m in asc]
    assert stamps == sorted(stamps)


def test_sort_by_id(api):
    u, a, s = world(api)
    ids = []
    for i in range(4):
        ids += add_messages(api, s["id"], msgs(f"i{i}a", f"i{i}b"))
    asc = list_ids(api, s["id"], sort_by="id", order="asc")
    desc = list_ids(api, s["id"], sort_by="id", order="desc")
    assert asc == sorted(ids)
    assert desc == sorted(ids, reverse=True)
    assert list_ids(api, s["id"], sort_by="id", order="asc", limit=3) == sorted(ids)[:3]


def test_one_call_keeps_input_order_under_both_orders(api):
    u, a, s = world(api)
    contents = [f"same-call-{i:02d}" for i in range(30)]
    ids = add_messages(api, s["id"], msgs(*contents, role="alt"))
    assert list_ids(api, s["id"], order="asc", limit=100) == ids
    assert list_ids(api, s["id"], order="desc", limit=100) == ids[::-1]


def test_parameters_are_case_insensitive_for_buffer_only(api):
    u, a, s = world(api)
    add_messages(api, s["id"], msgs("x"))
    for v in ("true", "TRUE", "True", "false", "FALSE", "fAlSe"):
        list_messages(api, s["id"], buffer_only=v)


LIST_400 = [
    ({"limit": "0"}, "Invalid limit parameter", "limit", "Limit must be greater than 0"),
    ({"limit": "-5"}, "Invalid limit parameter", "limit", "Limit must be greater than 0"),
    ({"limit": "abc"}, "Invalid limit parameter", "limit", "Limit must be an integer"),
    ({"limit": "1.5"}, "Invalid limit parameter", "limit", "Limit must be an integer"),
    ({"limit": ""}, "Invalid limit parameter", "limit", "Limit must be an integer"),
    ({"sort_by": "name"}, "Invalid sort_by parameter", "sort_by", "sort_by must be one of: timestamp, id"),
    ({"sort_by": "created_at"}, "Invalid sort_by parameter", "sort_by", "sort_by must be one of: timestamp, id"),
    ({"order": "up"}, "Invalid order parameter", "order", "order must be one of: asc, desc"),
    ({"order": "ASCENDING"}, "Invalid order parameter", "order", "order must be one of: asc, desc"),
    ({"buffer_only": "yes"}, "Invalid buffer_only parameter", "buffer_only", "buffer_only must be 'true' or 'false'"),
    ({"buffer_only": "1"}, "Invalid buffer_only parameter", "buffer_only", "buffer_only must be 'true' or 'false'"),
    ({"buffer_only": ""}, "Invalid buffer_only parameter", "buffer_only", "buffer_only must be 'true' or 'false'"),
]


@pytest.mark.parametrize("params,message,field,field_message", LIST_400,
                         ids=[f"{k}={v}" for p, *_ in LIST_400 for k, v in p.items()])
def test_list_bad_parameters_are_400(api, params, message, field, field_message):
    u, a, s = world(api)
    r = api.get(f"/sessions/{s['id']}/messages", params=params)
    body = error(r, 400, message, field=field, field_message=field_message)
    assert body["errors"] == [{"field": field, "message": field_message}], describe(r)
    # validated before the session lookup
    r = api.get(f"/sessions/{fake_id()}/messages", params=params)
    error(r, 400, message, field=field, field_message=field_message)


# ---------------------------------------------------------------------------------------------
# Read


def test_read_in_request_order(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("a", "b", "c", "d"))
    order = [ids[2], ids[0], ids[3]]
    assert [m["id"] for m in read_messages(api, s["id"], order)] == order
    assert [m["content"] for m in read_messages(api, s["id"], order)] == ["c", "a", "d"]


def test_read_unknown_ids_is_404_listing_them(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("a", "b"))
    x, y = fake_id(), fake_id()
    ids_not_found(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": [ids[0], x, ids[1], y]}),
                  [x, y])
    ids_not_found(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": [x]}), [x])


def test_read_message_of_another_session_is_404(api):
    u, a, s = world(api)
    other = create_session(api, u["id"], a["id"])
    mine = add_messages(api, s["id"], msgs("mine"))
    theirs = add_messages(api, other["id"], msgs("theirs"))
    ids_not_found(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": mine + theirs}), theirs)


def test_read_missing_key_is_422(api):
    u, a, s = world(api)
    invalid(api.post(f"/sessions/{s['id']}/messages/read", json={}), "message_ids")
    invalid(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": "abc"}), "message_ids")


# ---------------------------------------------------------------------------------------------
# Update


def test_update_pairwise(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("one", "two", "three"))
    before = {m["id"]: m for m in read_messages(api, s["id"], ids)}
    r = api.put(f"/sessions/{s['id']}/messages",
                json={"message_ids": [ids[2], ids[0]],
                      "new_messages": [{"role": "assistant", "content": "THREE"}, {"role": "system", "content": "ONE"}]})
    data = ok(r, 200, "Messages updated successfully")
    assert data["message_ids"] == [ids[2], ids[0]]
    after = {m["id"]: m for m in read_messages(api, s["id"], ids)}
    assert (after[ids[0]]["role"], after[ids[0]]["content"]) == ("system", "ONE")
    assert (after[ids[2]]["role"], after[ids[2]]["content"]) == ("assistant", "THREE")
    assert after[ids[1]] == before[ids[1]]
    for i in (ids[0], ids[2]):
        assert after[i]["created_at"] == before[i]["created_at"]
        assert after[i]["updated_at"] > before[i]["updated_at"]
    # order in the session does not change
    assert list_ids(api, s["id"], order="asc") == ids


def test_update_length_mismatch_is_422_and_changes_nothing(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("one", "two"))
    before = read_messages(api, s["id"], ids)
    invalid(api.put(f"/sessions/{s['id']}/messages", json={"message_ids": ids, "new_messages": msgs("x")}))
    invalid(api.put(f"/sessions/{s['id']}/messages", json={"message_ids": ids[:1], "new_messages": msgs("x", "y")}))
    invalid(api.put(f"/sessions/{s['id']}/messages", json={"message_ids": ids}), "new_messages")
    invalid(api.put(f"/sessions/{s['id']}/messages",
                    json={"message_ids": ids, "new_messages": msgs("ok") + [{"role": "bad", "content": "z"}]}), "role")
    assert read_messages(api, s["id"], ids) == before


def test_update_unknown_id_is_404_and_changes_nothing(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("one"))
    before = read_messages(api, s["id"], ids)
    x = fake_id()
    ids_not_found(api.put(f"/sessions/{s['id']}/messages",
                          json={"message_ids": [ids[0], x], "new_messages": msgs("changed", "nope")}), [x])
    assert read_messages(api, s["id"], ids) == before


def test_update_reindexes_keyword_search(api):
    u, a, s = world(api)
    old, new = word("old"), word("new")
    ids = add_messages(api, s["id"], msgs(f"the {old} text", "unrelated filler"))
    assert [x["id"] for x in query(api, u["id"], old, store_type="keyword")] == ids[:1]
    ok(api.put(f"/sessions/{s['id']}/messages",
               json={"message_ids": ids[:1], "new_messages": msgs(f"the {new} text")}))
    assert query(api, u["id"], old, store_type="keyword") == []
    res = query(api, u["id"], new, store_type="keyword")
    assert [x["id"] for x in res] == ids[:1] and res[0]["content"] == f"the {new} text"
    for st in (None, "vector"):
        opts = {"top_k": 50}
        if st:
            opts["store_type"] = st
        for x in query(api, u["id"], old, **opts):
            assert old not in x["content"], f"stale content returned by {st}: {x}"


# ---------------------------------------------------------------------------------------------
# Delete


def test_delete_messages(api):
    u, a, s = world(api)
    w = word()
    ids = add_messages(api, s["id"], msgs(f"{w} one", f"{w} two", f"{w} three"))
    data = ok(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": [ids[1]]}), 200,
              "Messages deleted successfully")
    assert data["message_ids"] == [ids[1]]
    assert list_ids(api, s["id"], order="asc") == [ids[0], ids[2]]
    ids_not_found(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": [ids[1]]}), [ids[1]])
    assert {x["id"] for x in query(api, u["id"], w, store_type="keyword")} == {ids[0], ids[2]}
    assert ids[1] not in {x["id"] for x in query(api, u["id"], w, top_k=50)}
    chunk_ids = {c["chunk_id"] for c in ok(api.get(f"/sessions/{s['id']}/chunks"))["chunks"]}
    assert ids[1] not in chunk_ids
    # deleting it again is a 404
    ids_not_found(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": [ids[1]]}), [ids[1]])


def test_delete_unknown_id_is_404_and_deletes_nothing(api):
    u, a, s = world(api)
    other = create_session(api, u["id"], a["id"])
    ids = add_messages(api, s["id"], msgs("one", "two"))
    theirs = add_messages(api, other["id"], msgs("theirs"))
    x = fake_id()
    ids_not_found(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": [ids[0], x]}), [x])
    ids_not_found(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": ids + theirs}), theirs)
    assert list_ids(api, s["id"], order="asc") == ids
    assert list_ids(api, other["id"]) == theirs
    invalid(api.delete(f"/sessions/{s['id']}/messages", json={}), "message_ids")
    assert list_ids(api, s["id"], order="asc") == ids


def test_update_and_delete_work_on_consolidated_messages(api):
    """(fixed) update/delete work for every stored message, buffered or consolidated."""
    u, a, s = world(api)
    w_old, w_new = word("old"), word("new")
    first = add_messages(api, s["id"], msgs(f"{w_old} first round", "second message"))
    for i in range(4):
        add_messages(api, s["id"], msgs(f"filler {i}"))
    assert list_ids(api, s["id"], buffer_only="true") == [], "5 rounds must have been consolidated"
    ok(api.put(f"/sessions/{s['id']}/messages", json={"message_ids": first[:1], "new_messages": msgs(f"{w_new} x")}))
    assert [m["content"] for m in read_messages(api, s["id"], first[:1])] == [f"{w_new} x"]
    assert [x["id"] for x in query(api, u["id"], w_new, store_type="keyword")] == first[:1]
    assert query(api, u["id"], w_old, store_type="keyword") == []
    ok(api.delete(f"/sessions/{s['id']}/messages", json={"message_ids": first[:1]}))
    assert query(api, u["id"], w_new, store_type="keyword") == []
    assert first[0] not in list_ids(api, s["id"], limit=100)
    assert first[0] not in list_ids(api, s["id"], buffer_only="false", limit=100)


def test_messages_of_two_sessions_do_not_mix(api):
    u = create_user(api)
    a = create_agent(api)
    s1, s2 = create_session(api, u["id"], a["id"]), create_session(api, u["id"], a["id"])
    m1 = add_messages(api, s1["id"], msgs("s1"))
    m2 = add_messages(api, s2["id"], msgs("s2"))
    assert list_ids(api, s1["id"]) == m1 and list_ids(api, s2["id"]) == m2
