"""SPEC §1: authentication and tenancy, on a server started with --auth --admin-key <random>."""

import os
import secrets
from types import SimpleNamespace

import pytest

from helpers import (add_knowledge, add_messages, create_agent, create_session, create_user, error, fake_id, msgs,
                     ok, uniq, word)

MISSING = "Authentication failed: Missing API key"
BAD_FORMAT = "Authentication failed: Invalid API key format"
INVALID = "Authentication failed: Invalid API key"


@pytest.fixture(scope="module")
def auth(module_spawn):
    admin_key = "admin-" + secrets.token_hex(16)
    srv = module_spawn("--auth", "--admin-key", admin_key, name="auth")
    return SimpleNamespace(srv=srv, admin_key=admin_key, admin=srv.api(admin_key), anon=srv.api())


def make_tenant(auth, agent):
    admin = auth.admin
    u = create_user(admin)
    s = create_session(admin, u["id"], agent["id"])
    w = word()
    mids = add_messages(admin, s["id"], msgs(f"{w} first", f"{w} second", role="alt"))
    kids = add_knowledge(admin, u["id"], [f"{w} knowledge"])
    key = ok(admin.post(f"/users/{u['id']}/api-keys", json={"name": "tenant"}), 201)["api_key"]
    return SimpleNamespace(user=u, uid=u["id"], session=s, sid=s["id"], word=w, mids=mids, kids=kids,
                           key=key["key"], key_id=key["id"], api=auth.srv.api(key["key"]))


@pytest.fixture
def tenants(auth):
    agent = create_agent(auth.admin)
    return SimpleNamespace(agent=agent, a=make_tenant(auth, agent), b=make_tenant(auth, agent))


def routes(t, other_sid=None):
    """(method, path, json) for every route that belongs to tenant t."""
    sid = other_sid or t.sid
    return [
        ("GET", f"/users/{t.uid}", None),
        ("PUT", f"/users/{t.uid}", {"description": "changed"}),
        ("DELETE", f"/users/{t.uid}", None),
        ("GET", "/sessions", {"params": {"user_id": t.uid}}),
        ("GET", f"/sessions/{sid}", None),
        ("PUT", f"/sessions/{sid}", {"name": uniq("renamed")}),
        ("DELETE", f"/sessions/{sid}", None),
        ("GET", f"/sessions/{sid}/messages", None),
        ("POST", f"/sessions/{sid}/messages", {"messages": msgs("intruder")}),
        ("POST", f"/sessions/{sid}/messages/read", {"message_ids": t.mids}),
        ("PUT", f"/sessions/{sid}/messages", {"message_ids": t.mids[:1], "new_messages": msgs("hacked")}),
        ("DELETE", f"/sessions/{sid}/messages", {"message_ids": t.mids[:1]}),
        ("GET", f"/sessions/{sid}/chunks", None),
        ("GET", "/chunks/stats", {"params": {"user_id": t.uid}}),
        ("GET", f"/users/{t.uid}/knowledge", None),
        ("POST", f"/users/{t.uid}/knowledge", {"knowledge": ["intruder"]}),
        ("POST", f"/users/{t.uid}/knowledge/read", {"knowledge_ids": t.kids}),
        ("PUT", f"/users/{t.uid}/knowledge", {"knowledge_ids": t.kids, "new_knowledge": ["hacked"]}),
        ("DELETE", f"/users/{t.uid}/knowledge", {"knowledge_ids": t.kids}),
        ("POST", f"/users/{t.uid}/query", {"query": t.word}),
        ("GET", f"/users/{t.uid}/api-keys", None),
        ("POST", f"/users/{t.uid}/api-keys", {"name": "intruder"}),
        ("DELETE", f"/users/{t.uid}/api-keys/{t.key_id}", None),
    ]


def call(api, method, path, body):
    if body and "params" in body:
        return api.request(method, path, params=body["params"])
    return api.request(method, path, json=body)


def snapshot(admin, t):
    """Everything of tenant t as the admin sees it."""
    return {
        "user": ok(admin.get(f"/users/{t.uid}"))["user"],
        "sessions": ok(admin.get("/sessions", params={"user_id": t.uid}))["sessions"],
        "messages": ok(admin.get(f"/sessions/{t.sid}/messages", params={"limit": 100}))["messages"],
        "knowledge": ok(admin.get(f"/users/{t.uid}/knowledge"))["knowledge"],
        "keys": ok(admin.get(f"/users/{t.uid}/api-keys"))["api_keys"],
    }


# ---------------------------------------------------------------------------------------------
# 401


def test_missing_key_is_401_everywhere_but_health(auth, tenants):
    a = tenants.a
    checks = routes(a) + [("GET", "/users", None), ("POST", "/users", {"name": uniq()}), ("GET", "/agents", None),
                          ("POST", "/agents", {"name": uniq()}), ("GET", f"/agents/{tenants.agent['id']}", None),
                          ("GET", "/sessions", None), ("POST", "/sessions", {"user_id": a.uid,
                                                                              "agent_id": tenants.agent["id"]}),
                          ("GET", f"/users/{fake_id()}", None), ("GET", f"/rounds/{fake_id()}/chunks", None)]
    for method, path, body in checks:
        r = call(auth.anon, method, path, body)
        error(r, 401, MISSING, field="api_key", field_message="API key is required")
    assert ok(auth.anon.get("/health"), 200, "Server is healthy")["status"] == "ok"
    before = snapshot(auth.admin, a)
    assert before["user"] == a.user and len(before["messages"]) == 2 and len(before["knowledge"]) == 1


@pytest.mark.parametrize("value", ["Token abc", "Basic dXNlcjpwYXNz", "Bearer", "Bearerabc", "abc"])
def test_malformed_authorization_is_401_format(auth, value):
    r = auth.srv.api().get("/users", headers={"Authorization": value})
    error(r, 401, BAD_FORMAT)


def test_admin_key_without_bearer_is_401_format(auth):
    error(auth.srv.api().get("/users", headers={"Authorization": auth.admin_key}), 401, BAD_FORMAT)
    error(auth.srv.api().get("/users", headers={"Authorization": "Token " + auth.admin_key}), 401, BAD_FORMAT)


def test_unknown_key_is_401_invalid(auth, tenants):
    for hdr in ({"Authorization": "Bearer nope-" + secrets.token_hex(8)},
                {"X-API-Key": "nope-" + secrets.token_hex(8)},
                {"Authorization": "Bearer " + auth.admin_key + "x"},
                {"Authorization": "Bearer " + tenants.a.key[:-1]}):
        error(auth.srv.api().get(f"/users/{tenants.a.uid}", headers=hdr), 401, INVALID)


def test_revoked_key_is_401(auth, tenants):
    a = tenants.a
    extra = ok(auth.admin.post(f"/users/{a.uid}/api-keys", json={"name": "short-lived"}), 201)["api_key"]
    k = auth.srv.api(extra["key"])
    ok(k.get(f"/users/{a.uid}"))
    ok(auth.admin.delete(f"/users/{a.uid}/api-keys/{extra['id']}"))
    error(k.get(f"/users/{a.uid}"), 401, INVALID)
    # the tenant's other key still works
    ok(a.api.get(f"/users/{a.uid}"))


def test_expired_key_is_401_and_future_expiry_works(auth, tenants):
    a = tenants.a
    past = ok(auth.admin.post(f"/users/{a.uid}/api-keys", json={"name": "old", "expires_at": "2001-01-01T00:00:00Z"}),
              201)["api_key"]
    error(auth.srv.api(past["key"]).get(f"/users/{a.uid}"), 401, INVALID)
    future = ok(auth.admin.post(f"/users/{a.uid}/api-keys",
                                json={"name": "new", "expires_at": "2099-12-31T23:59:59Z"}), 201)["api_key"]
    ok(auth.srv.api(future["key"]).get(f"/users/{a.uid}"))


def test_key_of_deleted_user_is_401(auth):
    agent = create_agent(auth.admin)
    t = make_tenant(auth, agent)
    ok(t.api.get(f"/users/{t.uid}"))
    r = auth.admin.delete(f"/users/{t.uid}")
    assert r.status_code == 204
    error(t.api.get(f"/users/{t.uid}"), 401, INVALID)


# ---------------------------------------------------------------------------------------------
# Admin and user keys


def test_x_api_key_header_is_accepted(auth, tenants):
    admin = auth.srv.api(auth.admin_key, header="x-api-key")
    assert isinstance(ok(admin.get("/users"), 200, "Users retrieved successfully")["users"], list)
    user = auth.srv.api(tenants.a.key, header="x-api-key")
    assert ok(user.get(f"/users/{tenants.a.uid}"))["user"]["id"] == tenants.a.uid


def test_admin_reaches_everything(auth, tenants):
    admin = auth.admin
    for t in (tenants.a, tenants.b):
        for method, path, body in routes(t):
            if method != "GET" and not path.endswith("/read") and not path.endswith("/query"):
                continue  # read-only sweep; writes are exercised by the fixtures and tests above
            r = call(admin, method, path, body)
            assert r.status_code == 200, f"admin {method} {path}: {r.status_code} {r.text[:300]}"
    ids = {u["id"] for u in ok(admin.get("/users"))["users"]}
    assert {tenants.a.uid, tenants.b.uid} <= ids
    assert tenants.agent["id"] in {x["id"] for x in ok(admin.get("/agents"))["agents"]}
    ok(admin.get("/agents", params={"name": tenants.agent["name"]}))


def test_user_key_cannot_list_or_create_users_and_agents(auth, tenants):
    k = tenants.a.api
    name = uniq("nope")
    for method, path, body in (("GET", "/users", None), ("POST", "/users", {"name": name}),
                               ("GET", "/agents", None), ("POST", "/agents", {"name": name})):
        error(call(k, method, path, body), 403, "Forbidden")
    assert auth.admin.get("/users", params={"name": name}).status_code == 404
    assert auth.admin.get("/agents", params={"name": name}).status_code == 404


def test_user_key_reaches_its_own_data(auth, tenants):
    a = tenants.a
    k = a.api
    assert ok(k.get(f"/users/{a.uid}"))["user"]["id"] == a.uid
    assert ok(k.put(f"/users/{a.uid}", json={"description": "self-edit"}))["user"]["description"] == "self-edit"
    s2 = ok(k.post("/sessions", json={"user_id": a.uid, "agent_id": tenants.agent["id"]}), 201)["session"]
    assert ok(k.get(f"/sessions/{a.sid}"))["session"]["id"] == a.sid
    ok(k.put(f"/sessions/{s2['id']}", json={"name": uniq("mine")}))
    new = ok(k.post(f"/sessions/{a.sid}/messages", json={"messages": msgs(f"{a.word} third")}), 201)["message_ids"]
    listed = [m["id"] for m in ok(k.get(f"/sessions/{a.sid}/messages", params={"order": "asc"}))["messages"]]
    assert listed == a.mids + new
    ok(k.post(f"/sessions/{a.sid}/messages/read", json={"message_ids": new}))
    ok(k.put(f"/sessions/{a.sid}/messages", json={"message_ids": new, "new_messages": msgs(f"{a.word} 3rd")}))
    ok(k.delete(f"/sessions/{a.sid}/messages", json={"message_ids": new}))
    kid = ok(k.post(f"/users/{a.uid}/knowledge", json={"knowledge": ["mine"]}), 201)["knowledge_ids"]
    ok(k.get(f"/users/{a.uid}/knowledge"))
    ok(k.post(f"/users/{a.uid}/knowledge/read", json={"knowledge_ids": kid}))
    ok(k.put(f"/users/{a.uid}/knowledge", json={"knowledge_ids": kid, "new_knowledge": ["MINE"]}))
    ok(k.delete(f"/users/{a.uid}/knowledge", json={"knowledge_ids": kid}))
    res = ok(k.post(f"/users/{a.uid}/query", json={"query": a.word, "store_type": "keyword", "top_k": 10}))["results"]
    assert {r["id"] for r in res} == set(a.mids + a.kids)
    ok(k.get(f"/sessions/{a.sid}/chunks"))
    ok(k.get("/chunks/stats", params={"user_id": a.uid}))
    keys = ok(k.get(f"/users/{a.uid}/api-keys"))["api_keys"]
    assert a.key_id in {x["id"] for x in keys} and all(x["key"] == "********" for x in keys)
    extra = ok(k.post(f"/users/{a.uid}/api-keys", json={"name": "self-made"}), 201)["api_key"]
    ok(auth.srv.api(extra["key"]).get(f"/users/{a.uid}"))
    ok(k.delete(f"/users/{a.uid}/api-keys/{extra['id']}"))
    ok(k.delete(f"/sessions/{s2['id']}"))


def test_user_key_is_forbidden_on_another_users_data(auth, tenants):
    a, b = tenants.a, tenants.b
    before = snapshot(auth.admin, b)
    for method, path, body in routes(b):
        r = call(a.api, method, path, body)
        error(r, 403, "Forbidden")
    # creating a session for another user is forbidden too
    error(a.api.post("/sessions", json={"user_id": b.uid, "agent_id": tenants.agent["id"]}), 403, "Forbidden")
    assert snapshot(auth.admin, b) == before, "a forbidden request changed another user's data"
    # and the forbidden requests did not touch the caller's own data either
    assert ok(a.api.get(f"/users/{a.uid}"))["user"]["id"] == a.uid


def test_user_key_lists_only_its_own_sessions(auth, tenants):
    a, b = tenants.a, tenants.b
    mine = ok(a.api.get("/sessions"), 200, "Sessions retrieved successfully")["sessions"]
    assert [s["id"] for s in mine] == [a.sid]
    mine = ok(a.api.get("/sessions", params={"agent_id": tenants.agent["id"]}))["sessions"]
    assert [s["id"] for s in mine] == [a.sid]
    theirs = ok(b.api.get("/sessions"))["sessions"]
    assert [s["id"] for s in theirs] == [b.sid]


def test_query_with_another_users_session_is_404(auth, tenants):
    a, b = tenants.a, tenants.b
    error(a.api.post(f"/users/{a.uid}/query", json={"query": b.word, "session_id": b.sid}), 404,
          f"Session '{b.sid}' not found for user '{a.uid}'", field="session_id")
    res = ok(a.api.post(f"/users/{a.uid}/query", json={"query": b.word, "top_k": 100}))["results"]
    assert not {r["id"] for r in res} & set(b.mids + b.kids)


def test_keys_are_stored_hashed(spawn):
    admin_key = "admin-" + secrets.token_hex(16)
    srv = spawn("--auth", "--admin-key", admin_key, name="hashed")
    admin = srv.api(admin_key)
    u = create_user(admin)
    chosen = "chosen-plain-key-" + secrets.token_hex(12)
    k1 = ok(admin.post(f"/users/{u['id']}/api-keys", json={"key": chosen}), 201)["api_key"]
    k2 = ok(admin.post(f"/users/{u['id']}/api-keys", json={"name": "generated"}), 201)["api_key"]
    assert k1["key"] == chosen
    ok(srv.api(chosen).get(f"/users/{u['id']}"))
    ok(srv.api(k2["key"]).get(f"/users/{u['id']}"))
    srv.stop()
    found = []
    for root, _dirs, files in os.walk(srv.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                blob = fh.read()
            for plain in (chosen, k2["key"]):
                if plain.encode() in blob:
                    found.append((f, plain))
    assert not found, f"plain API keys found on disk: {found}"
    # and they still work after a restart (the hash is what is stored)
    srv.restart()
    ok(srv.api(chosen).get(f"/users/{u['id']}"))
    ok(srv.api(k2["key"], header="x-api-key").get(f"/users/{u['id']}"))
