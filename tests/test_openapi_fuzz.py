"""Schemathesis over the app's own OpenAPI: no input, valid or not, yields a 5xx (SPEC §6), and
every response matches the schema the app publishes.

The app runs on a throwaway SQLite database seeded with users, tasks and notifications, and
the generated cases are steered part of the time onto those existing ids, so the fuzzer gets
past "404 no such user" and exercises the paths that read and write stored data. Every
operation is covered except the endless SSE stream.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from syncd.api.app import create_app
from syncd.clock import ManualClock
from syncd.daemon import build
from tests.conftest import API_KEY, START, Api, make_settings

USERS = ["ann", "bob", "u-1"]
TASKS = ["t-1", "t-2", "t-3", "t-4", "t-5"]  # t-4, t-5: for the fuzzer to create
DOOMED = ["d-1", "d-2", "d-3"]  # what DELETE gets, so the other tasks live on
AUTH = {"Authorization": f"Bearer {API_KEY}"}
USER_FIELDS = ("actor_id", "author_id", "responsible_id", "completed_by", "by")


# The schema is read when the module is collected, from an app on a throwaway SQLite database
# that is seeded only when the tests run (fixture below), then removed.
# Google is configured (a made-up OAuth client) but unreachable: nothing leaves this machine.
_ROOT = Path(tempfile.mkdtemp(prefix="syncd-fuzz-"))
atexit.register(shutil.rmtree, _ROOT, True)  # also when the tests were deselected
_NOWHERE = "http://127.0.0.1:9"
(_ROOT / "google-client.json").write_text(json.dumps({"web": {
    "client_id": "fuzz.apps.googleusercontent.com", "client_secret": "fuzz-secret",
    "auth_uri": f"{_NOWHERE}/o/oauth2/auth", "token_uri": f"{_NOWHERE}/token",
    "redirect_uris": ["http://127.0.0.1:8080/oauth/google/callback"]}}))
_NODE = build(make_settings(_ROOT, google={
    "client_file": str(_ROOT / "google-client.json"), "token_key_file": str(_ROOT / "token.key"),
    "api_endpoint": _NOWHERE, "auth_uri": f"{_NOWHERE}/o/oauth2/auth",
    "token_uri": f"{_NOWHERE}/token"}), ManualClock(START))
_APP = create_app(_NODE)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP).exclude(path_regex=r"/stream$")


@pytest.fixture(scope="module", autouse=True)
def seeded() -> Iterator[None]:
    with TestClient(_APP) as client:
        api = Api(client, _NODE, _NODE.clock)  # type: ignore[arg-type]
        for u in USERS:
            api.user(u)
        api.task("t-1", "ann", text="Call", responsible_id="bob", due_at="2026-03-02T09:03:00Z")
        api.task("t-2", "bob", text="Report", responsible_id="bob", due_date="2026-03-02")
        api.task("t-3", "ann", text="Done", responsible_id="u-1")
        api.req("POST", "/v1/tasks/t-3/complete", json={"by": "u-1"})
        for d in DOOMED:
            api.task(d, "ann", text="To delete", responsible_id="u-1")
        api.advance(minutes=5)
    _NODE.worker.start(1)  # a running node: /healthz is healthy, jobs run as they come due
    yield
    _NODE.worker.stop()
    _NODE.db.dispose()


@schema.hook("flatmap_path_parameters")
def known_ids(context, path_parameters):
    """Often, a path `id` (and a notification `nid`) is one that exists."""
    if not isinstance(path_parameters, dict) or "id" not in path_parameters:
        return st.just(path_parameters)
    known = USERS
    if context.operation.path.startswith("/v1/tasks"):
        known = DOOMED if context.operation.method.upper() == "DELETE" else TASKS
    existing = {"id": st.sampled_from(known)}
    if "nid" in path_parameters:
        existing["nid"] = st.integers(1, 8)
    return st.one_of(st.fixed_dictionaries(existing).map(
        lambda ids: {**path_parameters, **ids}), st.just(path_parameters))


@schema.hook("flatmap_body")
def known_users(context, body):
    """Often, the users a body names exist; and a task upsert is often one that can succeed
    (one kind of deadline, text and responsible for a new task), so tasks get created and
    changed, not only refused."""
    if not isinstance(body, dict) or not set(USER_FIELDS) & set(body):
        return st.just(body)
    present = [f for f in USER_FIELDS if f in body]
    known = st.fixed_dictionaries({f: st.sampled_from(USERS) for f in present})
    if context.operation.path != "/v1/tasks/{id}":
        return st.one_of(known.map(lambda ids: {**body, **ids}), st.just(body))
    sane = {k: v for k, v in body.items() if k != "due_date" or body.get("due_at") is None}
    if sane.get("text") is None:
        sane["text"] = "fuzzed task"
    creatable = st.fixed_dictionaries({"responsible_id": st.sampled_from(USERS)}, optional={
        "due_at": st.sampled_from(["2026-03-02T09:07:00+01:00", "2026-03-03T12:00:00Z"])})
    return st.one_of(st.tuples(known, creatable).map(lambda t: {**sane, **t[0], **t[1]}),
                     known.map(lambda ids: {**body, **ids}), st.just(body))


@schema.parametrize()
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance,
        response_schema_conformance])
