"""Bad input (SPEC §6): a 4xx whose JSON names the field, nothing stored, nothing changed.

Each bad request is sent twice: once for a task (or user) that does not exist yet, which must
then still not exist, and once for one that does, which must keep every field, and no entry,
delivery or job may appear. Then auth: who may call what.
"""

from __future__ import annotations

import pytest

from tests.conftest import START, Api

GOOD_TASK = {"text": "Call the client", "type": "call", "author_id": "ann", "responsible_id": "bob",
                 "due_at": "2026-03-02T12:00:00+00:00", "duration_minutes": 30,
                 "entity": {"type": "deal", "id": "d-7", "url": "https://crm.example/deals/7"},
                 "result": "none yet"}


def state(api: Api) -> tuple:
    """Everything a bad request must leave alone."""
    tasks = api.req("GET", "/v1/tasks", params={"limit": 500}).json()
    users = [api.req("GET", f"/v1/users/{u}").json() for u in ("ann", "bob", "carl")]
    return tasks, users, api.entry_rows(), api.delivery_rows(), api.job_rows()


def assert_error(r, status: int | tuple[int, ...], field: str | None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text)
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) <= {"code", "message", "field"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error.get("field") == field, error
    return error


@pytest.fixture
def world(api: Api) -> Api:
    """Three users, one task t1 with every field set, its assignment delivered."""
    api.user("ann")
    api.user("bob", timezone="Europe/Berlin", all_day_notify_at="08:15", locale="ru")
    api.user("carl")
    api.task("t1", "ann", **GOOD_TASK)
    api.advance(seconds=1)
    return api


# -- tasks -------------------------------------------------------------------------------------

BAD_TASK_FIELDS = [
    # (id, fields sent along with actor_id, the field the error must name)
    ("due_at-without-offset", {"due_at": "2026-03-02T12:00:00"}, "due_at"),
    ("due_at-not-a-date", {"due_at": "tomorrow"}, "due_at"),
    ("due_at-and-due_date", {"due_at": "2026-03-02T12:00:00Z", "due_date": "2026-03-03"},
     "due_date"),
    ("due_date-impossible", {"due_date": "2026-02-30"}, "due_date"),
    ("due_date-far-future", {"due_date": "9999-12-31"}, "due_date"),
    ("unknown-responsible", {"responsible_id": "nobody"}, "responsible_id"),
    ("unknown-author", {"author_id": "nobody"}, "author_id"),
    ("unknown-completed_by", {"completed_by": "nobody",
                              "completed_at": "2026-03-02T09:00:00Z"}, "completed_by"),
    ("text-too-long", {"text": "x" * 10_001}, "text"),
    ("text-empty", {"text": ""}, "text"),
    ("text-null", {"text": None}, "text"),
    ("text-control-char", {"text": "bad\x00text"}, "text"),
    ("result-too-long", {"result": "r" * 10_001}, "result"),
    ("text-wrong-type", {"text": 42}, "text"),
    ("duration-wrong-type", {"duration_minutes": "half an hour"}, "duration_minutes"),
    ("duration-out-of-range", {"duration_minutes": 0}, "duration_minutes"),
    ("responsible-wrong-type", {"responsible_id": ["bob"]}, "responsible_id"),
    ("responsible-bad-id", {"responsible_id": "bob smith"}, "responsible_id"),
    ("type-bad", {"type": "two words"}, "type"),
    ("entity-wrong-type", {"entity": "deal 7"}, "entity"),
    ("entity-bad-url", {"entity": {"type": "deal", "id": "7", "url": "javascript:alert(1)"}},
     "entity.url"),
    ("entity-unknown-field", {"entity": {"type": "deal", "id": "7", "colour": "red"}},
     "entity.colour"),
    ("unknown-field", {"priority": "high"}, "priority"),
]


@pytest.mark.parametrize("fields,field", [(f, n) for _, f, n in BAD_TASK_FIELDS],
                         ids=[i for i, _, _ in BAD_TASK_FIELDS])
def test_bad_task_field_is_refused_and_changes_nothing(world: Api, fields: dict,
                                                       field: str) -> None:
    api = world
    before = state(api)
    original = api.req("GET", "/v1/tasks/t1").json()

    new = {"text": "New task", "responsible_id": "bob", **fields}
    assert_error(api.req("PUT", "/v1/tasks/t2", json={"actor_id": "ann", **new}), 422, field)
    assert_error(api.req("PUT", "/v1/tasks/t1", json={"actor_id": "ann", **fields}), 422, field)

    assert api.req("GET", "/v1/tasks/t2").status_code == 404
    assert api.req("GET", "/v1/tasks/t1").json() == original
    assert state(api) == before  # no entry, delivery or job either
    api.advance(hours=4)  # and nothing was scheduled for t2
    assert [e for e in api.entry_rows() if e["task_id"] == "t2"] == []


def test_unknown_actor_is_refused(world: Api) -> None:
    api = world
    before = state(api)
    r = api.req("PUT", "/v1/tasks/t2", json={"actor_id": "nobody", "text": "x",
                                            "responsible_id": "bob"})
    assert_error(r, 422, "actor_id")
    r = api.req("PUT", "/v1/tasks/t1", json={"actor_id": "nobody", "text": "changed"})
    assert_error(r, 422, "actor_id")
    r = api.req("PUT", "/v1/tasks/t1", json={"text": "changed"})  # no actor at all
    assert_error(r, 422, "actor_id")
    assert state(api) == before


def test_new_task_needs_text_and_responsible(world: Api) -> None:
    api = world
    before = state(api)
    assert_error(api.req("PUT", "/v1/tasks/t2", json={"actor_id": "ann", "responsible_id": "bob"}),
                 422, "text")
    assert_error(api.req("PUT", "/v1/tasks/t2", json={"actor_id": "ann", "text": "x"}),
                 422, "responsible_id")
    assert state(api) == before
    assert api.req("GET", "/v1/tasks/t2").status_code == 404


def test_text_of_exactly_ten_thousand_characters_is_accepted(world: Api) -> None:
    api = world
    body = api.task("t2", "ann", text="y" * 10_000, responsible_id="bob")
    assert len(body["text"]) == 10_000


@pytest.mark.parametrize("raw,content_type,status,code", [
    (b'{"actor_id": "ann", "text": "x"', "application/json", 400, "malformed_json"),
    (b"{'actor_id': 'ann'}", "application/json", 400, "malformed_json"),
    (b"\xff\xfe not utf-8", "application/json", (400, 422), None),
    (b"", "application/json", 422, "invalid"),
    (b"[1, 2, 3]", "application/json", 422, "invalid"),
    (b'"just a string"', "application/json", 422, "invalid"),
    (b"42", "application/json", 422, "invalid"),
    (b"null", "application/json", 422, "invalid"),
    (b"actor_id=ann&text=x", "application/x-www-form-urlencoded", 422, "invalid"),
], ids=["truncated", "single-quotes", "not-utf8", "empty", "array", "string", "number", "null",
        "form"])
def test_body_that_is_not_a_json_object_is_refused(world: Api, raw: bytes, content_type: str,
                                                   status: int, code: str | None) -> None:
    api = world
    before = state(api)
    original = api.req("GET", "/v1/tasks/t1").json()
    for task in ("t1", "t2"):
        r = api.client.put(f"/v1/tasks/{task}", content=raw,
                           headers={**api.headers(), "content-type": content_type})
        error = assert_error(r, status, "body")
        if code:
            assert error["code"] == code
    assert api.req("GET", "/v1/tasks/t1").json() == original
    assert api.req("GET", "/v1/tasks/t2").status_code == 404
    assert state(api) == before


def test_bad_completion_is_refused(world: Api) -> None:
    api = world
    before = state(api)
    assert_error(api.req("POST", "/v1/tasks/t1/complete", json={"by": "nobody"}), 422, "by")
    assert_error(api.req("POST", "/v1/tasks/t1/complete", json={}), 422, "by")
    assert_error(api.req("POST", "/v1/tasks/t1/complete", json={"by": "bob", "extra": 1}),
                 422, "extra")
    assert_error(api.req("POST", "/v1/tasks/t1/complete", json={"by": "bob", "result": 7}),
                 422, "result")
    assert_error(api.req("POST", "/v1/tasks/nope/complete", json={"by": "bob"}), 404, "id")
    assert state(api) == before
    assert api.req("GET", "/v1/tasks/t1").json()["completed_at"] is None


def test_bad_path_and_query_parameters_are_refused(world: Api) -> None:
    api = world
    assert_error(api.req("PUT", "/v1/tasks/bad%20id", json={"actor_id": "ann", "text": "x",
                                                          "responsible_id": "bob"}), 422, "id")
    assert_error(api.req("GET", "/v1/tasks/" + "x" * 129), 422, "id")
    assert_error(api.req("GET", "/v1/tasks", params={"limit": 0}), 422, "limit")
    assert_error(api.req("GET", "/v1/tasks", params={"open": "perhaps"}), 422, "open")
    base = "/v1/users/bob/notifications"
    assert_error(api.req("GET", base, params={"limit": 0}), 422, "limit")
    assert_error(api.req("GET", base, params={"limit": 201}), 422, "limit")
    assert_error(api.req("GET", base, params={"cursor": "abc"}), 422, "cursor")
    assert_error(api.req("GET", base, params={"unread": "maybe"}), 422, "unread")
    assert_error(api.req("POST", f"{base}/abc/read"), 422, "nid")
    assert_error(api.req("POST", f"{base}/0/read"), 422, "nid")
    assert_error(api.req("POST", f"{base}/999999/read"), 404, "nid")
    assert_error(api.req("GET", "/v1/users/nobody/notifications"), 404, "id")


# -- users and settings ------------------------------------------------------------------------

BAD_USER_FIELDS = [
    ("unknown-time-zone", {"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ("time-zone-wrong-case", {"timezone": "europe/berlin"}, "timezone"),
    ("time-zone-wrong-type", {"timezone": 3}, "timezone"),
    ("locale", {"locale": "fr"}, "locale"),
    ("notify-at-out-of-range", {"all_day_notify_at": "25:00"}, "all_day_notify_at"),
    ("notify-at-not-a-time", {"all_day_notify_at": "nine"}, "all_day_notify_at"),
    ("email-not-an-address", {"email": "bob at example"}, "email"),
    ("email-control-char", {"email": "b\x00b@example.com"}, "email"),
    ("name-too-long", {"name": "n" * 201}, "name"),
    ("unknown-channel", {"channels": {"sms": {"task_due": True}}}, "channels.sms"),
    ("kind-the-channel-does-not-carry", {"channels": {"email": {"task_overdue": True}}},
     "channels.email.task_overdue"),
    ("toggle-wrong-type", {"channels": {"email": {"task_due": "yes please"}}},
     "channels.email.task_due"),
    ("unknown-field", {"favourite_colour": "blue"}, "favourite_colour"),
]


@pytest.mark.parametrize("fields,field", [(f, n) for _, f, n in BAD_USER_FIELDS],
                         ids=[i for i, _, _ in BAD_USER_FIELDS])
def test_bad_user_field_is_refused_and_changes_nothing(world: Api, fields: dict,
                                                       field: str) -> None:
    api = world
    before = state(api)
    assert_error(api.req("PUT", "/v1/users/dave", json={"name": "Dave", **fields}), 422, field)
    assert api.req("GET", "/v1/users/dave").status_code == 404
    assert_error(api.req("PUT", "/v1/users/bob", json={"name": "Robert", **fields}), 422, field)
    if "channels" in fields or "timezone" in fields or "locale" in fields or \
            "all_day_notify_at" in fields:
        r = api.req("PATCH", "/v1/users/bob/settings", json=fields)
        assert_error(r, 422, field)
    assert state(api) == before


def test_settings_refuse_nulls_and_user_only_fields(world: Api) -> None:
    api = world
    before = state(api)
    for fields, field in [({"timezone": None}, "timezone"), ({"locale": None}, "locale"),
                          ({"all_day_notify_at": None}, "all_day_notify_at"),
                          ({"email": "x@y.z"}, "email"), ([], "body")]:
        assert_error(api.req("PATCH", "/v1/users/bob/settings", json=fields), 422, field)
    assert state(api) == before


def test_a_refused_time_zone_change_keeps_the_whole_day_timers(world: Api) -> None:
    api = world
    api.task("w1", "ann", text="Report", responsible_id="bob", due_date="2026-03-03")
    jobs = api.job_rows()
    assert_error(api.req("PATCH", "/v1/users/bob/settings",
                         json={"timezone": "Europe/Berlin", "all_day_notify_at": "7am"}),
                 422, "all_day_notify_at")
    assert api.job_rows() == jobs
    api.clock.set(START.replace(day=3, hour=7, minute=15))  # 08:15 Berlin, as before
    api.node.worker.run_due()
    assert [e["kind"] for e in api.entries("bob") if e["task_id"] == "w1"] == [
        "task_due", "task_assigned"]


# -- auth --------------------------------------------------------------------------------------


def test_no_token_is_401(world: Api) -> None:
    api = world
    for method, path in [("GET", "/v1/tasks/t1"), ("PUT", "/v1/tasks/t1"),
                         ("GET", "/v1/users/bob"), ("GET", "/v1/users/bob/notifications"),
                         ("GET", "/v1/users/bob/notifications/unread-count"),
                         ("POST", "/v1/users/bob/tokens"), ("GET", "/v1/users/bob/stream")]:
        r = api.client.request(method, path, json={})
        assert_error(r, 401, None)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
    for bad in ("Bearer not-a-key", "Basic YW5uOnB3", "Bearer", "test-api-key-0123456789"):
        r = api.client.get("/v1/tasks/t1", headers={"Authorization": bad})
        assert_error(r, 401, None)
    assert state(api)[0]["items"][0]["text"] == GOOD_TASK["text"]


def test_user_token_on_a_crm_route_is_403(world: Api) -> None:
    api = world
    before = state(api)
    bob = api.token("bob")
    for method, path, body in [
            ("PUT", "/v1/tasks/t1", {"actor_id": "bob", "text": "mine now"}),
            ("GET", "/v1/tasks/t1", None), ("GET", "/v1/tasks", None),
            ("POST", "/v1/tasks/t1/complete", {"by": "bob"}),
            ("DELETE", "/v1/tasks/t1", None),
            ("PUT", "/v1/users/bob", {"name": "Bobby"}),
            ("POST", "/v1/users/bob/tokens", None)]:
        r = api.req(method, path, token=bob, json=body)
        assert_error(r, 403, None)
        assert r.json()["error"]["code"] == "forbidden"
    assert state(api) == before


def test_a_users_token_cannot_see_or_touch_another_users_data(world: Api) -> None:
    api = world
    ann = api.token("ann")
    entry = api.entries("bob")[0]
    before = state(api)
    for method, path in [("GET", "/v1/users/bob/notifications"),
                         ("GET", "/v1/users/bob/notifications/unread-count"),
                         ("POST", f"/v1/users/bob/notifications/{entry['id']}/read"),
                         ("POST", "/v1/users/bob/notifications/read-all"),
                         ("GET", "/v1/users/bob/settings"), ("GET", "/v1/users/bob"),
                         ("GET", "/v1/users/bob/stream")]:
        r = api.req(method, path, token=ann)
        assert_error(r, 404, None)
    r = api.req("PATCH", "/v1/users/bob/settings", token=ann, json={"locale": "en"})
    assert_error(r, 404, None)
    # Nor by naming bob's entry under her own id.
    assert_error(api.req("POST", f"/v1/users/ann/notifications/{entry['id']}/read", token=ann),
                 404, "nid")
    assert state(api) == before
    assert api.unread("bob") == 1


def test_a_user_token_reads_its_own_notifications(world: Api) -> None:
    api = world
    bob = api.token("bob")
    r = api.req("GET", "/v1/users/bob/notifications", token=bob)
    assert r.status_code == 200
    [entry] = r.json()["items"]
    assert entry["kind"] == "task_assigned" and entry["task_id"] == "t1"
    assert entry["title"] == "Новая задача"  # bob reads Russian
    assert api.req("GET", "/v1/users/bob/notifications/unread-count",
                   token=bob).json() == {"count": 1}
    r = api.req("POST", f"/v1/users/bob/notifications/{entry['id']}/read", token=bob)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    assert api.req("GET", "/v1/users/bob/notifications/unread-count",
                   token=bob).json() == {"count": 0}
    r = api.req("GET", "/v1/users/bob/settings", token=bob)
    assert r.status_code == 200 and r.json()["timezone"] == "Europe/Berlin"
    r = api.req("PATCH", "/v1/users/bob/settings", token=bob, json={"locale": "en"})
    assert r.status_code == 200 and r.json()["locale"] == "en"
    api.clock.advance(minutes=1)
    assert api.req("GET", "/v1/users/bob", token=bob).json()["locale"] == "en"
