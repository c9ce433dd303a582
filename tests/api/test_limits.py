"""SPEC §0: conventions for every route (trailing slash, 404/405 bodies, JSON everywhere, envelope,
keep-alive), §0.2 the 422 format and §0.3 limits and bad input — each failing request is followed by
a check that nothing was stored."""

import json
import statistics
import threading
import time

import pytest

from helpers import (RawConn, add_messages, agent_404, create_agent, create_session, create_user, describe, envelope,
                     error, invalid, jdump, list_ids, method_not_allowed, msgs, not_found_route, ok,
                     query, raw_request, session_404, uniq, user_404, word, world)

MIB = 1048576


def user_by_name_status(api, name):
    return api.get("/users", params={"name": name}).status_code


# ---------------------------------------------------------------------------------------------
# Trailing slash, unknown paths, wrong methods


@pytest.fixture
def full_world(api):
    u, a, s = world(api)
    ids = add_messages(api, s["id"], msgs("hello trailing slash"))
    rid = "round-id-unavailable"  # only the rounds route fails if chunks are broken
    try:
        rid = api.get(f"/sessions/{s['id']}/chunks").json()["data"]["chunks"][0]["metadata"]["round_id"]
    except Exception:
        pass
    return {"uid": u["id"], "aid": a["id"], "sid": s["id"], "mid": ids[0], "rid": rid}


GET_ROUTES = [
    ("/health", None),
    ("/users", None),
    ("/agents", None),
    ("/sessions", None),
    ("/users/{uid}", None),
    ("/agents/{aid}", None),
    ("/sessions/{sid}", None),
    ("/sessions", {"user_id": "{uid}"}),
    ("/sessions/{sid}/messages", None),
    ("/users/{uid}/knowledge", None),
    ("/users/{uid}/api-keys", None),
    ("/sessions/{sid}/chunks", None),
    ("/rounds/{rid}/chunks", None),
    ("/chunks/stats", {"user_id": "{uid}"}),
]


@pytest.mark.parametrize("path,params", GET_ROUTES, ids=[p for p, _ in GET_ROUTES])
def test_get_routes_answer_with_and_without_trailing_slash(api, full_world, path, params):
    p = path.format(**full_world)
    prm = {k: v.format(**full_world) for k, v in (params or {}).items()}
    r1 = api.get(p, params=prm)
    r2 = api.get(p + "/", params=prm)
    assert r1.status_code == 200, describe(r1)
    assert r2.status_code == 200, f"trailing slash (no redirect expected): {describe(r2)}"
    b1, b2 = envelope(r1, 200), envelope(r2, 200)
    assert b1["message"] == b2["message"]


def test_write_routes_answer_with_trailing_slash(api):
    agent = ok(api.post("/agents/", json={"name": uniq("agent")}), 201)["agent"]
    user = ok(api.post("/users/", json={"name": uniq("user")}), 201)["user"]
    uid, aid = user["id"], agent["id"]
    sess = ok(api.post("/sessions/", json={"user_id": uid, "agent_id": aid}), 201)["session"]
    sid = sess["id"]
    ok(api.put(f"/users/{uid}/", json={"description": "d"}), 200, "User updated successfully")
    ok(api.put(f"/agents/{aid}/", json={"description": "d"}), 200, "Agent updated successfully")
    ok(api.put(f"/sessions/{sid}/", json={"name": uniq("s")}), 200, "Session updated successfully")
    w = word()
    ids = ok(api.post(f"/sessions/{sid}/messages/", json={"messages": msgs(w)}), 201)["message_ids"]
    ok(api.post(f"/sessions/{sid}/messages/read/", json={"message_ids": ids}), 200)
    ok(api.put(f"/sessions/{sid}/messages/", json={"message_ids": ids, "new_messages": msgs(w + " x")}), 200)
    ok(api.post(f"/users/{uid}/query/", json={"query": w}), 200)
    kids = ok(api.post(f"/users/{uid}/knowledge/", json={"knowledge": ["k1"]}), 201)["knowledge_ids"]
    ok(api.post(f"/users/{uid}/knowledge/read/", json={"knowledge_ids": kids}), 200)
    ok(api.put(f"/users/{uid}/knowledge/", json={"knowledge_ids": kids, "new_knowledge": ["k2"]}), 200)
    ok(api.delete(f"/users/{uid}/knowledge/", json={"knowledge_ids": kids}), 200)
    key = ok(api.post(f"/users/{uid}/api-keys/", json={"name": "k"}), 201)["api_key"]
    ok(api.delete(f"/users/{uid}/api-keys/{key['id']}/"), 200, "API key deleted successfully")
    ok(api.delete(f"/sessions/{sid}/messages/", json={"message_ids": ids}), 200)
    ok(api.delete(f"/sessions/{sid}/"), 200, "Session deleted successfully")
    ok(api.delete(f"/agents/{aid}/"), 200, "Agent deleted successfully")
    r = api.delete(f"/users/{uid}/")
    assert r.status_code == 204 and r.content == b"", describe(r)


@pytest.mark.parametrize("path", [
    "/api/v1/nope", "/api/v1/users/x/y/z", "/api/v2/health", "/", "/api", "/api/v1",
    "/api/v1/sessions/abc/messages/read/extra", "/api/v1/userss", "/API/V1/HEALTH",
])
def test_unknown_path_is_404_not_found(api, path):
    for method in ("GET", "POST", "DELETE"):
        r = api.request(method, api.root + path, json={} if method == "POST" else None)
        not_found_route(r)


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/health"), ("POST", "/health"),
    ("PATCH", "/users"), ("PUT", "/users"), ("DELETE", "/users"),
    ("POST", "/users/{uid}"), ("PATCH", "/users/{uid}"),
    ("PUT", "/agents"), ("POST", "/agents/{aid}"),
    ("PUT", "/sessions"), ("POST", "/sessions/{sid}"),
    ("PATCH", "/sessions/{sid}/messages"),
    ("GET", "/sessions/{sid}/messages/read"), ("DELETE", "/sessions/{sid}/messages/read"),
    ("GET", "/users/{uid}/query"), ("DELETE", "/users/{uid}/query"),
    ("PATCH", "/users/{uid}/knowledge"), ("GET", "/users/{uid}/knowledge/read"),
    ("PUT", "/users/{uid}/api-keys"), ("GET", "/users/{uid}/api-keys/somekey"),
    ("POST", "/sessions/{sid}/chunks"), ("POST", "/chunks/stats"),
])
def test_known_path_wrong_method_is_405(api, full_world, method, path):
    p = path.format(**full_world)
    method_not_allowed(api.request(method, p, json={}))
    method_not_allowed(api.request(method, p + "/", json={}))


def test_unknown_ids_are_404_never_500(api):
    for bad in ("not-a-uuid", "x" * 300, "00000000-0000-0000-0000-000000000000", "a.b", "0"):
        user_404(api.get(f"/users/{bad}"), bad)
        agent_404(api.get(f"/agents/{bad}"), bad)
        session_404(api.get(f"/sessions/{bad}"), bad)
        session_404(api.get(f"/sessions/{bad}/messages"), bad)
        user_404(api.get(f"/users/{bad}/knowledge"), bad)
        user_404(api.post(f"/users/{bad}/query", json={"query": "x"}), bad)


def test_percent_encoded_nul_never_truncates_paths_or_parameters(api):
    """%00 in a path or a query value must not cut the string short and reach another route or record."""
    u, a, s = world(api)
    for path in (f"/users/{u['id']}%00junk", f"/users/{u['id']}%00/knowledge", "/users/%00",
                 f"/agents/{a['id']}%00", f"/sessions/{s['id']}%00", "/sessions/%00/messages", "/health%00/x"):
        r = api.get(path)
        assert r.status_code == 404, describe(r)
    for coll, name in (("users", u["name"]), ("agents", a["name"])):
        r = api.get(f"/{coll}", params={"name": name + "\x00junk"})
        assert r.status_code in (404, 422), describe(r)
    for params in ({"name": s["name"] + "\x00junk", "user_id": u["id"]}, {"user_id": u["id"] + "\x00junk"}):
        r = api.get("/sessions", params=params)
        assert r.status_code in (404, 422), describe(r)


# ---------------------------------------------------------------------------------------------
# Keep-alive


def test_keep_alive_same_socket_serves_many_requests(server, api):
    u = create_user(api)
    c = RawConn("127.0.0.1", server.port)
    host = f"127.0.0.1:{server.port}"
    try:
        for i in range(3):
            head, body = raw_request("GET", "/api/v1/health", host)
            c.send(head)
            status, hdrs, b = c.read_response()
            assert status == 200 and json.loads(b)["message"] == "Server is healthy"
            assert hdrs.get("connection", "").lower() != "close"
        # a POST whose headers and body arrive in two packets
        head, body = raw_request("POST", "/api/v1/users", host, jdump({"name": uniq("ka")}))
        c.send(head)
        time.sleep(0.05)
        c.send(body)
        status, hdrs, b = c.read_response()
        assert status == 201, b
        # handled errors keep the connection too
        c.send(raw_request("GET", "/api/v1/nope", host)[0])
        status, hdrs, b = c.read_response()
        assert status == 404 and json.loads(b) == {"detail": "Not Found"}
        head, body = raw_request("POST", "/api/v1/users", host, b"{}")
        c.send(head + body)
        status, hdrs, b = c.read_response()
        assert status == 422
        c.send(raw_request("GET", f"/api/v1/users/{u['id']}", host)[0])
        status, hdrs, b = c.read_response()
        assert status == 200 and json.loads(b)["data"]["user"]["id"] == u["id"]
    finally:
        c.close()


def test_requests_session_reuses_one_connection(server):
    a = server.api()
    for _ in range(10):
        assert a.get("/health").status_code == 200
        assert a.get("/users", params={"name": "nobody-" + uniq()}).status_code == 404
    pool = a.session.get_adapter(a.base).poolmanager.connection_from_url(a.base)
    assert pool.num_connections == 1, f"{pool.num_connections} connections opened for 20 keep-alive requests"
    a.close()


def test_no_delayed_ack_stall_on_keep_alive(server, api):
    """Answers must go out in one write (or with TCP_NODELAY): a 40 ms stall per request shows here."""
    u = create_user(api)
    host = f"127.0.0.1:{server.port}"
    c = RawConn("127.0.0.1", server.port)
    lat = []
    try:
        for i in range(25):
            head, body = raw_request("PUT", f"/api/v1/users/{u['id']}", host, jdump({"description": f"d{i}"}))
            t0 = time.perf_counter()
            c.send(head)
            c.send(body)
            status, _, _ = c.read_response()
            lat.append(time.perf_counter() - t0)
            assert status == 200
    finally:
        c.close()
    assert statistics.median(lat) < 0.030, f"median keep-alive latency {statistics.median(lat)*1000:.1f} ms"


# ---------------------------------------------------------------------------------------------
# 422 format and bad bodies


def test_422_missing_field_format(api):
    r = api.post("/users", json={"description": "no name"})
    body = invalid(r, "name")
    assert {"type": "missing", "loc": ["body", "name"], "msg": "Field required"} in \
        [{k: d[k] for k in ("type", "loc", "msg")} for d in body["detail"]], describe(r)


@pytest.mark.parametrize("raw", [b"not json", b'{"name": "x"', b"", b"{'name': 'x'}", b'{"name": "x"}}',
                                 b"\xff\xfe", b"nul\x00l"])
def test_body_that_is_not_json_is_422(api, raw):
    name = uniq("nj")
    raw = raw.replace(b'"x"', json.dumps(name).encode())
    r = api.post("/users", data=raw, headers={"Content-Type": "application/json"})
    invalid(r)
    assert user_by_name_status(api, name) == 404


@pytest.mark.parametrize("payload", [[], [{"name": "x"}], "x", 42, None, True])
def test_body_that_is_not_an_object_is_422(api, payload):
    u, a, s = world(api)
    invalid(api.post("/users", data=json.dumps(payload), headers={"Content-Type": "application/json"}))
    invalid(api.post(f"/sessions/{s['id']}/messages", data=json.dumps(payload),
                     headers={"Content-Type": "application/json"}))
    invalid(api.post(f"/users/{u['id']}/query", data=json.dumps(payload),
                     headers={"Content-Type": "application/json"}))
    assert list_ids(api, s["id"]) == []


def test_wrong_types_are_422(api):
    u, a, s = world(api)
    invalid(api.post("/users", json={"name": 123}), "name")
    invalid(api.post("/users", json={"name": ["a"]}), "name")
    invalid(api.post("/users", json={"name": uniq(), "description": 5}), "description")
    invalid(api.post("/sessions", json={"user_id": 1, "agent_id": a["id"]}), "user_id")
    invalid(api.post(f"/sessions/{s['id']}/messages", json={"messages": {"role": "user", "content": "x"}}),
            "messages")
    invalid(api.post(f"/sessions/{s['id']}/messages", json={"messages": [{"role": "user", "content": 5}]}),
            "content")
    invalid(api.post(f"/sessions/{s['id']}/messages", json={"messages": ["hello"]}), "messages")
    invalid(api.post(f"/users/{u['id']}/query", json={"query": 5}), "query")
    invalid(api.post(f"/users/{u['id']}/query", json={"query": "x", "include_messages": "maybe"}),
            "include_messages")
    assert list_ids(api, s["id"]) == []


def test_unknown_fields_ignored_and_null_means_absent(api):
    name = uniq("uf")
    u = ok(api.post("/users", json={"name": name, "description": None, "colour": "blue", "id": "mine"}), 201)["user"]
    assert u["name"] == name and u["description"] is None and u["id"] != "mine"


def test_chunked_request_body_is_accepted(api):
    name = uniq("chunked")

    def gen():
        yield b'{"name": '
        yield json.dumps(name).encode()
        yield b"}"
    r = api.post("/users", data=gen(), headers={"Content-Type": "application/json"})
    assert ok(r, 201)["user"]["name"] == name


# ---------------------------------------------------------------------------------------------
# Body size limit (413)


@pytest.fixture(scope="module")
def small_body_server(module_spawn):
    return module_spawn("--max-body", "1024", name="maxbody")


def padded_user_body(name, total):
    base = {"name": name, "description": ""}
    pad = total - len(json.dumps(base).encode())
    base["description"] = "p" * pad
    raw = json.dumps(base).encode()
    assert len(raw) == total
    return raw


def test_body_over_limit_is_413(small_body_server):
    a = small_body_server.api()
    name = uniq("big")
    r = a.post("/users", data=padded_user_body(name, 1025), headers={"Content-Type": "application/json"})
    error(r, 413, "Request body too large")
    assert a.get("/users", params={"name": name}).status_code == 404
    r = a.post("/users", data=padded_user_body(name, 4000), headers={"Content-Type": "application/json"})
    error(r, 413, "Request body too large")
    # exactly at the limit is fine
    r = a.post("/users", data=padded_user_body(name, 1024), headers={"Content-Type": "application/json"})
    ok(r, 201)
    assert a.get("/health").status_code == 200


def test_chunked_body_over_limit_is_413(small_body_server):
    a = small_body_server.api()
    name = uniq("bigchunk")

    def gen():
        yield b'{"name": "' + name.encode() + b'", "description": "'
        for _ in range(10):
            yield b"q" * 500
        yield b'"}'
    r = a.post("/users", data=gen(), headers={"Content-Type": "application/json"})
    error(r, 413, "Request body too large")
    assert a.get("/users", params={"name": name}).status_code == 404


def test_default_limit_is_8_mib(server, api):
    """A body of 8 MiB + 1 KiB on the default server → 413; the server stays up."""
    u = create_user(api)
    c = RawConn("127.0.0.1", server.port, timeout=30)
    host = f"127.0.0.1:{server.port}"
    n = 8 * MIB + 1024
    head = (f"POST /api/v1/users/{u['id']}/knowledge HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {n}\r\n\r\n").encode()
    payload = b'{"knowledge": ["' + b"z" * (n - 19) + b'"]}'
    assert len(payload) == n

    def sender():
        try:
            c.send(head)
            c.send(payload)
        except OSError:
            pass  # the server may answer and close before reading everything
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        status, hdrs, b = c.read_response()
    finally:
        t.join(30)
        c.close()
    assert status == 413, b[:300]
    body = json.loads(b)
    assert body["code"] == 413 and body["message"] == "Request body too large" and body["status"] == "error"
    assert ok(api.get(f"/users/{u['id']}/knowledge"))["knowledge"] == []


# ---------------------------------------------------------------------------------------------
# Invalid UTF-8 and NUL


BAD_UTF8 = [b"\xff", b"ab\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xfe\xfe\xff\xff", b"\x80abc"]


@pytest.mark.parametrize("bad", BAD_UTF8, ids=[b.hex() for b in BAD_UTF8])
def test_invalid_utf8_name_is_422(api, bad):
    prefix = uniq("u8")
    raw = b'{"name": "' + prefix.encode() + bad + b'"}'
    invalid(api.post("/users", data=raw, headers={"Content-Type": "application/json"}), "name")
    users = ok(api.get("/users"))["users"]
    assert not [x for x in users if x["name"].startswith(prefix)]


def test_invalid_utf8_and_nul_in_every_text_field_is_422(api):
    u, a, s = world(api)
    sid, uid = s["id"], u["id"]
    hdr = {"Content-Type": "application/json"}
    for bad_json in (b'"bad\xffbyte"', b'"nul\\u0000inside"', b'"lone\\ud800surrogate"'):
        def raw(template):
            return template.replace(b"@", bad_json)
        invalid(api.post("/users", data=raw(b'{"name": @}'), headers=hdr), "name")
        invalid(api.post("/users", data=raw(b'{"name": "%s", "description": @}' % uniq().encode()), headers=hdr),
                "description")
        invalid(api.post("/agents", data=raw(b'{"name": @}'), headers=hdr), "name")
        invalid(api.post("/sessions", data=raw(b'{"user_id": "%s", "agent_id": "%s", "name": @}'
                                              % (uid.encode(), a["id"].encode())), headers=hdr), "name")
        invalid(api.put(f"/users/{uid}", data=raw(b'{"name": @}'), headers=hdr), "name")
        invalid(api.post(f"/sessions/{sid}/messages",
                         data=raw(b'{"messages": [{"role": "user", "content": "fine"}, '
                                  b'{"role": "user", "content": @}]}'), headers=hdr), "content")
        invalid(api.post(f"/users/{uid}/knowledge", data=raw(b'{"knowledge": ["fine", @]}'), headers=hdr),
                "knowledge")
        invalid(api.post(f"/users/{uid}/query", data=raw(b'{"query": @}'), headers=hdr), "query")
    assert list_ids(api, sid) == []
    assert ok(api.get(f"/users/{uid}/knowledge"))["knowledge"] == []
    assert ok(api.get(f"/users/{uid}"))["user"]["name"] == u["name"]
    assert [x["id"] for x in ok(api.get("/sessions", params={"user_id": uid}))["sessions"]] == [sid]


def test_raw_utf8_and_escaped_unicode_round_trip(api):
    u, a, s = world(api)
    text = "emoji \U0001F600 é 中文 עברית"
    raw_utf8 = json.dumps({"messages": [{"role": "user", "content": text}]}, ensure_ascii=False).encode()
    escaped = json.dumps({"messages": [{"role": "user", "content": text}]}, ensure_ascii=True).encode()
    assert b"\\ud83d\\ude00" in escaped
    ids = []
    for raw in (raw_utf8, escaped):
        r = api.post(f"/sessions/{s['id']}/messages", data=raw, headers={"Content-Type": "application/json"})
        ids += ok(r, 201)["message_ids"]
    got = ok(api.post(f"/sessions/{s['id']}/messages/read", json={"message_ids": ids}))["messages"]
    assert [m["content"] for m in got] == [text, text]


# ---------------------------------------------------------------------------------------------
# Size limits on names, content, batches, top_k


@pytest.mark.parametrize("unit", ["a", "é", "中"])
def test_name_limit_256_bytes(api, unit):
    """256 bytes of UTF-8 is allowed, more is 422 — bytes, not characters."""
    prefix = uniq("n")
    good = prefix + unit * ((256 - len(prefix)) // len(unit.encode()))
    good += "x" * (256 - len(good.encode()))
    assert len(good.encode()) == 256
    bad = good + unit
    assert len(bad.encode()) > 256 and len(bad) <= 257
    # users
    invalid(api.post("/users", json={"name": bad}), "name")
    assert user_by_name_status(api, bad) == 404
    u = ok(api.post("/users", json={"name": good}), 201)["user"]
    assert u["name"] == good
    invalid(api.put(f"/users/{u['id']}", json={"name": "z" + bad}), "name")
    assert ok(api.get(f"/users/{u['id']}"))["user"]["name"] == good
    # agents
    invalid(api.post("/agents", json={"name": bad}), "name")
    assert api.get("/agents", params={"name": bad}).status_code == 404
    a = ok(api.post("/agents", json={"name": good}), 201)["agent"]
    invalid(api.put(f"/agents/{a['id']}", json={"name": "z" + bad}), "name")
    assert ok(api.get(f"/agents/{a['id']}"))["agent"]["name"] == good
    # sessions
    invalid(api.post("/sessions", json={"user_id": u["id"], "agent_id": a["id"], "name": bad}), "name")
    assert ok(api.get("/sessions", params={"user_id": u["id"]}))["sessions"] == []
    s = ok(api.post("/sessions", json={"user_id": u["id"], "agent_id": a["id"], "name": good}), 201)["session"]
    invalid(api.put(f"/sessions/{s['id']}", json={"name": "z" + bad}), "name")
    assert ok(api.get(f"/sessions/{s['id']}"))["session"]["name"] == good


def test_message_content_limit_1_mib(api):
    u, a, s = world(api)
    sid = s["id"]
    exact = "m" * MIB
    ids = add_messages(api, sid, msgs(exact))
    over = "m" * (MIB + 1)
    invalid(api.post(f"/sessions/{sid}/messages", json={"messages": msgs("small", over)}), "content")
    # bytes, not characters: 524288 × 'é' is exactly 1 MiB; one more ASCII byte is over
    wide = "é" * (MIB // 2)
    ids += add_messages(api, sid, msgs(wide))
    invalid(api.post(f"/sessions/{sid}/messages", json={"messages": msgs(wide + "a")}), "content")
    assert sorted(list_ids(api, sid)) == sorted(ids)
    got = ok(api.post(f"/sessions/{sid}/messages/read", json={"message_ids": ids}))["messages"]
    assert [len(m["content"]) for m in got] == [MIB, MIB // 2]
    # update obeys the same limit and changes nothing on failure
    invalid(api.put(f"/sessions/{sid}/messages", json={"message_ids": [ids[0]], "new_messages": msgs(over)}),
            "content")
    assert ok(api.post(f"/sessions/{sid}/messages/read", json={"message_ids": [ids[0]]}))["messages"][0][
        "content"] == exact


def test_batch_limit_1000_messages(api):
    u, a, s = world(api)
    sid = s["id"]
    invalid(api.post(f"/sessions/{sid}/messages", json={"messages": msgs(*[f"b{i}" for i in range(1001)])}),
            "messages")
    assert list_ids(api, sid) == []
    ids = add_messages(api, sid, msgs(*[f"b{i}" for i in range(1000)]))
    assert len(ids) == 1000
    assert len(list_ids(api, sid, limit=100)) == 100


def test_top_k_limit_1000(api):
    u, a, s = world(api)
    w = word()
    add_messages(api, s["id"], msgs(w))
    r = api.post(f"/users/{u['id']}/query", json={"query": w, "top_k": 1001})
    invalid(r, "top_k")
    res = query(api, u["id"], w, top_k=1000, store_type="keyword")
    assert len(res) == 1


def test_failed_requests_do_not_half_apply(api):
    """A batch with one bad message stores none; a failed rename keeps the old name."""
    u, a, s = world(api)
    sid = s["id"]
    ids = add_messages(api, sid, msgs("keep me"))
    invalid(api.post(f"/sessions/{sid}/messages",
                     json={"messages": msgs("one", "two") + [{"role": "robot", "content": "three"}]}), "role")
    invalid(api.post(f"/sessions/{sid}/messages", json={"messages": msgs("one") + [{"role": "user"}]}),
            "content")
    invalid(api.post(f"/sessions/{sid}/messages", json={"messages": msgs("one", "")}), "content")
    assert list_ids(api, sid) == ids
    other = create_user(api)
    error(api.put(f"/users/{u['id']}", json={"name": other["name"], "description": "changed"}), 400)
    got = ok(api.get(f"/users/{u['id']}"))["user"]
    assert got["name"] == u["name"] and got["description"] == u["description"]
    s2 = create_session(api, u["id"], a["id"])
    error(api.put(f"/sessions/{s2['id']}", json={"name": s["name"]}), 400)
    assert ok(api.get(f"/sessions/{s2['id']}"))["session"]["name"] == s2["name"]
    agent2 = create_agent(api)
    error(api.put(f"/agents/{agent2['id']}", json={"name": a["name"], "description": "changed"}), 400)
    assert ok(api.get(f"/agents/{agent2['id']}"))["agent"] == agent2
