"""The official Python SDK's call pattern (memfuse-python: MemFuse.init, memory.add, memory.query),
emulated with requests: health before requests, get-or-create by name through the 404, POST-first
agent creation with a 400 fallback, session get-or-create scoped to the user, rounds, buffer_only
listing and scope-tagged queries. Errors must carry `message` (the SDK prints it)."""

import uuid

from helpers import ok, uniq, word


class MiniSdk:
    def __init__(self, api):
        self.api = api

    def _req(self, method, path, **kw):
        assert self.api.get("/health").status_code == 200  # the SDK checks health before every call
        r = self.api.request(method, path, **kw)
        body = r.json()
        if r.status_code >= 400:
            assert isinstance(body.get("message"), str) and body["message"], f"SDK needs message: {body}"
        return r.status_code, body

    def get_or_create_user(self, name):
        st, body = self._req("GET", "/users", params={"name": name})
        if st == 200:
            return body["data"]["users"][0]["id"]
        assert st == 404, body
        st, body = self._req("POST", "/users", json={"name": name, "description": "User created by MemFuse client"})
        assert st == 201, body
        return body["data"]["user"]["id"]

    def get_or_create_agent(self, name):
        st, body = self._req("POST", "/agents", json={"name": name, "description": "Agent created by MemFuse client"},
                             headers={"Idempotency-Key": f"agent-create:{name}:{uuid.uuid4().hex}"})
        if st in (200, 201):
            return body["data"]["agent"]["id"]
        assert st in (400, 409) and "already exists" in body["message"], body
        st, body = self._req("GET", "/agents", params={"name": name})
        assert st == 200, body
        return body["data"]["agents"][0]["id"]

    def init(self, user, agent=None, session=None):
        uid = self.get_or_create_user(user)
        aid = self.get_or_create_agent(agent or "agent_default")
        if session:
            st, body = self._req("GET", "/sessions", params={"name": session, "user_id": uid})
            if st == 200:
                sid = body["data"]["sessions"][0]["id"]
            else:
                assert st == 404, body
                st, body = self._req("POST", "/sessions", json={"user_id": uid, "agent_id": aid, "name": session})
                assert st == 201, body
                sid = body["data"]["session"]["id"]
        else:
            st, body = self._req("POST", "/sessions", json={"user_id": uid, "agent_id": aid})
            assert st == 201, body
            sid = body["data"]["session"]["id"]
        return uid, aid, sid

    def add(self, sid, messages):
        st, body = self._req("POST", f"/sessions/{sid}/messages", json={"messages": messages})
        assert st == 201, body
        return body["data"]["message_ids"]

    def list(self, sid, buffer_only=None, limit=20):
        params = {"limit": limit, "sort_by": "timestamp", "order": "desc"}
        if buffer_only is not None:
            params["buffer_only"] = "true" if buffer_only else "false"
        st, body = self._req("GET", f"/sessions/{sid}/messages", params=params)
        assert st == 200, body
        return body["data"]["messages"]

    def query(self, uid, text, sid=None, top_k=5):
        payload = {"query": text, "top_k": top_k, "store_type": None, "include_messages": True,
                   "include_knowledge": True}
        if sid:
            payload["session_id"] = sid
        st, body = self._req("POST", f"/users/{uid}/query", json=payload)
        assert st == 200, body
        return body["data"]["results"]


def test_sdk_init_is_idempotent(api):
    sdk = MiniSdk(api)
    user, session = uniq("alice"), uniq("chat")
    first = sdk.init(user, session=session)
    second = sdk.init(user, session=session)
    assert first == second, "get-or-create must find the same user, agent_default and session"
    # the default agent is shared
    other = sdk.init(uniq("bob"))
    assert other[1] == first[1]
    # no session name → a new generated one each time
    third = sdk.init(user)
    assert third[0] == first[0] and third[2] != first[2]


def test_sdk_conversation_flow(api):
    sdk = MiniSdk(api)
    w = word()
    carol = uniq("carol")
    uid, aid, sid = sdk.init(carol, session=uniq("trip"))
    uid2, aid2, sid2 = sdk.init(uniq("carol-other"), session=uniq("trip"))
    assert aid2 == aid
    ids = []
    for i in range(3):
        ids += sdk.add(sid, [{"role": "user", "content": f"I plan a trip to {w} number {i}"},
                             {"role": "assistant", "content": f"Great, {w} is lovely in spring ({i})."}])
    buffered = sdk.list(sid, buffer_only=True)
    consolidated = sdk.list(sid, buffer_only=False)
    combined = [m["id"] for m in consolidated] + [m["id"] for m in buffered]
    assert len(combined) == len(set(combined)) == 6, "the SDK concatenates both lists: no duplicates"
    assert set(combined) == set(ids)
    assert [m["id"] for m in sdk.list(sid)] == ids[::-1]
    # a second session of the same user: results from the first are cross_session
    uid_again, _, sid_b = sdk.init(carol, session=uniq("later"))
    assert uid_again == uid
    res = sdk.query(uid, w, sid=sid_b, top_k=10)
    assert res, "query found nothing"
    for r in res:
        assert r["content"] and r["type"] in ("message", "knowledge")
        if r["type"] == "message":
            assert r["metadata"]["scope"] == "cross_session" and r["role"] in ("user", "assistant")
    res = sdk.query(uid, w, sid=sid, top_k=10)
    assert any(r["metadata"]["scope"] == "in_session" for r in res)
    for r in res:
        if r["type"] == "message":
            assert r["metadata"]["scope"] == "in_session"
            assert r["metadata"]["user_id"] == uid
    res = sdk.query(uid, w)
    assert all(r["metadata"]["scope"] is None for r in res)
    # the other carol never sees these
    assert not {r["id"] for r in sdk.query(uid2, w, top_k=100)} & set(ids)


def test_sdk_error_messages_are_readable(api):
    r = api.get("/users", params={"name": uniq("ghost")})
    body = r.json()
    assert r.status_code == 404 and body["message"].startswith("User with name")
    r = api.post("/users", json={})
    assert r.status_code == 422 and r.json()["message"] == "Request validation failed"
    ok(api.get("/health"))
