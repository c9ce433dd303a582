"""The speaker match in hybrid queries (issue 4, search/fusion.h, --speaker-boost): transcripts keep a turn as
"<Name>: <text>", and a question that names one participant is about what that participant said. When the
query names exactly one of the speakers among the candidate messages, that speaker's messages score
(1 + boost) times what they would have; nothing changes for a query naming none or both, for messages without
a label, for keyword-only and vector-only queries, or with --speaker-boost 0. Most cases compare two servers
holding the same data, one with the default boost (0.4) and one without, so the factor itself is checked."""

import pytest

from conftest import run_cli
from helpers import add_messages, create_session, msgs, query, world
from test_semantic import wait_vectors

# Maya's turns mention Tom and painting more than Tom's own do: without the boost her turns lead a question
# about what Tom painted.
CHAT = [
    "Maya: Tom, did you paint anything this month? I painted the harbour, Tom, twice!",
    "Tom: Only the garden shed, in dark green.",
    "Maya: Lovely. The harbour painting is going to the autumn show.",
    "Tom: Then my shed can stay in the garden.",
]
LATER = [
    "Maya: My sister adopted a grey kitten called Pebble.",
    "Tom: I started running again, three times a week.",
]
PLAIN = [  # no speaker labels: never boosted
    "Did you paint anything this month, Tom? I painted the harbour twice.",
    "Only the garden shed, in dark green.",
]
BOOST = 0.4


def load(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs(*CHAT, role="alt"))
    s2 = create_session(api, u["id"], a["id"])
    ids += add_messages(api, s2["id"], msgs(*LATER, role="alt"))
    s3 = create_session(api, u["id"], a["id"])
    plain = add_messages(api, s3["id"], msgs(*PLAIN, role="alt"))
    wait_vectors(api, u["id"], len(ids) + len(plain))
    return u["id"], ids, plain


@pytest.fixture(scope="module")
def pair(module_spawn):
    """The same conversation in a server with the default boost and in one with none."""
    on = module_spawn(name="speaker-on")
    off = module_spawn("--speaker-boost", "0", name="speaker-off")
    return load(on.api()) + (on.api(),), load(off.api()) + (off.api(),)


def ask(side, q, **opts):
    uid, ids, plain, api = side
    res = query(api, uid, q, top_k=20, explain=True, **opts)
    return {r["id"]: r for r in res}, [r["id"] for r in res], ids, plain


def speaker(hit):
    return hit["metadata"]["retrieval"].get("speaker")


def test_the_named_speakers_turns_are_favoured_by_the_factor(pair):
    on, off = pair
    by_on, order_on, ids, plain = ask(on, "What did Tom paint?")
    by_off, order_off, ids_off, _ = ask(off, "What did Tom paint?")
    tom = [ids[1], ids[3], ids[5]]
    maya = [ids[0], ids[2], ids[4]]
    # without the boost one of Maya's turns, about her painting, leads; with it, Tom's answer does
    assert order_off[0] in (ids_off[0], ids_off[2]), [by_off[i]["content"] for i in order_off]
    assert order_on[0] == ids[1], [by_on[i]["content"] for i in order_on]
    for i in tom:
        if i in by_on:
            assert speaker(by_on[i]) == {"factor": pytest.approx(1 + BOOST)}, by_on[i]
    for i in maya + plain:
        if i in by_on:
            assert speaker(by_on[i]) is None, by_on[i]
    assert all(speaker(r) is None for r in by_off.values())
    # the factor exactly: ratios of final scores (the rescaling cancels) grow by 1 + boost
    off_id = dict(zip(ids_off, ids))
    s_on = {i: by_on[i]["score"] for i in by_on}
    s_off = {off_id[i]: by_off[i]["score"] for i in by_off if i in off_id}
    assert ids[1] in s_off and ids[0] in s_off
    assert s_on[ids[1]] / s_on[ids[0]] == pytest.approx((1 + BOOST) * s_off[ids[1]] / s_off[ids[0]], rel=1e-6)
    assert all(0 <= r["score"] <= 1 for r in by_on.values())


@pytest.mark.parametrize("q", ["What did Tom and Maya paint?", "Which painting went to the autumn show?",
                               "what did someone called Tomas paint?"])
def test_no_single_speaker_named_changes_nothing(pair, q):
    on, off = pair
    by_on, order_on, ids, _ = ask(on, q)
    by_off, order_off, ids_off, _ = ask(off, q)
    assert all(speaker(r) is None for r in by_on.values()), q
    off_id = dict(zip(ids_off, ids))
    assert [off_id[i] for i in order_off if i in off_id] == [i for i in order_on if i in ids]
    for i in order_off:
        if i in off_id:
            assert by_on[off_id[i]]["score"] == pytest.approx(by_off[i]["score"], rel=1e-9)


def test_lower_case_names_count(pair):
    on, _ = pair
    by_on, order_on, ids, _ = ask(on, "what did tom paint")
    assert speaker(by_on[ids[1]]) == {"factor": pytest.approx(1 + BOOST)}


@pytest.mark.parametrize("store_type", ["keyword", "vector"])
def test_single_paths_are_not_boosted(pair, store_type):
    on, _ = pair
    by_on, _, _, _ = ask(on, "What did Tom paint?", store_type=store_type)
    assert by_on and all(speaker(r) is None for r in by_on.values())


@pytest.mark.parametrize("flags,needle", [
    (["--speaker-boost", "-0.1"], "--speaker-boost"),
    (["--speaker-boost", "11"], "--speaker-boost"),
    (["--speaker-boost", "nan"], "--speaker-boost"),
])
def test_bad_settings_refuse_to_start(flags, needle, tmp_path):
    r = run_cli("serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"), *flags, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert needle in r.stderr, r.stderr
