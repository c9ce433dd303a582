#!/usr/bin/python3
"""A small fake of the OpenAI HTTP API for tests (standard library only).

Usage: fake_openai.py [--port 0] [--host 127.0.0.1] [--dim 8] [--api-key KEY] [--mode ok]
Prints "PORT <n>" on standard output once it listens, then serves until killed.

Routes live in ROUTES (path -> handler), so other endpoints (e.g. /v1/chat/completions) can be added
beside /v1/embeddings. GET /stats?model=NAME answers {"requests": n, "max_batch": m, "texts": t} for the
requests made with that model name; GET /health answers {"ok": true}.

Failure modes are chosen per request by the model name ("fake-<mode>[#anything]": the part after '#' only
makes the name unique so that each test has its own counters), or for every request by --mode:
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
With --api-key set, a request without "Authorization: Bearer <key>" gets HTTP 401.
"""
import argparse
import hashlib
import json
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


ROUTES = {"/v1/embeddings": embeddings}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply_raw(self, status, payload, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def reply(self, status, obj):
        self.reply_raw(status, json.dumps(obj).encode(), "application/json")

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/health":
            return self.reply(200, {"ok": True})
        if url.path == "/stats":
            model = parse_qs(url.query).get("model", [""])[0]
            with STATE_LOCK:
                s = dict(STATS.get(model, {"requests": 0, "max_batch": 0, "texts": 0}))
            return self.reply(200, s)
        return self.reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        key = self.server.cfg.api_key
        if key and self.headers.get("Authorization") != "Bearer " + key:
            return self.reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        route = ROUTES.get(urlparse(self.path).path)
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
