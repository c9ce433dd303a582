"""SPEC §3: users — the shared contract (crud_contract.py) plus DELETE → 204 and the full cascade."""

from crud_contract import NamedResourceContract
from helpers import (USER_KEYS, add_knowledge, add_messages, create_agent, create_session, create_user,
                     describe, error, msgs, ok, session_404, user_404, word)


class TestUsers(NamedResourceContract):
    coll, one, Title, id_field, record_keys = "users", "user", "User", "user_id", USER_KEYS


def test_delete_user_is_204_with_empty_body(api):
    u = create_user(api)
    r = api.delete(f"/users/{u['id']}")
    assert r.status_code == 204, describe(r)
    assert r.content == b"", f"204 must have no body: {describe(r)}"
    user_404(api.get(f"/users/{u['id']}"), u["id"])
    user_404(api.delete(f"/users/{u['id']}"), u["id"])
    error(api.get("/users", params={"name": u["name"]}), 404, f"User with name '{u['name']}' not found",
          field="name")


def test_delete_user_erases_everything_of_that_user(api):
    agent = create_agent(api)
    u = create_user(api)
    other = create_user(api)
    uid = u["id"]
    s1 = create_session(api, uid, agent["id"])
    s2 = create_session(api, uid, agent["id"])
    so = create_session(api, other["id"], agent["id"])
    w = word()
    m1 = add_messages(api, s1["id"], msgs(f"{w} one", f"{w} two", role="alt"))
    m2 = add_messages(api, s2["id"], msgs(f"{w} three"))
    mo = add_messages(api, so["id"], msgs(f"{w} other user"))
    k = add_knowledge(api, uid, [f"{w} knowledge"])
    key = ok(api.post(f"/users/{uid}/api-keys", json={"name": "k"}), 201)["api_key"]
    assert key["user_id"] == uid

    r = api.delete(f"/users/{uid}")
    assert r.status_code == 204 and r.content == b"", describe(r)

    user_404(api.get(f"/users/{uid}"), uid)
    for s in (s1, s2):
        session_404(api.get(f"/sessions/{s['id']}"), s["id"])
        session_404(api.get(f"/sessions/{s['id']}/messages"), s["id"])
        session_404(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": m1 + m2}), s["id"])
        session_404(api.get(f"/sessions/{s['id']}/chunks"), s["id"])
        error(api.get("/sessions", params={"name": s["name"]}), 404, f"Session with name '{s['name']}' not found",
              field="name")
    user_404(api.get("/sessions", params={"user_id": uid}), uid)
    listed = ok(api.get("/sessions", params={"agent_id": agent["id"]}))["sessions"]
    assert [x["id"] for x in listed] == [so["id"]]
    all_sessions = ok(api.get("/sessions"))["sessions"]
    assert not [x for x in all_sessions if x["user_id"] == uid]
    user_404(api.get(f"/users/{uid}/knowledge"), uid)
    user_404(api.post(f"/users/{uid}/knowledge/read", json={"knowledge_ids": k}), uid)
    user_404(api.get(f"/users/{uid}/api-keys"), uid)
    user_404(api.delete(f"/users/{uid}/api-keys/{key['id']}"), uid)
    user_404(api.post(f"/users/{uid}/query", json={"query": w}), uid)
    user_404(api.get("/chunks/stats", params={"user_id": uid}), uid)
    # the other user is untouched and search never shows the deleted user's data
    for st in (None, "keyword", "vector"):
        body = {"query": w, "top_k": 100}
        if st:
            body["store_type"] = st
        res = ok(api.post(f"/users/{other['id']}/query", json=body))["results"]
        ids = {x["id"] for x in res}
        assert not ids & set(m1 + m2 + k), f"deleted user's data found via {st}: {res}"
        assert ids <= set(mo)
    kw = ok(api.post(f"/users/{other['id']}/query", json={"query": w, "store_type": "keyword"}))["results"]
    assert [x["id"] for x in kw] == mo
    # a new user with the same name starts empty
    again = create_user(api, u["name"])
    assert ok(api.get(f"/users/{again['id']}/knowledge"))["knowledge"] == []
    assert ok(api.get("/sessions", params={"user_id": again["id"]}))["sessions"] == []
    assert ok(api.get(f"/users/{again['id']}/api-keys"))["api_keys"] == []
    assert ok(api.post(f"/users/{again['id']}/query", json={"query": w}))["results"] == []
