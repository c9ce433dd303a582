"""Bad-input battery (issue 8), beyond test_limits.py: pipelined requests on one connection, slow clients
(slowloris: partial headers or bodies must not hold up other clients, and the server closes them after
--conn-timeout), hostile ids and names, query-parameter edge values, unknown methods and malformed
HTTP. Expected answers from SPEC.md; never a 5xx from our code; a request that fails stores nothing."""

import json
import socket
import threading
import time
from urllib.parse import quote

import pytest

from helpers import (RawConn, add_messages, create_user, describe, error, invalid, jdump, list_ids, msgs, ok,
                     raw_request, uniq, word, world)


def read_all(sock, timeout):
    """Everything the server sends until it closes (or timeout); returns (bytes, closed)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out, True
            out += chunk
    except socket.timeout:
        return out, False
    except ConnectionResetError:
        return out, True


def raw_exchange(port, data, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        return read_all(s, timeout)
    finally:
        s.close()


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0].decode("latin-1")
    return int(line.split()[1]) if line.startswith("HTTP/1.") else None


# ---------------------------------------------------------------------------------------------
# Pipelining


def test_pipelined_requests_are_answered_in_order(server, api):
    host = f"127.0.0.1:{server.port}"
    name = uniq("pipe")
    reqs = [raw_request("GET", "/api/v1/health", host),
            raw_request("POST", "/api/v1/users", host, jdump({"name": name})),
            raw_request("GET", f"/api/v1/users?name={name}", host),
            raw_request("POST", "/api/v1/users", host, b'{"name": '),          # not JSON: 422
            raw_request("GET", "/api/v1/nope", host),                          # 404
            raw_request("DELETE", "/api/v1/health", host),                     # 405
            raw_request("POST", "/api/v1/users", host, jdump({"name": name})),  # taken: 400
            raw_request("GET", "/api/v1/health", host, headers={"Connection": "close"})]
    c = RawConn("127.0.0.1", server.port)
    try:
        c.send(b"".join(h + b for h, b in reqs))  # all of them in one write
        got = [c.read_response() for _ in reqs]
        rest, closed = read_all(c.sock, 5)
    finally:
        c.close()
    assert [g[0] for g in got] == [200, 201, 200, 422, 404, 405, 400, 200], [(g[0], g[2][:80]) for g in got]
    created = json.loads(got[1][2])["data"]["user"]
    assert json.loads(got[2][2])["data"]["users"] == [created]  # the third request saw the second's write
    assert json.loads(got[6][2])["message"] == f"User with name '{name}' already exists"
    assert rest == b"" and closed, "the server must close after 'Connection: close' and send nothing more"
    assert [u["name"] for u in ok(api.get("/users"))["users"]].count(name) == 1


def test_pipelined_writes_split_at_odd_boundaries(server, api):
    """Three adds pipelined and sent in 7-byte pieces: three rounds, in order, nothing lost or merged."""
    u, a, s = world(api)
    host = f"127.0.0.1:{server.port}"
    w = word()
    data = b"".join(h + b for h, b in (raw_request("POST", f"/api/v1/sessions/{s['id']}/messages", host,
                                                   jdump({"messages": msgs(f"{w} {i}")})) for i in range(3)))
    c = RawConn("127.0.0.1", server.port)
    try:
        for k in range(0, len(data), 7):
            c.send(data[k:k + 7])
        got = [c.read_response() for _ in range(3)]
    finally:
        c.close()
    assert [g[0] for g in got] == [201, 201, 201]
    ids = [json.loads(g[2])["data"]["message_ids"][0] for g in got]
    assert list_ids(api, s["id"], order="asc") == ids


def test_transfer_encoding_wins_over_content_length(server, api):
    """A request with both headers is read as chunked (RFC 9112 §6.1), so the bytes after it are the next
    request — there is no way to smuggle a request past the parser."""
    name = uniq("smug")
    body = json.dumps({"name": name}).encode()
    host = f"127.0.0.1:{server.port}"
    data = (f"POST /api/v1/users HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n").encode() + body + \
        b"\r\n0\r\n\r\n" + raw_request("GET", "/api/v1/health", host, headers={"Connection": "close"})[0]
    resp, closed = raw_exchange(server.port, data)
    assert resp.count(b"HTTP/1.1 ") == 2 and status_of(resp) == 201, resp[:400]
    assert b"Server is healthy" in resp
    assert ok(api.get("/users", params={"name": name}))["users"][0]["name"] == name


# ---------------------------------------------------------------------------------------------
# Slow clients


@pytest.fixture(scope="module")
def slow_server(module_spawn):
    # few worker threads, so a server that gave each slow client a thread would visibly stall
    return module_spawn("--conn-timeout", "2", "--threads", "2", "--embedder", "hash", name="slowloris")


def _slow_openers(port, host, name):
    body = jdump({"name": name})
    return {
        "nothing sent": b"",
        "half a request line": b"GET /api/v1/hea",
        "headers without their end": f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nX-Slow: 1\r\n".encode(),
        "half a body": (f"POST /api/v1/users HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2],
        "half a chunked body": (f"POST /api/v1/users HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                                f"Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n").encode() + body[:5],
        "keep-alive, then silence": raw_request("GET", "/api/v1/health", host)[0],
    }


def test_slow_clients_do_not_block_others_and_are_timed_out(slow_server):
    srv = slow_server
    host = f"127.0.0.1:{srv.port}"
    name = uniq("slow")
    openers = _slow_openers(srv.port, host, name)
    conns = []
    for rep in range(10):  # 60 slow connections against 2 worker threads
        for kind, data in openers.items():
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            if data:
                s.sendall(data)
            conns.append((kind, s, time.monotonic()))
    try:
        a = srv.api()
        worst = 0.0
        for i in range(20):
            t0 = time.monotonic()
            assert a.get("/health").status_code == 200
            u = ok(a.post("/users", json={"name": uniq("fast")}), 201)["user"]
            ok(a.get(f"/users/{u['id']}"))
            worst = max(worst, time.monotonic() - t0)
        # a stalled server would make these wait for the 2 s timeout (or forever): well under it
        assert worst < 1.5, f"normal requests took up to {worst:.2f}s beside 60 slow clients"
        # every slow client is closed by the server within the timeout (+ slack), with at most a 4xx
        for kind, s, t_open in conns:
            data, closed = read_all(s, max(0.5, 8 - (time.monotonic() - t_open)))
            assert closed, f"{kind}: the server kept a silent connection open past --conn-timeout 2"
            if kind == "keep-alive, then silence":
                assert status_of(data) == 200, data[:200]
            elif data:
                assert 400 <= status_of(data) < 500, f"{kind}: {data[:200]!r}"
    finally:
        for _k, s, _t in conns:
            s.close()
    # the half-sent user was never created (a new connection: `a` sat idle past --conn-timeout meanwhile, and
    # the server may close it just as a request goes out on it)
    assert srv.api().get("/users", params={"name": name}).status_code == 404
    assert srv.alive


def test_trickling_client_is_served_and_does_not_block_others(slow_server):
    """A client that sends one byte at a time (each gap under the timeout) is slow but alive: it gets its
    answer, and others are served meanwhile."""
    srv = slow_server
    host = f"127.0.0.1:{srv.port}"
    name = uniq("trickle")
    head, body = raw_request("POST", "/api/v1/users", host, jdump({"name": name}))
    data = head + body
    result = {}

    def trickle():
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        try:
            step = max(1, len(data) // 25)
            for k in range(0, len(data), step):  # ~25 pieces, 0.15 s apart: ~4 s in all, twice the timeout
                s.sendall(data[k:k + step])
                time.sleep(0.15)
            s.settimeout(10)
            result["resp"] = s.recv(65536)
        finally:
            s.close()
    t = threading.Thread(target=trickle)
    t.start()
    a = srv.api()
    n = 0
    while t.is_alive() and n < 400:
        assert a.get("/health", timeout=5).status_code == 200
        n += 1
        time.sleep(0.01)
    t.join(20)
    assert status_of(result.get("resp", b"")) == 201, result
    assert ok(a.get("/users", params={"name": name}))["users"][0]["name"] == name
    assert n >= 10, "others were not served while the trickle went on"


# ---------------------------------------------------------------------------------------------
# Hostile ids and names

HOSTILE = ["' OR '1'='1", "1; DROP TABLE users; --", "%", "_", "*", "%25", "...", "\\", "\\x00",
           "null", "undefined", "-1", "1e309", "{}", "[]", "<script>alert(1)</script>", "ü", "\U0001F600", "\u202e",
           "a" * 600, " ", "\t", "id with spaces", "$where", "${jndi:ldap://127.0.0.1/a}", "%s%s%n"]


@pytest.fixture(scope="module")
def owner(server):
    """A real user, for the routes that address a record inside one (its facts)."""
    client = server.api()
    yield create_user(client)["id"]
    client.close()


@pytest.mark.parametrize("bad", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_ids_are_404_on_every_id_route(api, owner, bad):
    p = quote(bad, safe="")
    if "/" in bad:  # decoded into a path separator: another (unknown) route, see the next test
        assert api.get(f"/users/{p}").status_code == 404
        return
    uid = owner
    # the message names the id as sent (long ids may be shortened, but the answer is still the 404)
    for r, what, field in ((api.get(f"/users/{p}"), "User", "user_id"),
                           (api.put(f"/users/{p}", json={"description": "x"}), "User", "user_id"),
                           (api.delete(f"/users/{p}"), "User", "user_id"),
                           (api.get(f"/users/{p}/knowledge"), "User", "user_id"),
                           (api.post(f"/users/{p}/query", json={"query": "x"}), "User", "user_id"),
                           (api.get(f"/users/{p}/api-keys"), "User", "user_id"),
                           (api.get(f"/users/{p}/facts"), "User", "user_id"),
                           (api.get(f"/users/{p}/facts/{p}"), "User", "user_id"),
                           (api.delete(f"/users/{p}/facts/{p}"), "User", "user_id"),
                           (api.get(f"/users/{p}/episodes"), "User", "user_id"),
                           (api.get(f"/users/{uid}/facts/{p}"), "Fact", "fact_id"),
                           (api.delete(f"/users/{uid}/facts/{p}"), "Fact", "fact_id"),
                           (api.get(f"/agents/{p}"), "Agent", "agent_id"),
                           (api.delete(f"/agents/{p}"), "Agent", "agent_id"),
                           (api.get(f"/sessions/{p}"), "Session", "session_id"),
                           (api.get(f"/sessions/{p}/messages"), "Session", "session_id"),
                           (api.post(f"/sessions/{p}/messages", json={"messages": msgs("x")}), "Session", "session_id"),
                           (api.get(f"/sessions/{p}/chunks"), "Session", "session_id"),
                           (api.get(f"/rounds/{p}/chunks"), "Round", "round_id")):
        body = error(r, 404, field=field)
        msg = f"{what} with ID '{bad}' not found"
        if len(msg) < 400:
            assert body["message"] == msg, describe(r)
        else:
            assert body["message"].startswith(f"{what} with ID '{bad[:100]}"), describe(r)
    for path, params in (("/sessions", {"user_id": bad}), ("/sessions", {"agent_id": bad}),
                         ("/chunks/stats", {"user_id": bad}), ("/chunks/stats", {"session_id": bad}),
                         (f"/users/{uid}/episodes", {"session_id": bad})):
        r = api.get(path, params=params)
        assert r.status_code == 404, describe(r)


@pytest.mark.parametrize("bad", ["a/b", "../health", "%2e%2e", "a%2Fb", "/"])
def test_ids_with_slashes_never_reach_another_route(api, bad):
    p = quote(bad, safe="%")
    for path in (f"/users/{p}", f"/sessions/{p}/messages", f"/users/{p}/knowledge"):
        r = api.get(path)
        assert r.status_code == 404, describe(r)
        assert r.json() in ({"detail": "Not Found"},) or r.json()["code"] == 404, describe(r)


HOSTILE_NAMES = ["' OR '1'='1", "x'); DROP TABLE users; --", "%", "_", "100%_sure", "\\", "\"quoted\"",
                 "<b>bold</b>", "tab\there", "new\nline", "\u202eright-to-left", "\U0001F600 emoji", "\x01\x7f control",
                 "  spaces  "]


def test_hostile_names_round_trip_and_are_matched_exactly(api):
    pre = uniq("hn")
    made = {}
    for i, n in enumerate(HOSTILE_NAMES):
        name = f"{pre}{i}{n}"
        u = ok(api.post("/users", json={"name": name}), 201)["user"]
        assert u["name"] == name
        made[name] = u
        got = ok(api.get("/users", params={"name": name}), 200, "User retrieved successfully")["users"]
        assert got == [u], describe(api.get("/users", params={"name": name}))
    # a name lookup is an equality, never a pattern: wildcards and prefixes find nothing
    for probe in (f"{pre}%", f"{pre}_", f"{pre}1_", f"{pre}*", pre, f"{pre}4%_sure", f"{pre}0' OR '1'='1' --"):
        if probe in made:
            continue
        r = api.get("/users", params={"name": probe})
        error(r, 404, f"User with name '{probe}' not found", field="name")
    # sessions and agents take the same names
    a = ok(api.post("/agents", json={"name": f"{pre}%"}), 201)["agent"]
    error(api.get("/agents", params={"name": f"{pre}_"}), 404, f"Agent with name '{pre}_' not found")
    uid = next(iter(made.values()))["id"]
    s = ok(api.post("/sessions", json={"user_id": uid, "agent_id": a["id"], "name": "%"}), 201)["session"]
    error(api.get("/sessions", params={"name": "_", "user_id": uid}), 404)
    assert ok(api.get("/sessions", params={"name": "%", "user_id": uid}))["sessions"] == [s]


# ---------------------------------------------------------------------------------------------
# Query parameter edge values


@pytest.fixture
def one_msg(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("one", "two", "three"))
    return s["id"], ids


@pytest.mark.parametrize("limit,n", [("1", 1), ("00002", 2), ("+2", 2), ("100", 3), ("101", 3), ("2147483648", 3),
                                      ("99999999999999999999999", 3)])
def test_list_limit_edges_that_are_integers(api, one_msg, limit, n):
    sid, ids = one_msg
    assert len(ok(api.get(f"/sessions/{sid}/messages", params={"limit": limit}))["messages"]) == n


@pytest.mark.parametrize("q,field,message", [
    ("limit=%205", "limit", "Limit must be an integer"),
    ("limit=5%20", "limit", "Limit must be an integer"), ("limit=0x10", "limit", "Limit must be an integer"),
    ("limit=1e2", "limit", "Limit must be an integer"), ("limit=-0", "limit", "Limit must be greater than 0"),
    ("limit=%D9%A3", "limit", "Limit must be an integer"), ("limit=-99999999999999999999", "limit", None),
    ("sort_by=", "sort_by", "sort_by must be one of: timestamp, id"),
    ("sort_by=TIMESTAMP", "sort_by", "sort_by must be one of: timestamp, id"),
    ("sort_by=timestamp%00", "sort_by", None), ("order=", "order", "order must be one of: asc, desc"),
    ("order=ASC", "order", "order must be one of: asc, desc"), ("order=asc%20", "order", None),
    ("buffer_only=", "buffer_only", "buffer_only must be 'true' or 'false'"),
    ("buffer_only=1", "buffer_only", "buffer_only must be 'true' or 'false'"),
    ("buffer_only=yes", "buffer_only", "buffer_only must be 'true' or 'false'"),
])
def test_list_parameter_edges_are_400(api, one_msg, q, field, message):
    sid, _ids = one_msg
    r = api.get(f"/sessions/{sid}/messages?{q}")
    error(r, 400, f"Invalid {field} parameter", field=field, field_message=message)


def test_repeated_and_unknown_parameters(api, one_msg):
    sid, ids = one_msg
    r = api.get(f"/sessions/{sid}/messages?limit=1&limit=2")
    assert len(ok(r)["messages"]) in (1, 2), describe(r)
    r = api.get(f"/sessions/{sid}/messages?limit=1&limit=abc")
    assert r.status_code in (200, 400), describe(r)
    assert len(ok(api.get(f"/sessions/{sid}/messages?colour=blue&limit=3&&=&x"))["messages"]) == 3
    # a parameter named twice in different case is not the same parameter
    assert len(ok(api.get(f"/sessions/{sid}/messages?LIMIT=0&Limit=abc"))["messages"]) == 3


@pytest.mark.parametrize("q,field", [("limit=0", "limit"), ("limit=abc", "limit"), ("sort_by=ID", "sort_by"),
                                     ("sort_by=timestamp", "sort_by"), ("order=up", "order"),
                                     ("store_type=hybrid", "store_type"), ("store_type=", "store_type")])
def test_chunk_parameter_edges_are_400(api, one_msg, q, field):
    sid, _ids = one_msg
    error(api.get(f"/sessions/{sid}/chunks?{q}"), 400, f"Invalid {field} parameter", field=field)


@pytest.mark.parametrize("top_k,n", [(0, 3), (-1, 3), (-9000000000000000, 3), (1, 1), (2.0, 2), ("2", 2),
                                     (" 1 ", 1), (1000, 3), (None, 3)])
def test_query_top_k_edges(api, top_k, n):
    u, a, s = world(api)
    w = word()
    add_messages(api, s["id"], msgs(f"{w} a", f"{w} b", f"{w} c"))
    res = ok(api.post(f"/users/{u['id']}/query", json={"query": w, "store_type": "keyword", "top_k": top_k}))
    assert len(res["results"]) == n


@pytest.mark.parametrize("top_k", [1001, 1.5, "abc", "", True, [5], {"n": 5}, 1e300, 2 ** 64, -2 ** 63])
def test_query_top_k_bad_values_are_422(api, top_k):
    u = create_user(api)
    invalid(api.post(f"/users/{u['id']}/query", json={"query": "x", "top_k": top_k}), "top_k")


@pytest.mark.parametrize("body,field", [
    ('{"query": "x", "top_k": NaN}', None), ('{"query": "x", "top_k": Infinity}', None),
    ('{"query": "x", "top_k": 1e999}', None), ('{"query": "x", "top_k": -}', None),
    ('{"query": "x", "store_type": "VECTOR"}', "store_type"), ('{"query": "x", "store_type": ""}', "store_type"),
    ('{"query": "x", "explain": "maybe"}', "explain"), ('{"query": "x", "session_id": 5}', "session_id"),
    ('{"query": ""}', "query"), ('{"query": null}', "query"), ('{"query": "x", "query": 5}', None),
])
def test_query_body_edges_are_422(api, body, field):
    u = create_user(api)
    r = api.post(f"/users/{u['id']}/query", data=body, headers={"Content-Type": "application/json"})
    if r.status_code == 200:  # a duplicated key: either value may win, but the answer is consistent
        assert field is None and body.count('"query"') == 2, describe(r)
        return
    invalid(r, field)


# ---------------------------------------------------------------------------------------------
# Unknown methods and malformed HTTP


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "get", "Post", "OPTIONS", "TRACE", "CONNECT", "PATCH", "M-SEARCH"])
def test_unknown_methods_are_405_on_known_paths_and_404_elsewhere(server, method):
    host = f"127.0.0.1:{server.port}"
    for path, want in (("/api/v1/health", 405), ("/api/v1/users", 405), ("/api/v1/nope", 404)):
        resp, _ = raw_exchange(server.port, f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                               .encode())
        assert status_of(resp) == want, f"{method} {path}: {resp[:300]!r}"
        body = resp.split(b"\r\n\r\n", 1)[1]
        assert json.loads(body) == {"detail": "Method Not Allowed" if want == 405 else "Not Found"}
        assert b"content-type: application/json" in resp.lower()


def test_head_is_get_without_a_body(server, api):
    host = f"127.0.0.1:{server.port}"
    resp, _ = raw_exchange(server.port, f"HEAD /api/v1/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                           .encode())
    assert status_of(resp) == 200 and resp.endswith(b"\r\n\r\n"), resp
    u = create_user(api)
    resp, _ = raw_exchange(server.port, f"HEAD /api/v1/users/{u['id']}/query HTTP/1.1\r\nHost: {host}\r\n"
                           "Connection: close\r\n\r\n".encode())
    assert status_of(resp) == 405, resp


MALFORMED = {
    # name: (request bytes, acceptable statuses; None = the server may close without an answer)
    "garbage line": (b"GARBAGE\r\n\r\n", {400, None}),
    "HTTP/0.9 style": (b"GET /api/v1/health\r\n\r\n", {400}),
    "header without colon": (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nBadHeader\r\n\r\n", {400}),
    "negative Content-Length": (b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}", {400}),
    "overflowing Content-Length": (b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999"
                                   b"\r\n\r\n{}", {400, 413}),
    "bad chunk size": (b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
                       {400}),
    "header over the memory limit": (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
                                     {431, 413, 400}),
    "URL over the memory limit": (b"GET /api/v1/users/" + b"a" * 150000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                                  {414, 431, 400}),
    "control byte in the path": (b"GET /api/v1/he\x01alth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404, 400}),
    "dot segments": (b"GET /api/v1/../v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404, 200}),
    "absolute form": (b"GET http://x/api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404, 200, 400}),
    "asterisk form": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404, 405, 400}),
    # the only 5xx: libmicrohttpd's protocol answer to a version it does not speak
    "HTTP/9.9": (b"GET /api/v1/health HTTP/9.9\r\nHost: x\r\n\r\n", {505}),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_http_gets_a_4xx_and_the_server_stays_up(server, api, name):
    data, allowed = MALFORMED[name]
    resp, _closed = raw_exchange(server.port, data, timeout=5)
    st = status_of(resp) if resp else None
    assert st in allowed, f"{name}: {resp[:300]!r}"
    assert api.get("/health").status_code == 200


def test_expect_100_continue(server, api):
    name = uniq("expect")
    body = jdump({"name": name})
    host = f"127.0.0.1:{server.port}"
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(f"POST /api/v1/users HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 100"), first
        s.sendall(body)
        resp, _ = read_all(s, 10)
    finally:
        s.close()
    resp = first.split(b"\r\n\r\n", 1)[1] + resp
    assert status_of(resp) == 201, resp
    assert ok(api.get("/users", params={"name": name}))["users"][0]["name"] == name


def test_failed_requests_of_the_battery_stored_nothing(api):
    """The bad bodies above against one session: it stays empty."""
    u, a, s = world(api)
    sid = s["id"]
    for raw in (b'{"messages": [{"role": "user", "content": "a"}', b'{"messages": [{"role": "user", "content": "a"}]}}',
                b'{"messages": [{"role": "user", "content": "a"}, {"role": "x", "content": "b"}]}',
                b'{"messages": [{"role": "user", "content": "a"}, 5]}', b'{"messages": "a"}'):
        r = api.post(f"/sessions/{sid}/messages", data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, describe(r)
    assert list_ids(api, sid) == []
    assert ok(api.get(f"/users/{u['id']}/knowledge"))["knowledge"] == []


# ---------------------------------------------------------------------------------------------
# Malformed and hostile JSON on every route that reads a body

HOSTILE_BODIES = {
    "not-json": b"not json",
    "truncated": b'{"name": "x", "messages": [',
    "trailing-data": b'{"a": 1}{"b": 2}',
    "nul-after": b"{}\x00",
    "raw-nul-in-string": b'{"name": "a\x00b"}',
    "raw-control-in-string": b'{"name": "a\x01b"}',
    "bom-then-array": b"\xef\xbb\xbf[]",
    "two-boms": b"\xef\xbb\xbf\xef\xbb\xbf{}",
    "invalid-utf8-bytes": b"\xff\xfe\xfd",
    "single-quotes": b"{'name': 'x'}",
    "array-root": b"[]",
    "number-root": b"1e999999",
    "string-root": b'"x"',
    "null-root": b"null",
    "deep-arrays": b"[" * 100000,
    "deep-objects": b'{"a":' * 50000 + b"1" + b"}" * 50000,
    "long-key-unterminated": b'{"' + b"k" * 300000,
    "only-whitespace": b" \t\r\n" * 50000,
    "bad-escape": b'{"name": "\\x41"}',
    "short-unicode-escape": b'{"name": "\\u12"}',
    "nan": b'{"top_k": NaN}',
}

BODY_ROUTES = [
    ("POST", "/users"), ("PUT", "/users/{uid}"),
    ("POST", "/agents"), ("PUT", "/agents/{aid}"),
    ("POST", "/sessions"), ("PUT", "/sessions/{sid}"),
    ("POST", "/sessions/{sid}/messages"), ("PUT", "/sessions/{sid}/messages"),
    ("DELETE", "/sessions/{sid}/messages"), ("POST", "/sessions/{sid}/messages/read"),
    ("POST", "/users/{uid}/knowledge"), ("PUT", "/users/{uid}/knowledge"),
    ("DELETE", "/users/{uid}/knowledge"), ("POST", "/users/{uid}/knowledge/read"),
    ("POST", "/users/{uid}/query"), ("POST", "/users/{uid}/api-keys"),
]


@pytest.fixture(scope="module")
def body_world(server):
    from helpers import Api, add_knowledge, create_agent, create_session
    api = Api(server.root)
    u = create_user(api)
    a = create_agent(api)
    s = create_session(api, u["id"], a["id"])
    mids = add_messages(api, s["id"], msgs("hostile json target"))
    kids = add_knowledge(api, u["id"], ["hostile json knowledge"])
    snap = snapshot(api, u, a, s)
    yield {"uid": u["id"], "aid": a["id"], "sid": s["id"], "u": u, "a": a, "s": s, "mids": mids, "kids": kids,
           "snap": snap}
    api.close()


def snapshot(api, u, a, s):
    """Everything a failed request on one of BODY_ROUTES could have touched."""
    return {
        "user": ok(api.get(f"/users/{u['id']}"))["user"],
        "agent": ok(api.get(f"/agents/{a['id']}"))["agent"],
        "session": ok(api.get(f"/sessions/{s['id']}"))["session"],
        "messages": ok(api.get(f"/sessions/{s['id']}/messages", params={"limit": 100}))["messages"],
        "knowledge": ok(api.get(f"/users/{u['id']}/knowledge"))["knowledge"],
        "keys": ok(api.get(f"/users/{u['id']}/api-keys"))["api_keys"],
        "users": len(ok(api.get("/users"))["users"]),
        "agents": len(ok(api.get("/agents"))["agents"]),
        "sessions": len(ok(api.get("/sessions"))["sessions"]),
    }


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
@pytest.mark.parametrize("method,path", BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
def test_hostile_json_bodies_are_422_on_every_body_route(api, body_world, method, path, name):
    r = api.request(method, path.format(**body_world), data=HOSTILE_BODIES[name],
                    headers={"Content-Type": "application/json"})
    invalid(r)


# write routes that read no body (a body sent to them is ignored)
NO_BODY_ROUTES = {("DELETE", "/users/{}"), ("DELETE", "/agents/{}"), ("DELETE", "/sessions/{}"),
                  ("DELETE", "/users/{}/api-keys/{}"), ("DELETE", "/users/{}/facts/{}")}


def test_body_routes_cover_every_write_route():
    """Fails when the server gains a POST/PUT/DELETE route that is in neither BODY_ROUTES nor NO_BODY_ROUTES."""
    import re
    from pathlib import Path
    src = (Path(__file__).resolve().parents[2] / "src" / "api" / "routes.c").read_text()
    server = {(m, p) for m, p in re.findall(r'\{\s*"(POST|PUT|DELETE)",\s*V1\s+"([^"]+)"', src)}
    assert len(server) >= 15, f"could not read the route table of src/api/routes.c: {sorted(server)}"
    listed = {(m, re.sub(r"\{[a-z]+\}", "{}", p)) for m, p in BODY_ROUTES}
    missing = sorted(server - listed - NO_BODY_ROUTES)
    assert not missing, f"write routes the hostile-JSON battery does not know: {missing} (add them to " \
                        f"BODY_ROUTES or NO_BODY_ROUTES)"


def test_hostile_json_bodies_stored_nothing(api, body_world):
    """Runs after the parametrized battery above (file order): nothing of the world changed."""
    w = body_world
    assert snapshot(api, w["u"], w["a"], w["s"]) == w["snap"]


def test_a_leading_utf8_bom_is_ignored(api):
    """RFC 8259 §8.1 lets a parser ignore a BOM (Python's json does, on bytes): the object after it counts."""
    u = create_user(api)
    r = api.put(f"/users/{u['id']}", data=b"\xef\xbb\xbf" + jdump({"description": "after a bom"}),
                headers={"Content-Type": "application/json"})
    assert ok(r)["user"]["description"] == "after a bom"
