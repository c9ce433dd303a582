"""Shared helpers for the black-box HTTP suite: an HTTP client bound to one server, envelope
assertions written from SPEC.md §0, and small factories that create real records with unique names.

Every assertion helper takes the `requests.Response` and fails with the request and the response
text in the message, so a failure report is a repro on its own.
"""

import json
import re
import socket
import uuid

import requests

TIMEOUT = 20  # seconds, for every HTTP call of the suite

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
ENVELOPE_KEYS = {"status", "code", "data", "message", "errors"}

USER_KEYS = {"id", "name", "description", "created_at", "updated_at"}
AGENT_KEYS = {"id", "name", "description", "created_at", "updated_at"}
SESSION_KEYS = {"id", "user_id", "agent_id", "name", "created_at", "updated_at"}
MESSAGE_KEYS = {"id", "session_id", "role", "content", "created_at", "updated_at"}
KNOWLEDGE_KEYS = {"id", "user_id", "content", "created_at", "updated_at"}
API_KEY_KEYS = {"id", "user_id", "name", "key", "permissions", "created_at", "expires_at"}
RESULT_KEYS = {"id", "content", "score", "type", "role", "created_at", "updated_at", "metadata"}
RESULT_META_KEYS = {"user_id", "agent_id", "session_id", "session_name", "scope", "level", "retrieval"}


def uniq(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def word(prefix="kw"):
    """A made-up alphanumeric token that no other test uses (for BM25 look-ups)."""
    return prefix + uuid.uuid4().hex[:12]


def fake_id():
    return str(uuid.uuid4())


# --------------------------------------------------------------------------------------------
# HTTP client


class Api:
    """requests.Session bound to one server's /api/v1; never follows redirects."""

    def __init__(self, root, headers=None):
        self.root = root.rstrip("/")          # http://127.0.0.1:PORT
        self.base = self.root + "/api/v1"
        self.session = requests.Session()
        if headers:
            self.session.headers.update(headers)

    def request(self, method, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        kw.setdefault("allow_redirects", False)
        url = path if path.startswith("http") else self.base + path
        return self.session.request(method, url, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def with_headers(self, headers):
        return Api(self.root, headers)

    def close(self):
        self.session.close()


def describe(r):
    req = r.request
    body = req.body
    if isinstance(body, bytes):
        body = body[:300]
    elif isinstance(body, str):
        body = body[:300]
    return (f"{req.method} {req.url} body={body!r}\n  -> HTTP {r.status_code} "
            f"{r.headers.get('Content-Type')!r} {r.text[:800]!r}")


# --------------------------------------------------------------------------------------------
# Envelope assertions (SPEC §0.1, §0.2)


def assert_json_ct(r):
    ct = r.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip().lower() == "application/json", \
        f"Content-Type is not application/json: {describe(r)}"


def body_of(r):
    assert_json_ct(r)
    try:
        return r.json()
    except ValueError:
        raise AssertionError(f"body is not JSON: {describe(r)}")


def envelope(r, code):
    """Checks HTTP status == code and the five-key envelope; returns the parsed body."""
    assert r.status_code == code, f"expected HTTP {code}: {describe(r)}"
    body = body_of(r)
    assert isinstance(body, dict), f"body is not an object: {describe(r)}"
    expected = ENVELOPE_KEYS | ({"detail"} if code == 422 else set())
    assert set(body) == expected, f"envelope keys {sorted(body)} != {sorted(expected)}: {describe(r)}"
    assert body["code"] == code, f"code {body['code']} != HTTP {code}: {describe(r)}"
    assert isinstance(body["message"], str) and body["message"], f"empty message: {describe(r)}"
    if code < 400:
        assert body["status"] == "success", describe(r)
        assert body["errors"] is None, describe(r)
        assert isinstance(body["data"], dict), f"data is not an object: {describe(r)}"
    else:
        assert body["status"] == "error", describe(r)
        assert body["data"] is None, f"error with data: {describe(r)}"
        errs = body["errors"]
        assert isinstance(errs, list) and errs, f"errors must be a non-empty list: {describe(r)}"
        for e in errs:
            assert isinstance(e, dict) and set(e) == {"field", "message"}, f"bad errors item {e}: {describe(r)}"
            assert isinstance(e["field"], str) and isinstance(e["message"], str), describe(r)
    return body


def ok(r, code=200, message=None, keys=None):
    """Success envelope; returns data. `keys`: the exact key set of data, when the spec fixes it."""
    body = envelope(r, code)
    if message is not None:
        assert body["message"] == message, f"message {body['message']!r} != {message!r}: {describe(r)}"
    if keys is not None:
        assert set(body["data"]) == set(keys), f"data keys {sorted(body['data'])} != {sorted(keys)}: {describe(r)}"
    return body["data"]


def error(r, code, message=None, field=None, field_message=None):
    """Error envelope; returns the body. `field`: some errors item has this field (and message)."""
    body = envelope(r, code)
    if message is not None:
        assert body["message"] == message, f"message {body['message']!r} != {message!r}: {describe(r)}"
    if field is not None:
        items = [e for e in body["errors"] if e["field"] == field]
        assert items, f"no errors item with field {field!r}: {describe(r)}"
        if field_message is not None:
            assert any(e["message"] == field_message for e in items), \
                f"no errors item {{field:{field!r}, message:{field_message!r}}}: {describe(r)}"
    return body


def _names(field, name):
    return name in [t for t in re.split(r"[^A-Za-z0-9_]+", field) if t]


def invalid(r, field=None):
    """422 validation envelope (SPEC §0.2) naming `field` in an errors item and in a detail loc."""
    body = envelope(r, 422)
    assert body["message"] == "Request validation failed", describe(r)
    detail = body["detail"]
    assert isinstance(detail, list) and detail, f"detail must be a non-empty list: {describe(r)}"
    for d in detail:
        assert isinstance(d, dict) and {"type", "loc", "msg"} <= set(d), f"bad detail item {d}: {describe(r)}"
        assert isinstance(d["type"], str) and isinstance(d["msg"], str) and isinstance(d["loc"], list), describe(r)
    if field is not None:
        assert any(_names(e["field"], field) for e in body["errors"]), \
            f"no errors item names field {field!r}: {describe(r)}"
        assert any(field in [str(x) for x in d["loc"]] for d in detail), \
            f"no detail loc names field {field!r}: {describe(r)}"
    return body


def not_found_route(r):
    assert r.status_code == 404, describe(r)
    assert body_of(r) == {"detail": "Not Found"}, describe(r)


def method_not_allowed(r):
    assert r.status_code == 405, describe(r)
    assert body_of(r) == {"detail": "Method Not Allowed"}, describe(r)


def user_404(r, uid):
    return error(r, 404, f"User with ID '{uid}' not found", field="user_id")


def agent_404(r, aid):
    return error(r, 404, f"Agent with ID '{aid}' not found", field="agent_id")


def session_404(r, sid):
    return error(r, 404, f"Session with ID '{sid}' not found", field="session_id")


def assert_ts(value, what="timestamp"):
    assert isinstance(value, str) and TS_RE.match(value), f"{what} {value!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"


def assert_uuid(value, what="id"):
    assert isinstance(value, str) and UUID_RE.match(value), f"{what} {value!r} is not a UUID string"


def assert_record(rec, keys):
    assert isinstance(rec, dict) and set(rec) == set(keys), f"record keys {sorted(rec)} != {sorted(keys)}: {rec}"
    assert_uuid(rec["id"])
    for k in ("created_at", "updated_at"):
        if k in keys:
            assert_ts(rec[k], k)
    if "created_at" in keys and "updated_at" in keys:
        assert rec["updated_at"] >= rec["created_at"], rec


# --------------------------------------------------------------------------------------------
# Factories: real records with unique names


def create_user(api, name=None, description=None):
    body = {"name": name or uniq("user")}
    if description is not None:
        body["description"] = description
    data = ok(api.post("/users", json=body), 201, "User created successfully", keys={"user"})
    return data["user"]


def create_agent(api, name=None, description=None):
    body = {"name": name or uniq("agent")}
    if description is not None:
        body["description"] = description
    data = ok(api.post("/agents", json=body), 201, "Agent created successfully", keys={"agent"})
    return data["agent"]


def create_session(api, user_id, agent_id, name=None):
    body = {"user_id": user_id, "agent_id": agent_id}
    if name is not None:
        body["name"] = name
    data = ok(api.post("/sessions", json=body), 201, "Session created successfully", keys={"session"})
    return data["session"]


def msgs(*contents, role="user"):
    """[{"role":..., "content":...}] alternating user/assistant when role == "alt"."""
    out = []
    for i, c in enumerate(contents):
        r = role if role != "alt" else ("user" if i % 2 == 0 else "assistant")
        out.append({"role": r, "content": c})
    return out


def add_messages(api, sid, messages):
    r = api.post(f"/sessions/{sid}/messages", json={"messages": messages})
    data = ok(r, 201, "Messages added successfully")
    ids = data["message_ids"]
    assert isinstance(ids, list) and len(ids) == len(messages), f"one id per input: {describe(r)}"
    for i in ids:
        assert_uuid(i, "message id")
    assert len(set(ids)) == len(ids), f"duplicate ids: {describe(r)}"
    return ids


def list_messages(api, sid, **params):
    r = api.get(f"/sessions/{sid}/messages", params=params)
    data = ok(r, 200, "Messages retrieved successfully", keys={"messages"})
    for m in data["messages"]:
        assert_record(m, MESSAGE_KEYS)
        assert m["session_id"] == sid
    return data["messages"]


def list_ids(api, sid, **params):
    return [m["id"] for m in list_messages(api, sid, **params)]


def read_messages(api, sid, ids):
    r = api.post(f"/sessions/{sid}/messages/read", json={"message_ids": ids})
    return ok(r, 200, "Messages read successfully", keys={"messages"})["messages"]


def add_knowledge(api, uid, items):
    r = api.post(f"/users/{uid}/knowledge", json={"knowledge": items})
    data = ok(r, 201, "Knowledge items added successfully", keys={"knowledge_ids"})
    assert len(data["knowledge_ids"]) == len(items), describe(r)
    return data["knowledge_ids"]


def query(api, uid, q, **opts):
    body = {"query": q}
    body.update(opts)
    r = api.post(f"/users/{uid}/query", json=body)
    data = ok(r, 200, keys={"results", "total"})
    check_results(r, data)
    return data["results"]


def check_results(r, data):
    res = data["results"]
    assert isinstance(res, list), describe(r)
    assert data["total"] == len(res), f"total != len(results): {describe(r)}"
    msg = r.json()["message"]
    assert msg == (f"Found {len(res)} results" if res else "No results found"), describe(r)
    scores = []
    for it in res:
        assert set(it) == RESULT_KEYS, f"result keys {sorted(it)} != {sorted(RESULT_KEYS)}: {it}"
        assert isinstance(it["score"], (int, float)) and not isinstance(it["score"], bool), it
        assert 0.0 <= it["score"] <= 1.0, f"score out of [0,1]: {it}"
        scores.append(it["score"])
        assert it["type"] in ("message", "knowledge", "episode", "fact"), it
        md = it["metadata"]
        assert isinstance(md, dict) and RESULT_META_KEYS <= set(md), f"metadata keys {sorted(md)}: {it}"
        assert md["scope"] in (None, "in_session", "cross_session"), it
        assert isinstance(md["retrieval"], dict) and md["retrieval"].get("source") in \
            ("hybrid", "vector", "keyword", "graph"), it
        for k in ("created_at", "updated_at"):
            assert it[k] is None or isinstance(it[k], str), it
    assert scores == sorted(scores, reverse=True), f"results not sorted by score desc: {scores}"


def world(api, agent=None):
    """A fresh user, agent (or the given one) and session."""
    u = create_user(api)
    a = agent or create_agent(api)
    s = create_session(api, u["id"], a["id"])
    return u, a, s


# --------------------------------------------------------------------------------------------
# Raw HTTP over a socket (for keep-alive and oversized bodies)


class RawConn:
    def __init__(self, host, port, timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def read_response(self, head_only=False):
        """Returns (status, headers(lowercased), body bytes). Handles Content-Length and chunked."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        if head_only or status in (204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    return status, headers, body
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_request(method, path, host, body=None, headers=None):
    h = {"Host": host, "Connection": "keep-alive"}
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode("latin-1"), (body or b"")


def jdump(obj):
    return json.dumps(obj).encode()
