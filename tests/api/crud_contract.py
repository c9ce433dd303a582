"""The contract users (SPEC §3) and agents (SPEC §4) share, written once; test_users.py and
test_agents.py subclass `NamedResourceContract` with their collection, keys and texts."""

import pytest

from helpers import (assert_record, describe, error, invalid, ok, uniq)


class NamedResourceContract:
    coll = None        # "users"
    one = None         # "user"
    Title = None       # "User"
    id_field = None    # "user_id"
    record_keys = None

    # -- helpers ------------------------------------------------------------------------

    def create(self, api, name=None, description=None):
        body = {"name": name or uniq(self.one)}
        if description is not None:
            body["description"] = description
        r = api.post(f"/{self.coll}", json=body)
        rec = ok(r, 201, f"{self.Title} created successfully", keys={self.one})[self.one]
        assert_record(rec, self.record_keys)
        return rec

    def get(self, api, rid):
        return ok(api.get(f"/{self.coll}/{rid}"), 200, f"{self.Title} retrieved successfully",
                  keys={self.one})[self.one]

    def not_found(self, r, rid):
        return error(r, 404, f"{self.Title} with ID '{rid}' not found", field=self.id_field)

    # -- create -------------------------------------------------------------------------

    def test_create_returns_record(self, api):
        name = uniq(self.one)
        rec = self.create(api, name, "a description")
        assert rec["name"] == name and rec["description"] == "a description"
        assert rec["updated_at"] >= rec["created_at"]

    def test_create_without_description_is_null(self, api):
        assert self.create(api)["description"] is None
        rec = ok(api.post(f"/{self.coll}", json={"name": uniq(), "description": None}), 201)[self.one]
        assert rec["description"] is None

    def test_create_name_taken_is_400(self, api):
        rec = self.create(api)
        r = api.post(f"/{self.coll}", json={"name": rec["name"], "description": "second"})
        error(r, 400, f"{self.Title} with name '{rec['name']}' already exists", field="name")
        found = ok(api.get(f"/{self.coll}", params={"name": rec["name"]}))[self.coll]
        assert found == [rec]

    @pytest.mark.parametrize("body,field", [({}, "name"), ({"name": ""}, "name"), ({"name": None}, "name"),
                                            ({"description": "only"}, "name"), ({"name": 7}, "name")])
    def test_create_invalid_is_422(self, api, body, field):
        before = len(ok(api.get(f"/{self.coll}"))[self.coll])
        invalid(api.post(f"/{self.coll}", json=body), field)
        assert len(ok(api.get(f"/{self.coll}"))[self.coll]) == before

    def test_missing_name_detail_is_fastapi_style(self, api):
        body = invalid(api.post(f"/{self.coll}", json={}), "name")
        items = [{k: d[k] for k in ("type", "loc", "msg")} for d in body["detail"]]
        assert {"type": "missing", "loc": ["body", "name"], "msg": "Field required"} in items

    def test_special_characters_in_name_round_trip(self, api):
        name = uniq("Zoë O'Brien & co/1 ?#%+ \"q\" 中")
        rec = self.create(api, name)
        assert rec["name"] == name
        found = ok(api.get(f"/{self.coll}", params={"name": name}), 200,
                   f"{self.Title} retrieved successfully", keys={self.coll})[self.coll]
        assert found == [rec]
        r = api.post(f"/{self.coll}", json={"name": name})
        error(r, 400, f"{self.Title} with name '{name}' already exists", field="name")

    def test_names_are_exact_strings(self, api):
        base = uniq("CaseName")
        recs = [self.create(api, n) for n in (base.upper(), base.lower(), " " + base + " ", base)]
        for rec in recs:
            assert ok(api.get(f"/{self.coll}", params={"name": rec["name"]}))[self.coll] == [rec]
        # no pattern matching: LIKE/GLOB wildcards are plain characters
        for pattern in ("%", "_", "*", base[:6] + "%", "%" + base[6:], base[:-1] + "_", base[:-1] + "?"):
            r = api.get(f"/{self.coll}", params={"name": pattern})
            error(r, 404, f"{self.Title} with name '{pattern}' not found", field="name")

    # -- list / get ---------------------------------------------------------------------

    def test_list_contains_created(self, api):
        a, b = self.create(api), self.create(api)
        items = ok(api.get(f"/{self.coll}"), 200, f"{self.Title}s retrieved successfully",
                   keys={self.coll})[self.coll]
        for it in items:
            assert_record(it, self.record_keys)
        by_id = {it["id"]: it for it in items}
        assert by_id[a["id"]] == a and by_id[b["id"]] == b
        assert len(by_id) == len(items), "duplicate records in list"

    def test_get_by_name(self, api):
        rec = self.create(api)
        found = ok(api.get(f"/{self.coll}", params={"name": rec["name"]}), 200,
                   f"{self.Title} retrieved successfully", keys={self.coll})[self.coll]
        assert found == [rec]

    def test_get_by_unknown_name_is_404(self, api):
        name = uniq("nobody")
        error(api.get(f"/{self.coll}", params={"name": name}), 404,
              f"{self.Title} with name '{name}' not found", field="name")

    def test_get_by_id(self, api):
        rec = self.create(api)
        assert self.get(api, rec["id"]) == rec

    def test_get_unknown_id_is_404(self, api):
        rid = "00000000-0000-7000-8000-000000000000"
        self.not_found(api.get(f"/{self.coll}/{rid}"), rid)

    # -- update -------------------------------------------------------------------------

    def test_update_name_and_description(self, api):
        rec = self.create(api, description="old")
        new = uniq(self.one)
        got = ok(api.put(f"/{self.coll}/{rec['id']}", json={"name": new, "description": "new"}), 200,
                 f"{self.Title} updated successfully", keys={self.one})[self.one]
        assert_record(got, self.record_keys)
        assert got["id"] == rec["id"] and got["name"] == new and got["description"] == "new"
        assert got["created_at"] == rec["created_at"]
        assert got["updated_at"] > rec["updated_at"]
        assert self.get(api, rec["id"]) == got
        assert api.get(f"/{self.coll}", params={"name": rec["name"]}).status_code == 404
        assert ok(api.get(f"/{self.coll}", params={"name": new}))[self.coll] == [got]

    def test_update_only_description(self, api):
        rec = self.create(api, description="old")
        got = ok(api.put(f"/{self.coll}/{rec['id']}", json={"description": "new"}))[self.one]
        assert got["name"] == rec["name"] and got["description"] == "new"

    def test_update_empty_object_only_touches_updated_at(self, api):
        rec = self.create(api, description="keep")
        got = ok(api.put(f"/{self.coll}/{rec['id']}", json={}), 200, f"{self.Title} updated successfully")[self.one]
        assert {k: v for k, v in got.items() if k != "updated_at"} == \
            {k: v for k, v in rec.items() if k != "updated_at"}
        assert got["updated_at"] > rec["updated_at"]
        assert self.get(api, rec["id"]) == got

    def test_update_nulls_keep_old_values(self, api):
        rec = self.create(api, description="keep")
        got = ok(api.put(f"/{self.coll}/{rec['id']}", json={"name": None, "description": None}))[self.one]
        assert got["name"] == rec["name"] and got["description"] == "keep"

    def test_update_to_taken_name_is_400(self, api):
        a, b = self.create(api), self.create(api)
        r = api.put(f"/{self.coll}/{b['id']}", json={"name": a["name"]})
        error(r, 400, f"{self.Title} with name '{a['name']}' already exists", field="name")
        assert self.get(api, b["id"]) == b

    def test_update_to_own_name_is_fine(self, api):
        a = self.create(api)
        got = ok(api.put(f"/{self.coll}/{a['id']}", json={"name": a["name"], "description": "same name"}))[self.one]
        assert got["name"] == a["name"] and got["description"] == "same name"

    @pytest.mark.parametrize("body,field", [({"name": ""}, "name"), ({"name": 5}, "name"),
                                            ({"description": ["x"]}, "description")])
    def test_update_invalid_is_422(self, api, body, field):
        rec = self.create(api)
        invalid(api.put(f"/{self.coll}/{rec['id']}", json=body), field)
        assert self.get(api, rec["id"]) == rec

    def test_update_unknown_is_404(self, api):
        rid = "00000000-0000-7000-8000-00000000abcd"
        self.not_found(api.put(f"/{self.coll}/{rid}", json={"description": "x"}), rid)

    def test_delete_unknown_is_404(self, api):
        rid = "00000000-0000-7000-8000-00000000dcba"
        self.not_found(api.delete(f"/{self.coll}/{rid}"), rid)

    def test_deleted_name_can_be_reused(self, api):
        rec = self.create(api)
        r = api.delete(f"/{self.coll}/{rec['id']}")
        assert r.status_code in (200, 204), describe(r)
        again = self.create(api, rec["name"])
        assert again["id"] != rec["id"]
        items = ok(api.get(f"/{self.coll}"))[self.coll]
        assert rec["id"] not in [i["id"] for i in items]
