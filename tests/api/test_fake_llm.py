"""The scripted chat mode of tests/fakes/fake_openai.py, which the memory layers' HTTP tests rely on: default
replies per task kind from realistic prompts, rules, modes (down, garbage, malformed, flaky, slow, close),
latency, /stats/chat and its log, reset, and that "fake-<mode>" model names are left to their own behaviour.
Needs no memfuse binary: only the fake, started here on a loopback port with an API key."""

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_openai.py"
KEY = "sk-fake-llm-test"
AUTH = {"Authorization": "Bearer " + KEY}

CONVERSATION = """Conversation:
[1] 2024-05-01T09:15:00.000000Z user: I just moved to Berlin with my partner Anna.
[2] 2024-05-01T09:15:04.000000Z assistant: Welcome to Berlin! How are you finding it?
[3] 2024-05-01T09:16:30.000000Z user: Great, but I miss a good espresso, like in Rome.
"""


@pytest.fixture(scope="module")
def fake():
    proc = subprocess.Popen([sys.executable, str(FAKE), "--port", "0", "--api-key", KEY], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    assert line.startswith("PORT "), f"fake did not start: {line!r}"
    base = f"http://127.0.0.1:{int(line.split()[1])}"
    yield base
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def clean(fake):
    assert requests.post(fake + "/control/reset", timeout=5).status_code == 200
    yield


def control(base, **cfg):
    r = requests.post(base + "/control/chat", json=cfg, timeout=5)
    assert r.status_code == 200, r.text
    return r


def chat(base, kind, user, model="gpt-test", timeout=10, **extra):
    system = (f"memfuse-task: {kind}\n" if kind else "") + "You read conversations and answer in JSON."
    body = {"model": model, "temperature": 0, "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}], **extra}
    return requests.post(base + "/v1/chat/completions", json=body, headers=AUTH, timeout=timeout)


def content(r):
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["index"] == 0
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    return body["choices"][0]["message"]["content"]


def stats(base):
    return requests.get(base + "/stats/chat", timeout=5).json()


def test_default_episodes(fake):
    r = chat(fake, "episodes", CONVERSATION)
    got = json.loads(content(r))
    assert got == {"episodes": [{
        "content": "user: I just moved to Berlin with my partner Anna.; "
                   "assistant: Welcome to Berlin! How are you finding it?; "
                   "user: Great, but I miss a good espresso, like in Rome.",
        "occurred_at": "2024-05-01", "participants": ["user", "assistant"], "messages": [1, 2, 3]}]}
    # usage as documented: ceil(len(system + user) / 4), ceil(len(content) / 4)
    req_system = "memfuse-task: episodes\nYou read conversations and answer in JSON."
    usage = r.json()["usage"]
    assert usage["prompt_tokens"] == math.ceil(len(req_system + CONVERSATION) / 4)
    assert usage["completion_tokens"] == math.ceil(len(content(r)) / 4)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_default_facts(fake):
    got = json.loads(content(chat(fake, "facts", CONVERSATION)))
    assert got == {"facts": [
        {"content": "I just moved to Berlin with my partner Anna.", "type": "personal", "confidence": 0.9,
         "entities": ["Berlin", "Anna"], "messages": [1]},
        {"content": "Great, but I miss a good espresso, like in Rome.", "type": "personal", "confidence": 0.9,
         "entities": ["I", "Rome"], "messages": [3]}]}  # "I" is capitalised too


def test_default_decide(fake):
    user = ("Decide for each new fact.\n\nNew facts:\n1: Lives in Berlin\n2: Likes espresso\n3: Has a partner named Anna\n\n"
            "Existing facts:\nF1: Likes tea\nF2: lives in berlin\n")
    got = json.loads(content(chat(fake, "decide", user)))
    assert got == {"decisions": [{"fact": 1, "action": "ignore", "target": "F2"},
                                 {"fact": 2, "action": "add"}, {"fact": 3, "action": "add"}]}
    # no existing facts: everything is added
    got = json.loads(content(chat(fake, "decide", "New facts:\n1: Likes tea\nExisting facts:\n")))
    assert got == {"decisions": [{"fact": 1, "action": "add"}]}


def test_default_other(fake):
    assert json.loads(content(chat(fake, None, "hello there"))) == {"echo": "hello there"}
    assert json.loads(content(chat(fake, "summaries", "x"))) == {"echo": "x"}  # unknown kind: other
    s = stats(fake)
    assert s["calls"] == {"episodes": 0, "facts": 0, "decide": 0, "other": 2}


def test_rules(fake):
    control(fake, rules=[
        {"kind": "facts", "contains": "ESPRESSO", "reply": {"facts": [{"content": "Loves espresso", "confidence": 1}]}},
        {"kind": "facts", "contains": "tea", "reply": "```json\n{\"facts\": []}\n```"},
        {"kind": "episodes", "reply": [{"content": "anything"}]},
    ])
    # case-insensitive match; an object is json.dumps'd
    assert json.loads(content(chat(fake, "facts", CONVERSATION))) == {
        "facts": [{"content": "Loves espresso", "confidence": 1}]}
    # a string reply is sent verbatim
    assert content(chat(fake, "facts", "[1] 2024-01-01T00:00:00Z user: I like tea")) == "```json\n{\"facts\": []}\n```"
    # no rule matches: the default reply
    assert json.loads(content(chat(fake, "facts", "[1] 2024-01-01T00:00:00Z user: I like Mondays")))["facts"][0][
        "entities"] == ["Mondays"]
    # a rule without "contains" always matches its kind; arrays are json.dumps'd too
    assert json.loads(content(chat(fake, "episodes", "whatever"))) == [{"content": "anything"}]
    # a rule never applies to another kind
    assert "decisions" in json.loads(content(chat(fake, "decide", "New facts:\n1: espresso\n")))


def test_mode_down_garbage_malformed(fake):
    control(fake, mode={"facts": "down", "episodes": "garbage", "decide": "malformed"})
    r = chat(fake, "facts", CONVERSATION)
    assert r.status_code == 503
    assert r.json()["error"]["message"]
    assert content(chat(fake, "episodes", CONVERSATION)) == "Sorry, I cannot help with that."
    r = chat(fake, "decide", "New facts:\n1: x\n")
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    # kinds without a mode are ok
    assert json.loads(content(chat(fake, None, "hi"))) == {"echo": "hi"}
    # one mode for every kind
    control(fake, mode="down")
    assert chat(fake, "episodes", CONVERSATION).status_code == 503
    assert chat(fake, None, "hi").status_code == 503
    # model names "fake-<mode>" keep their own behaviour
    assert json.loads(content(chat(fake, "facts", "hi", model="fake-ok#scripted"))) == {"echo": "hi"}


def test_mode_flaky_and_close(fake):
    control(fake, mode={"facts": "flaky-2"})
    assert [chat(fake, "facts", CONVERSATION).status_code for _ in range(4)] == [500, 500, 200, 200]
    assert chat(fake, "episodes", CONVERSATION).status_code == 200  # other kinds unaffected
    # a new control call starts the count again
    control(fake, mode={"facts": "flaky-1"})
    assert [chat(fake, "facts", CONVERSATION).status_code for _ in range(2)] == [500, 200]
    control(fake, mode={"decide": "close"})
    with pytest.raises(requests.ConnectionError):
        chat(fake, "decide", "New facts:\n1: x\n")
    log = stats(fake)["log"]
    assert [e["status"] for e in log] == [500, 500, 200, 200, 200, 500, 200, 0]


def test_latency_and_slow(fake):
    control(fake, latency_ms={"episodes": 400}, mode={"facts": "slow-300"})
    t0 = time.time()
    content(chat(fake, "episodes", CONVERSATION))
    assert time.time() - t0 >= 0.4
    t0 = time.time()
    content(chat(fake, "facts", CONVERSATION))
    assert time.time() - t0 >= 0.3
    content(chat(fake, "decide", "New facts:\n1: x\n"))
    log = stats(fake)["log"]
    assert [e["kind"] for e in log] == ["episodes", "facts", "decide"]
    assert log[0]["end"] - log[0]["start"] >= 0.4
    assert log[1]["end"] - log[1]["start"] >= 0.3
    assert log[2]["end"] - log[2]["start"] < 0.3  # no latency for decide
    # one latency for every kind
    control(fake, latency_ms=250)
    t0 = time.time()
    content(chat(fake, None, "hi"))
    assert time.time() - t0 >= 0.25


def test_stats_in_flight_and_reset(fake):
    control(fake, latency_ms=500)
    results = []

    def one(i):
        results.append(chat(fake, ["episodes", "facts", "decide", None][i % 4], CONVERSATION).status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert stats(fake)["in_flight"] >= 1
    for t in threads:
        t.join()
    assert results == [200] * 4
    s = stats(fake)
    assert s["calls"] == {"episodes": 1, "facts": 1, "decide": 1, "other": 1}
    assert s["in_flight"] == 0
    assert 2 <= s["max_in_flight"] <= 4
    assert len(s["log"]) == 4
    assert all(e["status"] == 200 and e["end"] >= e["start"] for e in s["log"])
    assert s["prompt_tokens"] > 0 and s["completion_tokens"] > 0
    # the sums are those of the answers' usage
    control(fake)
    before = stats(fake)
    u = chat(fake, "facts", CONVERSATION).json()["usage"]
    after = stats(fake)
    assert after["prompt_tokens"] - before["prompt_tokens"] == u["prompt_tokens"]
    assert after["completion_tokens"] - before["completion_tokens"] == u["completion_tokens"]

    # reset: stats, rules, modes and latency all gone
    control(fake, rules=[{"kind": "other", "reply": "ruled"}], mode={"facts": "down"}, latency_ms=300)
    requests.post(fake + "/control/reset", timeout=5)
    s = stats(fake)
    assert s == {"calls": {"episodes": 0, "facts": 0, "decide": 0, "other": 0}, "prompt_tokens": 0,
                 "completion_tokens": 0, "max_in_flight": 0, "in_flight": 0, "log": []}
    assert json.loads(content(chat(fake, None, "hi"))) == {"echo": "hi"}
    assert chat(fake, "facts", CONVERSATION).status_code == 200
    log = stats(fake)["log"]
    assert [e["status"] for e in log] == [200, 200]
    assert all(e["end"] - e["start"] < 0.3 for e in log)  # the 300 ms latency is gone


def test_control_needs_no_key_but_chat_does(fake):
    r = requests.post(fake + "/v1/chat/completions", json={"model": "gpt", "messages": []}, timeout=5)
    assert r.status_code == 401
    control(fake)  # no Authorization header
    r = requests.post(fake + "/control/chat", json={"rules": [{"kind": "nonsense"}]}, timeout=5)
    assert r.status_code == 400
