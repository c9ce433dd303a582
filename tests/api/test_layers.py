"""The LLM memory layers (issue 6): M1 episodes and M2 facts against a local fake LLM server.

The fake (tests/fakes/fake_openai.py) answers /v1/chat/completions in the OpenAI format from scripted
rules (POST /control/chat), with default answers derived from the prompt: one episode covering every
message; one fact per user message; "add" for every decision unless a candidate has the same text. Its
GET /stats/chat logs every call (kind, start, end), which is how these tests see what the server asked.

Every server here runs with --buffer-rounds 1, so each add is consolidated at once and handed to the flush
manager as one flush: M1 and M2 of it run in the background.
"""
import subprocess
import time

import pytest

from conftest import PG, run_cli
from fakellm import LAYER_FLAGS, FakeLLM, wait_for
from helpers import create_agent, create_session, create_user, msgs, ok, error, user_404, session_404, uniq


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def layered(module_spawn, fake):
    """One server with the layers on, shared by the tests that do not restart it."""
    return module_spawn("--llm-base-url", fake.url, *LAYER_FLAGS, name="layers")


@pytest.fixture
def llm(fake):
    fake.reset()
    yield fake
    fake.reset()


def add(api, sid, *contents, role="user"):
    r = api.post(f"/sessions/{sid}/messages", json={"messages": msgs(*contents, role=role)})
    return ok(r, 201)["message_ids"]


def facts(api, uid, history=False):
    r = api.get(f"/users/{uid}/facts", params={"history": "true"} if history else None)
    return ok(r, 200, "Facts retrieved successfully")["facts"]


def episodes(api, uid, **params):
    r = api.get(f"/users/{uid}/episodes", params=params or None)
    return ok(r, 200, "Episodes retrieved successfully")["episodes"]


def query(api, uid, q, **opts):
    r = api.post(f"/users/{uid}/query", json={"query": q, **opts})
    return ok(r, 200)["results"]


def world(api):
    u = create_user(api)
    a = create_agent(api)
    s = create_session(api, u["id"], a["id"])
    return u["id"], a["id"], s["id"]


def fact_reply(*items):
    return {"facts": [dict({"type": "personal", "confidence": 0.95, "entities": []}, **i) for i in items]}


# --- health -----------------------------------------------------------------------------------------

def test_health_says_whether_the_layers_run(server, layered):
    plain = ok(server.api().get("/health"))
    assert plain["llm"] == "off" and plain["layers"] == ["M0"]
    on = ok(layered.api().get("/health"))
    assert on["llm"] in ("ok", "degraded") and on["layers"] == ["M0", "M1", "M2"]
    for key in on:  # no configuration or secrets (SPEC §2)
        assert "url" not in key and "key" not in key


def test_llm_base_url_needs_a_model(spawn, fake, tmp_path):
    from conftest import memfuse_bin, child_env
    p = subprocess.run([memfuse_bin(), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path),
                        "--llm-base-url", fake.url], capture_output=True, text=True, timeout=30, env=child_env())
    assert p.returncode != 0 and "--llm-model" in p.stderr


# --- episodes and facts ------------------------------------------------------------------------------

def test_episodes_and_facts_appear_and_are_found(layered, llm):
    api = layered.api()
    uid, aid, sid = world(api)
    llm.script(rules=[
        {"kind": "facts", "contains": "Rex", "reply": fact_reply(
            {"content": "User adopted a dog named Rex", "entities": ["Rex"], "messages": [1]})},
        {"kind": "episodes", "contains": "Rex", "reply": {"episodes": [{
            "content": "The user told the assistant that they adopted a dog named Rex on 2026-11-23.",
            "occurred_at": "2026-11-23", "participants": ["user", "assistant"], "messages": [1, 2]}]}},
        {"kind": "facts", "contains": "hospital", "reply": fact_reply(
            {"content": "User works as a nurse", "entities": ["hospital"], "messages": [1]})},
        {"kind": "episodes", "contains": "hospital", "reply": {"episodes": [{
            "content": "The user said they work night shifts as a nurse at the city hospital.",
            "messages": [1]}]}},
    ])
    r = api.post(f"/sessions/{sid}/messages", json={"messages": [
        {"role": "user", "content": "I adopted a dog yesterday, his name is Rex!"},
        {"role": "assistant", "content": "Congratulations on Rex!"}]})
    ids = ok(r, 201)["message_ids"]
    eps = wait_for(lambda: episodes(api, uid), what="the episode")
    assert len(eps) == 1
    e = eps[0]
    assert e["occurred_at"] == "2026-11-23"
    assert e["session_id"] == sid and e["agent_id"] == aid and e["user_id"] == uid
    assert e["message_ids"] == ids  # both messages, in order
    assert e["participants"] == ["user", "assistant"]
    f = wait_for(lambda: facts(api, uid), what="the fact")
    assert len(f) == 1
    f = f[0]
    assert f["content"] == "User adopted a dog named Rex" and f["type"] == "personal"
    assert f["status"] == "current" and f["valid_to"] is None and f["entities"] == ["Rex"]
    assert f["message_ids"] == [ids[0]]  # lineage to the source message
    assert f["session_id"] == sid and abs(f["confidence"] - 0.95) < 1e-6
    # the episode of the same flush is linked (whichever layer finished second linked them)
    linked = wait_for(lambda: facts(api, uid)[0]["episode_id"], what="the fact's episode link")
    assert linked == e["id"]

    add(api, sid, "I work night shifts at the city hospital.")  # a second, unrelated flush
    wait_for(lambda: len(facts(api, uid)) == 2 and len(episodes(api, uid)) == 2, what="the second flush")

    # found by a paraphrase sharing no word with them (dense path), typed and levelled
    def best(**flags):
        res = query(api, uid, "which pet animal lives with them", store_type="vector", top_k=1,
                    include_messages=False, include_knowledge=False, **flags)
        return res[0] if res else None
    fact_hit = wait_for(lambda: best(include_episodes=False), what="a fact from the dense path")
    assert fact_hit["id"] == f["id"] and fact_hit["type"] == "fact"
    assert fact_hit["metadata"]["level"] == 2 and fact_hit["metadata"]["fact_type"] == "personal"
    assert fact_hit["metadata"]["message_ids"] == [ids[0]] and fact_hit["metadata"]["entities"] == ["Rex"]
    assert fact_hit["role"] is None
    ep_hit = wait_for(lambda: best(include_facts=False), what="an episode from the dense path")
    assert ep_hit["id"] == e["id"] and ep_hit["type"] == "episode" and ep_hit["metadata"]["level"] == 1
    assert ep_hit["metadata"]["occurred_at"] == "2026-11-23" and ep_hit["metadata"]["session_id"] == sid

    # hybrid mixes every level; graph answers from the facts only (their text and entities)
    mixed = query(api, uid, "Rex", top_k=20)
    assert {"message", "episode", "fact"} <= {x["type"] for x in mixed}
    g = query(api, uid, "Rex", store_type="graph")
    assert g and all(x["type"] == "fact" for x in g) and g[0]["id"] == f["id"]
    assert g[0]["metadata"]["retrieval"]["source"] == "graph"
    by_entity = query(api, uid, "hospital", store_type="graph", top_k=1)
    assert by_entity[0]["content"] == "User works as a nurse"
    only_msgs = query(api, uid, "Rex", include_episodes=False, include_facts=False, top_k=20)
    assert only_msgs and all(x["type"] == "message" for x in only_msgs)
    kw = query(api, uid, "Rex", store_type="keyword", include_messages=False, top_k=20)
    assert {x["type"] for x in kw} == {"fact", "episode"}


def test_changed_preference_supersedes_the_old_fact(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    old_text = "User loves espresso and drinks it every morning"
    new_text = "User quit coffee and now only drinks green tea"
    llm.script(rules=[
        {"kind": "facts", "contains": "espresso", "reply": fact_reply({"content": old_text, "type": "preference"})},
        {"kind": "facts", "contains": "green tea", "reply": fact_reply({"content": new_text, "type": "preference"})},
        {"kind": "decide", "contains": "green tea",
         "reply": {"decisions": [{"fact": 1, "action": "update", "target": "F1"}]}},
    ])
    add(api, sid, "I love espresso, I have one every morning.")
    old = wait_for(lambda: facts(api, uid), what="the first fact")[0]
    assert old["content"] == old_text
    add(api, sid, "I quit coffee last month. Now I only drink green tea.")

    def superseded():
        cur = facts(api, uid)
        return cur if len(cur) == 1 and cur[0]["content"] == new_text else None
    new = wait_for(superseded, what="the new version")[0]
    assert llm.calls("decide") == 1
    hist = {f["id"]: f for f in facts(api, uid, history=True)}
    assert set(hist) == {old["id"], new["id"]}
    o = hist[old["id"]]
    assert o["status"] == "superseded" and o["superseded_by"] == new["id"] and o["valid_to"]
    assert new["supersedes"] == old["id"] and new["valid_to"] is None and new["status"] == "current"
    assert o["valid_to"] <= new["valid_from"] or o["valid_to"] == new["valid_from"]
    chain = ok(api.get(f"/users/{uid}/facts/{new['id']}"), 200, "Fact retrieved successfully")
    assert [v["id"] for v in chain["history"]] == [old["id"], new["id"]]
    assert chain["fact"]["id"] == new["id"]
    # the query knows only the current version
    res = query(api, uid, "what does the user drink", top_k=20)
    fact_ids = [r["id"] for r in res if r["type"] == "fact"]
    assert new["id"] in fact_ids and old["id"] not in fact_ids


def test_contradiction_invalidates(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(rules=[
        # (rules are tried in order: the second message names Berlin too)
        {"kind": "facts", "contains": "Munich", "reply": fact_reply({"content": "User lives in Munich"})},
        {"kind": "facts", "contains": "Berlin", "reply": fact_reply({"content": "User lives in Berlin"})},
        {"kind": "decide", "contains": "Munich",
         "reply": "```json\n{\"decisions\": [{\"fact\": \"1\", \"action\": \"Invalidate\", \"target\": \"F1\"}]}\n```"},
    ])
    add(api, sid, "I live in Berlin.")
    old = wait_for(lambda: facts(api, uid), what="the first fact")[0]
    add(api, sid, "I moved to Munich, I don't live in Berlin any more.")
    new = wait_for(lambda: [f for f in facts(api, uid) if "Munich" in f["content"]], what="the new fact")[0]
    hist = {f["id"]: f for f in facts(api, uid, history=True)}
    assert hist[old["id"]]["status"] == "invalidated" and hist[old["id"]]["superseded_by"] == new["id"]
    assert [f["id"] for f in facts(api, uid)] == [new["id"]]


def test_duplicates_cause_no_llm_call(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(rules=[
        {"kind": "facts", "contains": "first dog", "reply": fact_reply({"content": "User has a dog named Rex"})},
        {"kind": "facts", "contains": "again", "reply": fact_reply({"content": "  user has a dog named rex. "})},
        {"kind": "facts", "contains": "called", "reply": fact_reply({"content": "User has a dog called Rex"})},
        {"kind": "facts", "contains": "twice", "reply": fact_reply(
            {"content": "User likes hiking"}, {"content": "User likes hiking!"}, {"content": "User likes Hiking"})},
    ])
    add(api, sid, "My first dog is Rex.")
    first = wait_for(lambda: facts(api, uid), what="the first fact")
    calls_before = llm.stats()["calls"]
    add(api, sid, "Rex again, my dog.")       # exact duplicate after normalisation
    add(api, sid, "The dog called Rex.")      # near duplicate (cosine >= 0.95 with use-lite)
    add(api, sid, "I said it twice: hiking.")  # duplicates within one flush
    wait_for(lambda: llm.calls("facts") >= calls_before.get("facts", 0) + 3 and
             llm.calls("episodes") >= calls_before.get("episodes", 0) + 3, what="the three flushes")
    cur = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(facts(api, uid)), what="hiking stored once")
    assert {f["content"] for f in cur} == {first[0]["content"], "User likes hiking"}
    assert llm.calls("decide") == 0, "duplicates must be caught before any decision call"


def test_low_confidence_facts_are_dropped(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(rules=[{"kind": "facts", "reply": {"facts": [
        {"content": "User might like jazz", "confidence": 0.2},
        {"content": "User plays the cello", "confidence": "0.9"}]}}])
    add(api, sid, "Maybe jazz? I play the cello.")
    got = wait_for(lambda: facts(api, uid), what="the confident fact")
    time.sleep(0.3)
    assert [f["content"] for f in facts(api, uid)] == ["User plays the cello"]


def test_retract_a_fact(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(rules=[{"kind": "facts", "reply": fact_reply({"content": "User is allergic to peanuts"})}])
    add(api, sid, "I am allergic to peanuts.")
    f = wait_for(lambda: facts(api, uid), what="the fact")[0]
    r = api.delete(f"/users/{uid}/facts/{f['id']}")
    assert ok(r, 200, "Fact retracted successfully") == {"fact_id": f["id"]}
    assert facts(api, uid) == []
    h = facts(api, uid, history=True)
    assert len(h) == 1 and h[0]["status"] == "retracted" and h[0]["valid_to"]
    assert not [x for x in query(api, uid, "peanut allergy", top_k=20) if x["type"] == "fact"]
    error(api.delete(f"/users/{uid}/facts/{f['id']}"), 400, f"Fact with ID '{f['id']}' is not current", "fact_id")
    missing = "00000000-0000-7000-8000-000000000000"
    error(api.delete(f"/users/{uid}/facts/{missing}"), 404, f"Fact with ID '{missing}' not found", "fact_id")
    error(api.get(f"/users/{uid}/facts/{missing}"), 404, f"Fact with ID '{missing}' not found", "fact_id")
    # another user's fact is not found under this user
    other, _, _ = world(api)
    error(api.delete(f"/users/{other}/facts/{f['id']}"), 404, f"Fact with ID '{f['id']}' not found", "fact_id")


def test_layer_routes_errors(layered):
    api = layered.api()
    uid, _, sid = world(api)
    missing = "00000000-0000-7000-8000-000000000000"
    user_404(api.get(f"/users/{missing}/facts"), missing)
    user_404(api.get(f"/users/{missing}/episodes"), missing)
    user_404(api.delete(f"/users/{missing}/facts/{missing}"), missing)
    error(api.get(f"/users/{uid}/facts", params={"history": "maybe"}), 400, None, "history")
    session_404(api.get(f"/users/{uid}/episodes", params={"session_id": missing}), missing)
    other, _, other_sid = world(api)
    session_404(api.get(f"/users/{uid}/episodes", params={"session_id": other_sid}), other_sid)
    error(api.get(f"/users/{uid}/episodes", params={"limit": "0"}), 400, None, "limit")
    assert episodes(api, uid, session_id=sid) == []


def test_episodes_by_session_and_order(layered, llm):
    api = layered.api()
    uid, aid, s1 = world(api)
    s2 = create_session(api, uid, aid)["id"]
    add(api, s1, "First session talk about sailing.")
    add(api, s2, "Second session talk about baking.")
    wait_for(lambda: len(episodes(api, uid)) == 2, what="two episodes")
    assert [e["session_id"] for e in episodes(api, uid, session_id=s1)] == [s1]
    newest_first = episodes(api, uid)
    assert newest_first[0]["session_id"] == s2
    assert [e["session_id"] for e in episodes(api, uid, order="asc")] == [s1, s2]
    assert len(episodes(api, uid, limit=1)) == 1
    # deleting a session removes its episodes
    assert api.delete(f"/sessions/{s2}").status_code == 200
    assert [e["session_id"] for e in episodes(api, uid)] == [s1]


# --- failures: the LLM down, slow, or answering garbage ----------------------------------------------

def test_llm_down_leaves_adds_and_queries_alone_and_work_is_retried(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(mode="down")
    t0 = time.monotonic()
    ids = add(api, sid, "I collect vintage stamps from Norway.")
    assert time.monotonic() - t0 < 2.0  # the add never waits for the LLM
    wait_for(lambda: llm.calls("episodes") >= 1 and llm.calls("facts") >= 1, what="the failing attempts")
    res = query(api, uid, "vintage stamps", store_type="keyword")
    assert [r["id"] for r in res] == ids
    wait_for(lambda: ok(layered.api().get("/health"))["llm"] == "degraded", what="health to say degraded")
    assert episodes(api, uid) == [] and facts(api, uid) == []
    llm.script(mode="ok")  # the LLM is back: the flush is retried by itself
    wait_for(lambda: episodes(api, uid), what="the retried episode")
    wait_for(lambda: facts(api, uid), what="the retried fact")
    wait_for(lambda: ok(layered.api().get("/health"))["llm"] == "ok", what="health to say ok")


def test_one_layer_failing_does_not_block_the_other(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(mode={"episodes": "down", "facts": "ok", "decide": "ok"})
    add(api, sid, "I teach mathematics at a high school.")
    wait_for(lambda: facts(api, uid), what="M2 done while M1 fails")
    assert episodes(api, uid) == []
    llm.script(mode="ok")
    wait_for(lambda: episodes(api, uid), what="M1 retried")


def test_garbage_output_is_retried(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(mode="garbage")
    ids = add(api, sid, "My sister Anna lives in Oslo.")
    wait_for(lambda: llm.calls("episodes") >= 1 and llm.calls("facts") >= 1, what="the garbage answers")
    assert [r["id"] for r in query(api, uid, "Anna Oslo", store_type="keyword")] == ids
    llm.script(mode="ok")
    wait_for(lambda: episodes(api, uid), what="the episode after garbage")
    wait_for(lambda: facts(api, uid), what="the fact after garbage")


def test_slow_llm_times_out_and_is_retried(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(latency_ms=4000)  # twice the server's --llm-timeout-ms
    t0 = time.monotonic()
    add(api, sid, "I am training for the Vienna marathon.")
    assert time.monotonic() - t0 < 2.0
    wait_for(lambda: llm.calls("episodes") >= 1, what="the slow call")
    llm.script(latency_ms=0)
    wait_for(lambda: episodes(api, uid), timeout=20, what="the episode once the LLM is fast again")


def test_m1_and_m2_really_run_in_parallel(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    llm.script(latency_ms=600)
    add(api, sid, "I started learning Portuguese.")
    wait_for(lambda: episodes(api, uid) and facts(api, uid), what="both layers")
    log = [c for c in llm.stats()["log"] if c["kind"] in ("episodes", "facts") and c["status"] == 200]
    ep = [c for c in log if c["kind"] == "episodes"][-1]
    fa = [c for c in log if c["kind"] == "facts"][-1]
    overlap = min(ep["end"], fa["end"]) - max(ep["start"], fa["start"])
    span = max(ep["end"], fa["end"]) - min(ep["start"], fa["start"])
    print(f"\nM1 {ep['end'] - ep['start']:.3f}s, M2 {fa['end'] - fa['start']:.3f}s, both {span:.3f}s, "
          f"overlap {overlap:.3f}s")
    assert overlap > 0.4, f"M1 and M2 calls did not overlap: {ep} {fa}"


# --- durability of the unprocessed state -------------------------------------------------------------

@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_pending_flushes_survive_restart(spawn, fake, how):
    fake.reset()
    fake.script(mode="down")
    s = spawn("--llm-base-url", fake.url, *LAYER_FLAGS, name=f"layers-{how}")
    api = s.api()
    uid, _, sid = world(api)
    add(api, sid, "I keep bees in my garden.")
    wait_for(lambda: fake.calls("episodes") >= 1, what="a failed attempt")
    if how == "sigterm":
        s.stop()
    else:
        s.kill9()
    fake.script(mode="ok")
    s.restart()
    api = s.api()
    wait_for(lambda: episodes(api, uid), what="the episode after restart")
    wait_for(lambda: facts(api, uid), what="the fact after restart")
    fake.reset()


def test_without_llm_nothing_changes(api):
    uid, _, sid = world(api)
    add(api, sid, "I like chess and my cat is called Tom.")
    assert facts(api, uid) == [] and episodes(api, uid) == []
    res = query(api, uid, "chess cat", top_k=20)
    assert res and all(r["type"] == "message" for r in res)


def test_deleting_the_user_removes_the_layers(layered, llm):
    api = layered.api()
    uid, _, sid = world(api)
    add(api, sid, "My daughter is called Mia.")
    wait_for(lambda: episodes(api, uid) and facts(api, uid), what="both layers")
    assert api.delete(f"/users/{uid}").status_code == 204
    user_404(api.get(f"/users/{uid}/facts"), uid)
    user_404(api.get(f"/users/{uid}/episodes"), uid)


# --- monitoring ---------------------------------------------------------------------------------------

def test_metrics_and_admin_stats_show_the_layers(layered, llm):
    from test_metrics import check_histograms, op_count, sample, scrape
    api = layered.api()
    before = scrape(api)
    uid, _, sid = world(api)
    add(api, sid, "I keep bees in my garden.")
    wait_for(lambda: facts(api, uid) and episodes(api, uid), what="the layers' results")
    fams = wait_for(lambda: (lambda f: f if sample(f, "memfuse_flush_layers_total", layer="M2", outcome="done") >
                             sample(before, "memfuse_flush_layers_total", layer="M2", outcome="done") else None)(
        scrape(api)), what="M2 counted")
    assert sample(fams, "memfuse_layers_enabled") == 1
    assert sample(fams, "memfuse_llm_calls_total", result="ok") >= sample(
        before, "memfuse_llm_calls_total", result="ok") + 2
    assert sample(fams, "memfuse_llm_tokens_total", kind="prompt") > sample(
        before, "memfuse_llm_tokens_total", kind="prompt")
    for layer in ("M1", "M2"):
        for part in ("total", "llm"):
            assert sample(fams, "memfuse_layer_duration_seconds", "memfuse_layer_duration_seconds_count",
                          layer=layer, part=part) >= 1, (layer, part)
    check_histograms("memfuse_layer_duration_seconds", fams["memfuse_layer_duration_seconds"]["samples"])
    for op in ("m1", "m2", "flush_handoff"):
        assert op_count(fams, op) > op_count(before, op), op
    assert sample(fams, "memfuse_facts_stored_total") >= 1 and sample(fams, "memfuse_episodes_stored_total") >= 1
    assert uid not in api.get(api.root + "/metrics").text  # /metrics names no user
    usage = {u["user_id"]: u for u in ok(api.get("/admin/stats"), 200)["llm_usage"]}
    assert usage[uid]["calls"] >= 2 and usage[uid]["prompt_tokens"] > 0 and usage[uid]["completion_tokens"] > 0


def test_without_an_llm_the_layer_metrics_say_off(server):
    from test_metrics import sample, scrape
    fams = scrape(server.api())
    assert sample(fams, "memfuse_layers_enabled") == 0
    assert "memfuse_llm_calls_total" not in fams
    assert ok(server.api().get("/admin/stats"))["llm_usage"] == []
