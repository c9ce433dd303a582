"""Several servers on one PostgreSQL database stay coherent (issue 5): a write through one process is
visible to queries on the other at once — including what the other had cached: its per-user vector index
and its query answers are dropped on the first process's NOTIFY and reload from the database."""

import time

import pytest

from conftest import PG
from helpers import add_messages, create_agent, create_session, create_user, msgs, ok, query

pytestmark = pytest.mark.skipif(not PG, reason="PostgreSQL store only (several processes share one database)")


def wait_for(pred, limit_s=10):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def vectors(api, uid):
    return ok(api.get("/chunks/stats", params={"user_id": uid}))["by_store"]["vector"]


def test_two_processes_on_one_database(spawn, tmp_path):
    a_srv = spawn(data_dir=tmp_path / "shared", name="proc-a")
    b_srv = spawn(data_dir=tmp_path / "shared", name="proc-b")
    a, b = a_srv.api(), b_srv.api()
    u = create_user(a)
    ag = create_agent(a)
    s = create_session(a, u["id"], ag["id"])
    dog = add_messages(a, s["id"], msgs("I adore my golden retriever puppy", "We are planning a trip to Japan"))
    assert wait_for(lambda: vectors(a, u["id"]) == 2)
    # B sees A's writes, and loads the user's index and caches an answer
    assert query(b, u["id"], "dog", store_type="vector", top_k=1)[0]["id"] == dog[0]
    kw = {"query": "violin orchestra", "store_type": "keyword", "top_k": 5}
    assert ok(b.post(f"/users/{u['id']}/query", json=kw))["results"] == []
    # A writes: B's index and B's cached answer must not hide it
    cat = add_messages(a, s["id"], msgs("My sister plays the violin in an orchestra"))[0]
    assert wait_for(lambda: vectors(a, u["id"]) == 3)
    assert wait_for(lambda: [r["id"] for r in ok(b.post(f"/users/{u['id']}/query", json=kw))["results"]] == [cat], 5), \
        "B served a stale cached answer after A's write"
    assert wait_for(lambda: query(b, u["id"], "musical instrument", store_type="vector", top_k=1)[0]["id"] == cat, 5), \
        "B's vector index did not pick up A's new vector"
    # a delete through B disappears from A's answers too
    ok(b.delete(f"/sessions/{s['id']}/messages", json={"message_ids": [dog[0]]}))
    assert wait_for(lambda: dog[0] not in [r["id"] for r in query(a, u["id"], "dog", store_type="vector", top_k=3)], 5)
    # deleting the user through A: B finds nothing of it
    assert a.delete(f"/users/{u['id']}").status_code == 204
    assert b.get(f"/users/{u['id']}").status_code == 404
    assert b.post(f"/users/{u['id']}/query", json={"query": "dog"}).status_code == 404
