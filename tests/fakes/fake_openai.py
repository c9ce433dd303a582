#!/usr/bin/python3
"""A small fake of the OpenAI HTTP API for tests (standard library only).

Usage: fake_openai.py [--port 0] [--host 127.0.0.1] [--dim 8] [--api-key KEY] [--mode ok]
Prints "PORT <n>" on standard output once it listens, then serves until killed.

Routes live in ROUTES (path -> handler): POST /v1/embeddings and POST /v1/chat/completions. GET /stats?model=NAME
answers {"requests": n, "max_batch": m, "texts": t} for the requests made with that model name (chat requests
count one text each); GET /health answers {"ok": true}. With --api-key set, a request to /v1/... without
"Authorization: Bearer <key>" gets HTTP 401 quoting the key it got (the /control/... endpoints need no key).

Embeddings. Failure modes are chosen per request by the model name ("fake-<mode>[#anything]": the part after
'#' only makes the name unique so that each test has its own counters), or for every request by --mode:
  ok            deterministic vectors (not normalised), data in input order
  shuffle       as ok, but data items in reverse order (clients must use "index")
  slow-<ms>     sleep <ms> before answering ok
  500           always HTTP 500 with an OpenAI-style error body
  flaky-<n>     the first n requests with this model name get HTTP 500, later ones ok
  429-<n>       the first n requests get HTTP 429, later ones ok
  malformed     HTTP 200 with a body that is not JSON
  wrong-dim     vectors of dim + 1 values
  short         one embedding fewer than inputs
  close         close the connection without answering

Chat completions answer in the OpenAI format ({"id", "object": "chat.completion", "model", "choices": [{"index": 0,
"message": {"role": "assistant", "content": ...}, "finish_reason": "stop"}], "usage": {"prompt_tokens",
"completion_tokens", "total_tokens"}}) with prompt_tokens = ceil(len(system + user) / 4) and completion_tokens =
ceil(len(content) / 4). Two ways to choose the behaviour:

(a) Model names "fake-<mode>[#anything]", for the C client's unit tests (content "ok" = {"echo": <user message>}
    as JSON):
  ok            the JSON object {"echo": <user message>} as content
  echo          the user message itself as content
  500           always HTTP 500
  flaky-<n>     the first n requests with this model name get HTTP 500, later ones ok
  429-<n>[-<s>] the first n requests get HTTP 429 with "Retry-After: <s>" (default 0), later ones ok
  slow-<ms>     sleep <ms>, then ok
  malformed     HTTP 200 with a body that is not JSON
  close         close the connection without answering
  nojson        HTTP 400 {"error": {"message": "response_format is not supported"}} whenever the request has
                response_format, ok otherwise
  nochoices     HTTP 200 with "choices": []
  nousage       ok without "usage"

(b) Every other model name: a scripted LLM for the HTTP tests of the memory layers. The request's system message
    starts with a line "memfuse-task: <kind>", kind episodes, facts or decide (anything else: "other").
  POST /control/chat {"rules": [{"kind": K, "contains": S, "reply": R}], "mode": M, "latency_ms": L} replaces the
      whole scripted configuration (absent keys: no rules, mode ok, latency 0). M is a mode for every kind or
      {"<kind>": mode}; L milliseconds for every kind or {"<kind>": ms}. Rules are tried in order; one matches when
      its kind is the request's and S (case-insensitive; absent: always) occurs in the user message. R: a JSON
      object or array is sent json.dumps'd as content, a string verbatim.
      Modes: ok; down (HTTP 503, OpenAI error body); garbage (200, content "Sorry, I cannot help with that.");
      malformed (200, body not JSON); slow-<ms> (sleep, then ok); flaky-<n> (the first n requests of that kind
      after this control call get HTTP 500, then ok); close (connection closed without an answer).
  POST /control/reset clears the rules, modes, latency and the chat statistics.
  GET /stats/chat -> {"calls": {"episodes", "facts", "decide", "other"}, "prompt_tokens", "completion_tokens",
      "max_in_flight", "in_flight", "log": [{"kind", "start", "end", "status"}]} over every chat request (both
      ways; times are time.time(), status the HTTP status answered, 0 when the connection was closed).
  Default replies in mode ok when no rule matches. The user message holds the conversation as lines
  "[<N>] <created_at> <role>: <text>":
    episodes  {"episodes": [{"content": "<role>: <text>; <role>: <text>; ...", "occurred_at": "<YYYY-MM-DD of the
              first created_at>", "participants": [distinct roles in order], "messages": [every N]}]}
    facts     {"facts": [for each message of role "user": {"content": <text>, "type": "personal", "confidence": 0.9,
              "entities": [capitalised words of the text but its first, punctuation stripped, distinct],
              "messages": [N]}]}
    decide    new facts are lines "N: <text>" after a line "New facts:", existing ones lines "F<k>: <text>" after a
              line "Existing facts:"; {"decisions": [{"fact": N, "action": "ignore", "target": "F<k>"} when the new
              text equals an existing one case-insensitively, else {"fact": N, "action": "add"}]}
    other     {"echo": <user message>}
"""
import argparse
import hashlib
import json
import math
import re
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STATE_LOCK = threading.Lock()
STATS = {}  # model name -> {"requests": n, "max_batch": m, "texts": t}


def vector(text, dim):
    """Deterministic, not normalised: values from SHA-256 of the text (chained for large dims)."""
    out, block, seed = [], b"", text.encode("utf-8", "surrogatepass")
    while len(out) < dim:
        block = hashlib.sha256(block + seed).digest()
        for k in range(0, 32, 4):
            if len(out) < dim:
                out.append((struct.unpack("<I", block[k:k + 4])[0] / 2**31 - 1.0) * 3.0)
    return out


def parse_mode(model, default):
    if model.startswith("fake-"):
        return model[5:].split("#", 1)[0]
    return default


def count(model, batch):
    with STATE_LOCK:
        s = STATS.setdefault(model, {"requests": 0, "max_batch": 0, "texts": 0})
        s["requests"] += 1
        s["max_batch"] = max(s["max_batch"], batch)
        s["texts"] += batch
        return s["requests"]


def embeddings(handler, body):
    cfg = handler.server.cfg
    try:
        req = json.loads(body)
        model = req.get("model", "")
        inputs = req["input"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return handler.reply(400, {"error": {"message": "bad request body", "type": "invalid_request_error"}})
    if isinstance(inputs, str):
        inputs = [inputs]
    nth = count(model, len(inputs))
    mode = parse_mode(model, cfg.mode)
    dim = cfg.dim
    if mode.startswith("slow-"):
        time.sleep(int(mode[5:]) / 1000.0)
        mode = "ok"
    if mode.startswith("flaky-"):
        mode = "500" if nth <= int(mode[6:]) else "ok"
    if mode.startswith("429-"):
        if nth <= int(mode[4:]):
            return handler.reply(429, {"error": {"message": "rate limited", "type": "rate_limit_error"}})
        mode = "ok"
    if mode == "500":
        return handler.reply(500, {"error": {"message": "the fake server failed on purpose", "type": "server_error"}})
    if mode == "malformed":
        return handler.reply_raw(200, b'{"data": [{"embedding": [0.1, 0.2,', "application/json")
    if mode == "close":
        handler.close_connection = True
        handler.connection.shutdown(2)
        return None
    if mode == "wrong-dim":
        dim += 1
    data = [{"object": "embedding", "index": i, "embedding": vector(t, dim)} for i, t in enumerate(inputs)]
    if mode == "short":
        data = data[:-1]
    if mode == "shuffle":
        data.reverse()
    return handler.reply(200, {"object": "list", "data": data, "model": model,
                               "usage": {"prompt_tokens": 0, "total_tokens": 0}})


# --- chat completions ------------------------------------------------------------------------------------------

KINDS = ("episodes", "facts", "decide", "other")
CHAT_LOCK = threading.Lock()  # guards CHAT_CFG and CHAT_STATS
CHAT_CFG = {}
CHAT_STATS = {}


def chat_cfg_default():
    return {"rules": [], "mode": {}, "latency": {}, "seen": {k: 0 for k in KINDS}}


def chat_stats_default(in_flight=0):
    return {"calls": {k: 0 for k in KINDS}, "prompt_tokens": 0, "completion_tokens": 0,
            "max_in_flight": in_flight, "in_flight": in_flight, "log": []}


CHAT_CFG.update(chat_cfg_default())
CHAT_STATS.update(chat_stats_default())


def task_kind(system):
    first = (system or "").split("\n", 1)[0].strip()
    m = re.match(r"memfuse-task:\s*(\S+)\s*$", first)
    return m.group(1) if m and m.group(1) in KINDS[:3] else "other"


def message_text(msg):
    content = msg.get("content") if isinstance(msg, dict) else None
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


LINE_RE = re.compile(r"^\[(\d+)\]\s+(\S+)\s+([^\s:]+):\s?(.*)$")


def conversation(user):
    """The "[N] created_at role: text" lines of a user message as (N, created_at, role, text)."""
    out = []
    for line in user.splitlines():
        m = LINE_RE.match(line.strip())
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3), m.group(4).strip()))
    return out


def entities(text):
    seen, out = set(), []
    for word in text.split()[1:]:
        w = word.strip(".,;:!?\"'()[]{}<>")
        if w and w[0].isupper() and w not in seen:
            seen.add(w)
            out.append(w)
    return out


def default_reply(kind, user):
    if kind == "episodes":
        msgs = conversation(user)
        if not msgs:
            return {"episodes": []}
        roles = []
        for m in msgs:
            if m[2] not in roles:
                roles.append(m[2])
        return {"episodes": [{"content": "; ".join("%s: %s" % (m[2], m[3]) for m in msgs),
                              "occurred_at": msgs[0][1][:10], "participants": roles,
                              "messages": [m[0] for m in msgs]}]}
    if kind == "facts":
        return {"facts": [{"content": m[3], "type": "personal", "confidence": 0.9, "entities": entities(m[3]),
                           "messages": [m[0]]} for m in conversation(user) if m[2] == "user"]}
    if kind == "decide":
        new, existing, section = [], [], None
        for line in user.splitlines():
            t = line.strip()
            if t.lower() == "new facts:":
                section = "new"
            elif t.lower() == "existing facts:":
                section = "existing"
            elif section == "new" and re.match(r"^\d+:", t):
                n, text = t.split(":", 1)
                new.append((int(n), text.strip()))
            elif section == "existing" and re.match(r"^F\d+:", t):
                k, text = t.split(":", 1)
                existing.append((k, text.strip()))
        decisions = []
        for n, text in new:
            same = [k for k, e in existing if e.lower() == text.lower()]
            decisions.append({"fact": n, "action": "ignore", "target": same[0]} if same else
                             {"fact": n, "action": "add"})
        return {"decisions": decisions}
    return {"echo": user}


def chat_answer(handler, model, content, prompt_text, usage=True):
    comp = {"id": "chatcmpl-fake-%d" % int(time.time() * 1e6), "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    pt, ct = math.ceil(len(prompt_text) / 4), math.ceil(len(content) / 4)
    if usage:
        comp["usage"] = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        with CHAT_LOCK:
            CHAT_STATS["prompt_tokens"] += pt
            CHAT_STATS["completion_tokens"] += ct
    return handler.reply(200, comp)


def chat_fail(handler, status, message, kind="server_error", headers=None):
    return handler.reply(status, {"error": {"message": message, "type": kind}}, headers)


def chat_close(handler):
    handler.answered()
    handler.close_connection = True
    handler.connection.shutdown(2)


def chat_by_model(handler, req, model, mode, system, user):
    """Way (a): behaviour from the model name."""
    nth = count(model, 1)
    prompt = system + user
    if mode.startswith("slow-"):
        time.sleep(int(mode[5:]) / 1000.0)
        mode = "ok"
    if mode.startswith("flaky-"):
        mode = "500" if nth <= int(mode[6:]) else "ok"
    if mode.startswith("429-"):
        parts = mode[4:].split("-")
        if nth <= int(parts[0]):
            after = parts[1] if len(parts) > 1 else "0"
            return chat_fail(handler, 429, "rate limited", "rate_limit_error", {"Retry-After": after})
        mode = "ok"
    if mode == "500":
        return chat_fail(handler, 500, "the fake server failed on purpose")
    if mode == "malformed":
        return handler.reply_raw(200, b'{"choices": [{"message": {"content": "x', "application/json")
    if mode == "close":
        return chat_close(handler)
    if mode == "nojson":
        if "response_format" in req:
            return chat_fail(handler, 400, "response_format is not supported", "invalid_request_error")
        mode = "ok"
    if mode == "nochoices":
        return handler.reply(200, {"id": "chatcmpl-fake", "object": "chat.completion", "model": model, "choices": [],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}})
    if mode == "echo":
        return chat_answer(handler, model, user, prompt)
    if mode in ("ok", "nousage"):
        return chat_answer(handler, model, json.dumps({"echo": user}), prompt, usage=mode == "ok")
    return chat_fail(handler, 400, "unknown fake mode " + mode, "invalid_request_error")


def chat_scripted(handler, model, kind, system, user):
    """Way (b): the configuration set by POST /control/chat."""
    with CHAT_LOCK:
        latency = CHAT_CFG["latency"].get(kind, 0)
        mode = CHAT_CFG["mode"].get(kind, "ok")
        CHAT_CFG["seen"][kind] += 1
        nth = CHAT_CFG["seen"][kind]
        rules = list(CHAT_CFG["rules"])
    if latency:
        time.sleep(latency / 1000.0)
    if mode.startswith("slow-"):
        time.sleep(int(mode[5:]) / 1000.0)
        mode = "ok"
    if mode.startswith("flaky-"):
        mode = "500" if nth <= int(mode[6:]) else "ok"
    if mode == "500":
        return chat_fail(handler, 500, "the fake LLM failed on purpose")
    if mode == "down":
        return chat_fail(handler, 503, "the fake LLM is down", "service_unavailable")
    if mode == "garbage":
        return chat_answer(handler, model, "Sorry, I cannot help with that.", system + user)
    if mode == "malformed":
        return handler.reply_raw(200, b"<html>502 Bad Gateway", "application/json")
    if mode == "close":
        return chat_close(handler)
    if mode != "ok":
        return chat_fail(handler, 400, "unknown scripted mode " + mode, "invalid_request_error")
    for rule in rules:
        if rule.get("kind") != kind:
            continue
        needle = rule.get("contains")
        if needle is not None and str(needle).lower() not in user.lower():
            continue
        reply = rule.get("reply")
        content = reply if isinstance(reply, str) else json.dumps(reply)
        return chat_answer(handler, model, content, system + user)
    return chat_answer(handler, model, json.dumps(default_reply(kind, user)), system + user)


def chat_completions(handler, body):
    try:
        req = json.loads(body)
        model = req.get("model", "")
        messages = req["messages"]
        if not isinstance(messages, list) or not isinstance(model, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        return chat_fail(handler, 400, "bad request body", "invalid_request_error")
    system = "".join(message_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "system")
    users = [message_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    user = users[-1] if users else ""
    kind = task_kind(system)
    start = time.time()
    with CHAT_LOCK:
        CHAT_STATS["calls"][kind] += 1
        CHAT_STATS["in_flight"] += 1
        CHAT_STATS["max_in_flight"] = max(CHAT_STATS["max_in_flight"], CHAT_STATS["in_flight"])
    handler.status_sent = 0

    def done():
        with CHAT_LOCK:
            CHAT_STATS["in_flight"] -= 1
            CHAT_STATS["log"].append({"kind": kind, "start": start, "end": time.time(),
                                      "status": handler.status_sent})

    handler.on_answer = done
    try:
        if model.startswith("fake-"):
            return chat_by_model(handler, req, model, model[5:].split("#", 1)[0], system, user)
        return chat_scripted(handler, model, kind, system, user)
    finally:
        handler.answered()


def control_chat(handler, body):
    try:
        cfg = json.loads(body or b"{}")
        if not isinstance(cfg, dict):
            raise TypeError("the body must be an object")
        rules = cfg.get("rules") or []
        if not isinstance(rules, list) or not all(isinstance(r, dict) and r.get("kind") in KINDS for r in rules):
            raise TypeError("rules: a list of objects with a kind of " + ", ".join(KINDS))
        mode = cfg.get("mode", "ok")
        modes = {k: mode for k in KINDS} if isinstance(mode, str) else dict(mode)
        latency = cfg.get("latency_ms", 0)
        lat = {k: int(latency) for k in KINDS} if isinstance(latency, (int, float)) else \
            {k: int(v) for k, v in dict(latency).items()}
        if not all(isinstance(v, str) for v in modes.values()):
            raise TypeError("mode: a string or an object of strings")
    except (ValueError, TypeError, AttributeError) as e:
        return handler.reply(400, {"error": {"message": "bad control body: %s" % e}})
    with CHAT_LOCK:
        CHAT_CFG.update(chat_cfg_default())
        CHAT_CFG["rules"], CHAT_CFG["mode"], CHAT_CFG["latency"] = rules, modes, lat
    return handler.reply(200, {"ok": True})


def control_reset(handler, body):
    with CHAT_LOCK:
        CHAT_CFG.clear()
        CHAT_CFG.update(chat_cfg_default())
        in_flight = CHAT_STATS["in_flight"]
        CHAT_STATS.clear()
        CHAT_STATS.update(chat_stats_default(in_flight))
    return handler.reply(200, {"ok": True})


def chat_stats():
    with CHAT_LOCK:
        return json.loads(json.dumps(CHAT_STATS))


ROUTES = {"/v1/embeddings": embeddings, "/v1/chat/completions": chat_completions,
          "/control/chat": control_chat, "/control/reset": control_reset}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answered(self):
        """Runs the pending end-of-request hook once, before the answer leaves (so that a client that has its
        answer never sees the request still counted in flight)."""
        hook, self.on_answer = getattr(self, "on_answer", None), None
        if hook:
            hook()

    def reply_raw(self, status, payload, ctype, headers=None):
        self.status_sent = status
        self.answered()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, shutdown)
            self.close_connection = True

    def reply(self, status, obj, headers=None):
        self.reply_raw(status, json.dumps(obj).encode(), "application/json", headers)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/health":
            return self.reply(200, {"ok": True})
        if url.path == "/stats":
            model = parse_qs(url.query).get("model", [""])[0]
            with STATE_LOCK:
                s = dict(STATS.get(model, {"requests": 0, "max_batch": 0, "texts": 0}))
            return self.reply(200, s)
        if url.path == "/stats/chat":
            return self.reply(200, chat_stats())
        return self.reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        key = self.server.cfg.api_key
        path = urlparse(self.path).path
        given = self.headers.get("Authorization") or ""
        if key and not path.startswith("/control/") and given != "Bearer " + key:
            # quotes the key it got, as some servers do: clients must keep it out of their logs
            return self.reply(401, {"error": {"message": "Incorrect API key provided: " + given[7:],
                                              "type": "invalid_request_error"}})
        route = ROUTES.get(path)
        if route is None:
            return self.reply(404, {"error": {"message": "no route " + self.path}})
        return route(self, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--api-key", default="")
    ap.add_argument("--mode", default="ok")
    cfg = ap.parse_args()
    srv = ThreadingHTTPServer((cfg.host, cfg.port), Handler)
    srv.daemon_threads = True
    srv.cfg = cfg
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
