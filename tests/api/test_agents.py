"""SPEC §4: agents — the shared contract (crud_contract.py) plus DELETE → 200 {"agent_id"} and the
cascade to the agent's sessions and their messages; the server creates no default agent."""

from crud_contract import NamedResourceContract
from helpers import (AGENT_KEYS, add_messages, create_agent, create_session, create_user, error, msgs, ok,
                     session_404, word, agent_404)


class TestAgents(NamedResourceContract):
    coll, one, Title, id_field, record_keys = "agents", "agent", "Agent", "agent_id", AGENT_KEYS


def test_delete_agent_returns_its_id(api):
    a = create_agent(api)
    data = ok(api.delete(f"/agents/{a['id']}"), 200, "Agent deleted successfully", keys={"agent_id"})
    assert data == {"agent_id": a["id"]}
    agent_404(api.get(f"/agents/{a['id']}"), a["id"])
    agent_404(api.delete(f"/agents/{a['id']}"), a["id"])
    error(api.get("/agents", params={"name": a["name"]}), 404, f"Agent with name '{a['name']}' not found",
          field="name")


def test_delete_agent_deletes_its_sessions_and_messages(api):
    u = create_user(api)
    doomed, kept = create_agent(api), create_agent(api)
    s1 = create_session(api, u["id"], doomed["id"])
    s2 = create_session(api, u["id"], kept["id"])
    w = word()
    m1 = add_messages(api, s1["id"], msgs(f"{w} doomed", f"{w} doomed too"))
    m2 = add_messages(api, s2["id"], msgs(f"{w} kept"))
    ok(api.delete(f"/agents/{doomed['id']}"), 200, "Agent deleted successfully")
    session_404(api.get(f"/sessions/{s1['id']}"), s1["id"])
    session_404(api.get(f"/sessions/{s1['id']}/messages"), s1["id"])
    session_404(api.post(f"/sessions/{s1['id']}/messages/read", json={"message_ids": m1}), s1["id"])
    agent_404(api.get("/sessions", params={"agent_id": doomed["id"]}), doomed["id"])
    sessions = ok(api.get("/sessions", params={"user_id": u["id"]}))["sessions"]
    assert [s["id"] for s in sessions] == [s2["id"]]
    # the user and the other agent's session are untouched
    assert ok(api.get(f"/users/{u['id']}"))["user"]["id"] == u["id"]
    assert [m["id"] for m in ok(api.get(f"/sessions/{s2['id']}/messages"))["messages"]] == m2
    for st in ("keyword", None):
        body = {"query": w, "top_k": 50}
        if st:
            body["store_type"] = st
        res = ok(api.post(f"/users/{u['id']}/query", json=body))["results"]
        assert not {x["id"] for x in res} & set(m1), res
        if st == "keyword":
            assert [x["id"] for x in res] == m2
    # a session can no longer be created with the deleted agent
    agent_404(api.post("/sessions", json={"user_id": u["id"], "agent_id": doomed["id"]}), doomed["id"])


def test_server_creates_no_default_agent(spawn):
    srv = spawn(name="fresh")
    a = srv.api()
    assert ok(a.get("/agents"), 200, "Agents retrieved successfully")["agents"] == []
    error(a.get("/agents", params={"name": "agent_default"}), 404, "Agent with name 'agent_default' not found",
          field="name")
    assert ok(a.get("/users"))["users"] == []
