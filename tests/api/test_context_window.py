"""Hybrid retrieval in a conversation (issue 4, BENCHMARKS.md "retrieval quality"): a message is indexed with
the message before it in its session (weighed little) and, in hybrid queries, also scores by the messages
just before it (the context window, --context-window). So the answer to a question is found even when it
shares no word with the query, because the turns before it do; keyword-only and vector-only queries keep
their single path. Configuration errors of the fusion stop the server at start."""

import pytest

from conftest import run_cli
from helpers import add_messages, create_session, msgs, query, world
from test_semantic import wait_vectors

CHAT = [
    "We watched a film about whales last night.",
    "Was it any good?",
    "Beautiful, but far too long.",
]
LATER = [
    "So, the anaesthesia nursing exam?",
    "And??",
    "I passed! With a distinction!",
]
OTHER = [  # another session, added after: it never takes context from the chat above
    "Yesterday I repotted the basil on the balcony.",
    "My cousin is moving to Lisbon in the spring.",
    "The new bakery sells great rye bread.",
]


@pytest.fixture
def chat(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs(*CHAT, role="alt"))
    ids += add_messages(api, s["id"], msgs(*LATER, role="alt"))
    s2 = create_session(api, u["id"], a["id"])
    other = add_messages(api, s2["id"], msgs(*OTHER, role="alt"))
    wait_vectors(api, u["id"], len(ids) + len(other))
    return api, u, ids, other


def test_the_answer_is_found_by_the_turns_before_it(chat):
    api, u, ids, other = chat
    passed = ids[5]
    q = "anaesthesia nursing exam result"
    res = query(api, u["id"], q, top_k=6, explain=True)
    got = [r["id"] for r in res]
    assert passed in got, [r["content"] for r in res]
    hit = res[got.index(passed)]
    rt = hit["metadata"]["retrieval"]
    assert rt["source"] == "hybrid" and rt["context"]["score"] > 0, rt
    assert "keyword" not in rt, "the answer shares no word with the query"
    # the turn that shares the words ranks first, the film chat below the exam's; scores in [0,1], best first
    assert got[0] == ids[3]
    assert all(got.index(passed) < got.index(i) for i in ids[:3] if i in got)
    assert all(0 <= r["score"] <= 1 for r in res)
    assert [r["score"] for r in res] == sorted((r["score"] for r in res), reverse=True)
    # the other session's first message, added after this chat, takes no context from it
    first = query(api, u["id"], q, top_k=20, explain=True)
    assert other[0] in [r["id"] for r in first]
    assert all("context" not in r["metadata"]["retrieval"] for r in first if r["id"] == other[0])


def test_single_paths_keep_their_own_text(chat):
    api, u, ids, other = chat
    q = "anaesthesia nursing exam"
    kw = query(api, u["id"], q, store_type="keyword", top_k=10, explain=True)
    assert [r["id"] for r in kw] == [ids[3]], [r["content"] for r in kw]
    assert all("context" not in r["metadata"]["retrieval"] for r in kw)
    vec = query(api, u["id"], q, store_type="vector", top_k=10, explain=True)
    assert all("context" not in r["metadata"]["retrieval"] for r in vec)


def test_hybrid_finds_a_reply_by_the_words_it_answers(api):
    """The context column: the keyword path itself finds the reply through the question before it (the
    reply shares no word with the query), and scores it below the question."""
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("Which watercolour did you paint for the show?",
                                          "The heron at dawn, mostly greys and blues.", role="alt"))
    wait_vectors(api, u["id"], 2)
    res = query(api, u["id"], "watercolour", top_k=5, explain=True)
    got = [r["id"] for r in res]
    assert got[:2] == ids, [r["content"] for r in res]
    assert res[1]["metadata"]["retrieval"]["keyword"]["score"] < res[0]["metadata"]["retrieval"]["keyword"]["score"]


def test_window_off_and_rrf(spawn):
    srv = spawn("--context-window", "0", "--fusion", "rrf", "--weight-keyword", "2", "--weight-vector", "1",
                name="no-window")
    api = srv.api()
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs(*CHAT, role="alt"))
    ids += add_messages(api, s["id"], msgs(*LATER, role="alt"))
    wait_vectors(api, u["id"], len(ids))
    res = query(api, u["id"], "anaesthesia nursing exam result", top_k=6, explain=True)
    assert all("context" not in r["metadata"]["retrieval"] for r in res)
    top = res[0]["metadata"]["retrieval"]
    if top.get("keyword", {}).get("rank") == 1 and top.get("vector", {}).get("rank") == 1:
        assert res[0]["score"] == pytest.approx(1.0)


@pytest.mark.parametrize("flags,needle", [
    (["--fusion", "borda"], "--fusion"),
    (["--context-window", "0.5,x"], "--context-window"),
    (["--context-window", "1.5"], "--context-window"),
    (["--context-window", ",".join(["0.1"] * 9)], "--context-window"),
    (["--weight-keyword", "-1"], "--weight-keyword"),
    (["--weight-keyword", "0", "--weight-vector", "0"], "--weight-keyword"),
])
def test_bad_fusion_settings_refuse_to_start(flags, needle, tmp_path):
    r = run_cli("serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"), *flags, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr
