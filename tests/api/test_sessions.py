"""SPEC §5: sessions."""

import re

import pytest

from helpers import (SESSION_KEYS, add_messages, agent_404, assert_record, create_agent, create_session,
                     create_user, error, fake_id, invalid, msgs, ok, session_404, uniq, user_404, word)


def test_create_with_name(api):
    u, a = create_user(api), create_agent(api)
    name = uniq("sess")
    s = create_session(api, u["id"], a["id"], name)
    assert_record(s, SESSION_KEYS)
    assert s["user_id"] == u["id"] and s["agent_id"] == a["id"] and s["name"] == name


@pytest.mark.parametrize("explicit_null", [False, True])
def test_create_without_name_generates_one(api, explicit_null):
    u, a = create_user(api), create_agent(api)
    body = {"user_id": u["id"], "agent_id": a["id"]}
    if explicit_null:
        body["name"] = None
    s1 = ok(api.post("/sessions", json=body), 201, "Session created successfully", keys={"session"})["session"]
    s2 = ok(api.post("/sessions", json=body), 201)["session"]
    pat = re.compile("^" + re.escape(u["name"]) + "-" + re.escape(a["name"]) + "-[0-9a-f]{8}$")
    assert pat.match(s1["name"]), s1["name"]
    assert pat.match(s2["name"]), s2["name"]
    assert s1["name"] != s2["name"] and s1["id"] != s2["id"]
    assert_record(s1, SESSION_KEYS)


def test_names_are_unique_per_user(api):
    u1, u2, a, a2 = create_user(api), create_user(api), create_agent(api), create_agent(api)
    name = uniq("shared")
    s1 = create_session(api, u1["id"], a["id"], name)
    msg = f"Session with name '{name}' already exists for this user"
    error(api.post("/sessions", json={"user_id": u1["id"], "agent_id": a["id"], "name": name}), 400, msg)
    # per user, not per (user, agent)
    error(api.post("/sessions", json={"user_id": u1["id"], "agent_id": a2["id"], "name": name}), 400, msg)
    assert [s["id"] for s in ok(api.get("/sessions", params={"user_id": u1["id"]}))["sessions"]] == [s1["id"]]
    # another user may use the same name
    s2 = create_session(api, u2["id"], a["id"], name)
    assert s2["name"] == name and s2["id"] != s1["id"]


def test_create_unknown_user_or_agent(api):
    u, a = create_user(api), create_agent(api)
    fu, fa = fake_id(), fake_id()
    user_404(api.post("/sessions", json={"user_id": fu, "agent_id": a["id"]}), fu)
    agent_404(api.post("/sessions", json={"user_id": u["id"], "agent_id": fa}), fa)
    # the user is checked first
    user_404(api.post("/sessions", json={"user_id": fu, "agent_id": fa}), fu)
    assert ok(api.get("/sessions", params={"user_id": u["id"]}))["sessions"] == []


@pytest.mark.parametrize("drop,field", [("user_id", "user_id"), ("agent_id", "agent_id")])
def test_create_missing_ids_is_422(api, drop, field):
    u, a = create_user(api), create_agent(api)
    body = {"user_id": u["id"], "agent_id": a["id"], "name": uniq()}
    del body[drop]
    b = invalid(api.post("/sessions", json=body), field)
    assert {"type": "missing", "loc": ["body", field], "msg": "Field required"} in \
        [{k: d[k] for k in ("type", "loc", "msg")} for d in b["detail"]]
    assert ok(api.get("/sessions", params={"user_id": u["id"]}))["sessions"] == []


def test_create_empty_name_is_422(api):
    u, a = create_user(api), create_agent(api)
    invalid(api.post("/sessions", json={"user_id": u["id"], "agent_id": a["id"], "name": ""}), "name")
    assert ok(api.get("/sessions", params={"user_id": u["id"]}))["sessions"] == []


def test_get_by_id_and_unknown(api):
    u, a = create_user(api), create_agent(api)
    s = create_session(api, u["id"], a["id"])
    got = ok(api.get(f"/sessions/{s['id']}"), 200, "Session retrieved successfully", keys={"session"})["session"]
    assert got == s
    sid = fake_id()
    session_404(api.get(f"/sessions/{sid}"), sid)


def test_list_filters(api):
    u1, u2 = create_user(api), create_user(api)
    a1, a2 = create_agent(api), create_agent(api)
    s11 = create_session(api, u1["id"], a1["id"])
    s12 = create_session(api, u1["id"], a2["id"])
    s21 = create_session(api, u2["id"], a1["id"])

    def ids(**params):
        data = ok(api.get("/sessions", params=params), 200, "Sessions retrieved successfully", keys={"sessions"})
        for s in data["sessions"]:
            assert_record(s, SESSION_KEYS)
        return {s["id"] for s in data["sessions"]}

    everything = ids()
    assert {s11["id"], s12["id"], s21["id"]} <= everything
    assert ids(user_id=u1["id"]) == {s11["id"], s12["id"]}
    assert ids(user_id=u2["id"]) == {s21["id"]}
    assert ids(agent_id=a1["id"]) == {s11["id"], s21["id"]}
    assert ids(agent_id=a2["id"]) == {s12["id"]}
    assert ids(user_id=u1["id"], agent_id=a1["id"]) == {s11["id"]}
    assert ids(user_id=u2["id"], agent_id=a2["id"]) == set()
    fu, fa = fake_id(), fake_id()
    user_404(api.get("/sessions", params={"user_id": fu}), fu)
    agent_404(api.get("/sessions", params={"agent_id": fa}), fa)
    agent_404(api.get("/sessions", params={"user_id": u1["id"], "agent_id": fa}), fa)
    user_404(api.get("/sessions", params={"user_id": fu, "agent_id": a1["id"]}), fu)


def test_get_by_name(api):
    u1, u2, a = create_user(api), create_user(api), create_agent(api)
    name = uniq("byname")
    s1 = create_session(api, u1["id"], a["id"], name)
    s2 = create_session(api, u2["id"], a["id"], name)
    only = create_session(api, u1["id"], a["id"])

    def find(**params):
        return ok(api.get("/sessions", params=params), 200, "Session retrieved successfully",
                  keys={"sessions"})["sessions"]

    assert find(name=only["name"]) == [only]
    assert find(name=name, user_id=u1["id"]) == [s1]
    assert find(name=name, user_id=u2["id"]) == [s2]
    unscoped = find(name=name)
    assert len(unscoped) == 1 and unscoped[0] in (s1, s2)
    missing = uniq("missing")
    error(api.get("/sessions", params={"name": missing}), 404, f"Session with name '{missing}' not found",
          field="name")
    error(api.get("/sessions", params={"name": only["name"], "user_id": u2["id"]}), 404,
          f"Session with name '{only['name']}' not found for user '{u2['id']}'", field="name")


def test_update_name(api):
    u, a = create_user(api), create_agent(api)
    s = create_session(api, u["id"], a["id"])
    new = uniq("renamed")
    got = ok(api.put(f"/sessions/{s['id']}", json={"name": new}), 200, "Session updated successfully",
             keys={"session"})["session"]
    assert_record(got, SESSION_KEYS)
    assert got["name"] == new and got["id"] == s["id"] and got["created_at"] == s["created_at"]
    assert got["user_id"] == s["user_id"] and got["agent_id"] == s["agent_id"]
    assert got["updated_at"] > s["updated_at"]
    assert ok(api.get(f"/sessions/{s['id']}"))["session"] == got
    assert ok(api.get("/sessions", params={"name": new, "user_id": u["id"]}))["sessions"] == [got]


def test_update_empty_and_null_keep_name(api):
    u, a = create_user(api), create_agent(api)
    s = create_session(api, u["id"], a["id"])
    got = ok(api.put(f"/sessions/{s['id']}", json={}))["session"]
    assert got["name"] == s["name"] and got["updated_at"] > s["updated_at"]
    got2 = ok(api.put(f"/sessions/{s['id']}", json={"name": None}))["session"]
    assert got2["name"] == s["name"]


def test_update_name_conflict(api):
    u, other, a = create_user(api), create_user(api), create_agent(api)
    s1 = create_session(api, u["id"], a["id"])
    s2 = create_session(api, u["id"], a["id"])
    so = create_session(api, other["id"], a["id"])
    error(api.put(f"/sessions/{s2['id']}", json={"name": s1["name"]}), 400,
          f"Session with name '{s1['name']}' already exists for this user")
    assert ok(api.get(f"/sessions/{s2['id']}"))["session"] == s2
    # a name used only by another user's session is free
    got = ok(api.put(f"/sessions/{s2['id']}", json={"name": so["name"]}))["session"]
    assert got["name"] == so["name"]
    # renaming to its own name is not a conflict
    ok(api.put(f"/sessions/{s1['id']}", json={"name": s1["name"]}), 200)


def test_update_invalid_and_unknown(api):
    u, a = create_user(api), create_agent(api)
    s = create_session(api, u["id"], a["id"])
    invalid(api.put(f"/sessions/{s['id']}", json={"name": ""}), "name")
    invalid(api.put(f"/sessions/{s['id']}", json={"name": 3}), "name")
    assert ok(api.get(f"/sessions/{s['id']}"))["session"] == s
    sid = fake_id()
    session_404(api.put(f"/sessions/{sid}", json={"name": "x"}), sid)


def test_delete_session_and_its_messages(api):
    u, a = create_user(api), create_agent(api)
    s = create_session(api, u["id"], a["id"])
    keep = create_session(api, u["id"], a["id"])
    w = word()
    gone = add_messages(api, s["id"], msgs(f"{w} a", f"{w} b", role="alt"))
    kept = add_messages(api, keep["id"], msgs(f"{w} c"))
    data = ok(api.delete(f"/sessions/{s['id']}"), 200, "Session deleted successfully", keys={"session_id"})
    assert data == {"session_id": s["id"]}
    session_404(api.get(f"/sessions/{s['id']}"), s["id"])
    session_404(api.delete(f"/sessions/{s['id']}"), s["id"])
    session_404(api.get(f"/sessions/{s['id']}/messages"), s["id"])
    session_404(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": gone}), s["id"])
    session_404(api.post(f"/sessions/{s['id']}/messages", json={"messages": msgs("late")}), s["id"])
    res = ok(api.post(f"/users/{u['id']}/query", json={"query": w, "store_type": "keyword"}))["results"]
    assert [r["id"] for r in res] == kept
    res = ok(api.post(f"/users/{u['id']}/query", json={"query": w, "top_k": 50}))["results"]
    assert not {r["id"] for r in res} & set(gone)
    stats = ok(api.get("/chunks/stats", params={"user_id": u["id"]}))
    assert stats["total_chunks"] == 1
    # the name is free again
    again = create_session(api, u["id"], a["id"], s["name"])
    assert again["id"] != s["id"]
    assert ok(api.get(f"/sessions/{again['id']}/messages"))["messages"] == []
