"""SPEC §9: API keys, with and without the trailing slash (auth off here; see test_auth.py)."""

from datetime import datetime

import pytest

from helpers import (API_KEY_KEYS, assert_ts, assert_uuid, create_user, error, fake_id, invalid, ok, user_404)

SLASH = pytest.mark.parametrize("sl", ["", "/"], ids=["no-slash", "slash"])


def create_key(api, uid, sl="", **body):
    r = api.post(f"/users/{uid}/api-keys{sl}", json=body)
    key = ok(r, 201, "API key created successfully", keys={"api_key"})["api_key"]
    assert set(key) == API_KEY_KEYS, sorted(key)
    assert_uuid(key["id"])
    assert_ts(key["created_at"], "created_at")
    assert key["user_id"] == uid
    assert isinstance(key["key"], str) and key["key"] and key["key"] != "********"
    return key


def list_keys(api, uid, sl=""):
    keys = ok(api.get(f"/users/{uid}/api-keys{sl}"), 200, "API keys retrieved successfully",
              keys={"api_keys"})["api_keys"]
    for k in keys:
        assert set(k) == API_KEY_KEYS, sorted(k)
        assert k["key"] == "********"
        assert k["user_id"] == uid
    return keys


def parse_ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@SLASH
def test_create_list_delete(api, sl):
    u = create_user(api)
    k = create_key(api, u["id"], sl, name="laptop")
    assert k["name"] == "laptop" and k["expires_at"] is None
    r = api.get(f"/users/{u['id']}/api-keys{sl}")
    listed = list_keys(api, u["id"], sl)
    assert [x["id"] for x in listed] == [k["id"]]
    assert listed[0]["name"] == "laptop" and listed[0]["created_at"] == k["created_at"]
    assert k["key"] not in r.text, "the plain key is shown only once"
    data = ok(api.delete(f"/users/{u['id']}/api-keys/{k['id']}{sl}"), 200, "API key deleted successfully",
              keys={"key_id"})
    assert data == {"key_id": k["id"]}
    assert list_keys(api, u["id"], sl) == []
    error(api.delete(f"/users/{u['id']}/api-keys/{k['id']}{sl}"), 404,
          f"API key with ID '{k['id']}' not found for user '{u['id']}'", field="key_id")


def test_generated_keys_are_distinct(api):
    u = create_user(api)
    keys = [create_key(api, u["id"]) for _ in range(3)]
    assert len({k["key"] for k in keys}) == 3 and len({k["id"] for k in keys}) == 3
    assert all(len(k["key"]) >= 16 for k in keys), "generated keys should carry real entropy"
    assert {x["id"] for x in list_keys(api, u["id"])} == {k["id"] for k in keys}


def test_client_supplied_key_name_permissions_expiry(api):
    u = create_user(api)
    plain = "my-own-key-" + fake_id()
    perms = {"read": True, "write": False}
    k = create_key(api, u["id"], name="ci", key=plain, permissions=perms, expires_at="2099-01-02T03:04:05Z")
    assert k["key"] == plain
    assert k["permissions"] == perms
    assert isinstance(k["expires_at"], str)
    assert parse_ts(k["expires_at"]) == parse_ts("2099-01-02T03:04:05Z")
    listed = list_keys(api, u["id"])[0]
    assert listed["permissions"] == perms and parse_ts(listed["expires_at"]) == parse_ts(k["expires_at"])


def test_empty_body_creates_a_key(api):
    u = create_user(api)
    k = create_key(api, u["id"])
    assert k["name"] is None or isinstance(k["name"], str)


def test_path_user_wins_over_body_user_id(api):
    u, other = create_user(api), create_user(api)
    k = create_key(api, u["id"], user_id=other["id"], name="path wins")
    assert k["user_id"] == u["id"]
    assert list_keys(api, other["id"]) == []


@SLASH
def test_unknown_user_is_404(api, sl):
    uid = fake_id()
    user_404(api.post(f"/users/{uid}/api-keys{sl}", json={"name": "x"}), uid)
    user_404(api.get(f"/users/{uid}/api-keys{sl}"), uid)
    user_404(api.delete(f"/users/{uid}/api-keys/{fake_id()}{sl}"), uid)


def test_key_of_another_user_is_404_and_survives(api):
    u, other = create_user(api), create_user(api)
    theirs = create_key(api, other["id"])
    error(api.delete(f"/users/{u['id']}/api-keys/{theirs['id']}"), 404,
          f"API key with ID '{theirs['id']}' not found for user '{u['id']}'", field="key_id")
    assert [x["id"] for x in list_keys(api, other["id"])] == [theirs["id"]]
    kid = fake_id()
    error(api.delete(f"/users/{u['id']}/api-keys/{kid}"), 404,
          f"API key with ID '{kid}' not found for user '{u['id']}'", field="key_id")


@pytest.mark.parametrize("body,field", [({"name": 5}, "name"), ({"permissions": "all"}, "permissions"),
                                        ({"expires_at": 12}, "expires_at"), ({"key": 42}, "key")])
def test_invalid_create_is_422(api, body, field):
    u = create_user(api)
    invalid(api.post(f"/users/{u['id']}/api-keys", json=body), field)
    assert list_keys(api, u["id"]) == []
