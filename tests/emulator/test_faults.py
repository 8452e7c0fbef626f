"""Quotas and injected faults, configured through the /emulator/ admin API and observed
through googleapiclient."""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter

import httplib2
import httpx
import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from .support import connect, error_of, timed


def admin(emulator, verb: str, endpoint: str, **body):
    response = httpx.request(verb, f"{emulator.base_url}/emulator/{endpoint}", json=body or None)
    assert response.status_code == 200, response.text
    return response.json()


def outcome(request) -> str | int:
    """200, or "<status> <reason>" of the HttpError the call raised."""
    try:
        request.execute()
    except HttpError as exc:
        reason = json.loads(exc.content)["error"]["errors"][0]["reason"]
        return f"{exc.status_code} {reason}"
    return 200


def test_per_user_rate_limit(emulator, account):
    admin(emulator, "PATCH", "config", user_rate_limit=5)
    colors = account.service.colors()
    results = [outcome(colors.get()) for _ in range(6)]
    assert results == [200] * 5 + ["403 userRateLimitExceeded"]
    with pytest.raises(HttpError) as excinfo:
        colors.get().execute()
    assert error_of(excinfo)[2]["errors"][0]["domain"] == "usageLimits"
    emulator.advance_clock(61)  # a minute later the window has room again
    assert outcome(colors.get()) == 200


def test_per_user_limit_counts_quota_user_separately(emulator, account):
    admin(emulator, "PATCH", "config", user_rate_limit=2)
    colors = account.service.colors()
    assert [outcome(colors.get(quotaUser="a")) for _ in range(3)] == \
        [200, 200, "403 userRateLimitExceeded"]
    assert outcome(colors.get(quotaUser="b")) == 200


def test_per_project_rate_limit_is_429(emulator):
    first, second = connect(emulator), connect(emulator)
    first.service.colors().get().execute()
    second.service.colors().get().execute()  # both refreshed before the limit is set
    emulator.advance_clock(61)
    admin(emulator, "PATCH", "config", project_rate_limit=4, user_rate_limit=None)
    results = [outcome(a.service.colors().get()) for a in (first, second) * 3]
    assert results == [200] * 4 + ["429 rateLimitExceeded"] * 2


def test_quota_exceeded_switch(emulator, account):
    other = connect(emulator)
    admin(emulator, "PUT", "quota", quota_exceeded=True, accounts=[account.email])
    assert outcome(account.service.colors().get()) == "403 quotaExceeded"
    assert outcome(other.service.colors().get()) == 200
    admin(emulator, "PUT", "quota", quota_exceeded=False, accounts=[account.email])
    assert outcome(account.service.colors().get()) == 200
    admin(emulator, "PUT", "quota", quota_exceeded=True)
    assert outcome(other.service.colors().get()) == "403 quotaExceeded"


def test_random_error_rates_by_status(emulator, account):
    emulator.faults.rng.seed(7)
    admin(emulator, "PUT", "faults", error_rates={"503": 0.2, "429": 0.1})
    colors = account.service.colors()
    seen = Counter(outcome(colors.get()) for _ in range(300))
    assert set(seen) == {200, "503 backendError", "429 rateLimitExceeded"}
    assert 35 <= seen["503 backendError"] <= 85 and 12 <= seen["429 rateLimitExceeded"] <= 50


def test_error_rates_can_target_methods(emulator, account, calendar_id):
    admin(emulator, "PUT", "faults", error_rates={"500": 1.0}, methods=["events.list"])
    assert outcome(account.service.colors().get()) == 200
    assert outcome(account.service.events().list(calendarId=calendar_id)) == "500 backendError"


def test_scripted_faults_hit_the_next_n_matching_calls(emulator, account, calendar_id):
    events = account.service.events()
    admin(emulator, "POST", "faults/scripted", method="events.insert", count=3, status=500)
    admin(emulator, "POST", "faults/scripted", method="events.list", count=1, status=403,
          reason="quotaExceeded")
    body = timed("2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z")
    assert outcome(events.list(calendarId=calendar_id)) == "403 quotaExceeded"
    results = [outcome(events.insert(calendarId=calendar_id, body=body)) for _ in range(4)]
    assert results == ["500 backendError"] * 3 + [200]
    assert admin(emulator, "GET", "faults")["scripted"] == []


def test_scripted_faults_apply_to_calls_inside_a_batch(emulator, account, calendar_id):
    admin(emulator, "POST", "faults/scripted", path="/events$", http_method="POST", count=2,
          status=503)
    events = account.service.events()
    statuses = []
    batch = BatchHttpRequest(batch_uri=emulator.batch_uri, callback=lambda rid, resp, exc:
                             statuses.append(exc.status_code if exc else 200))
    for _ in range(4):
        batch.add(events.insert(calendarId=calendar_id,
                                body=timed("2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z")))
    batch.execute()
    assert statuses == [503, 503, 200, 200]


def test_added_latency(emulator, account):
    colors = account.service.colors()
    colors.get().execute()
    admin(emulator, "PUT", "faults", latency_ms=300)
    started = time.monotonic()
    colors.get().execute()
    assert time.monotonic() - started >= 0.3


def test_dropped_connections(emulator, account):
    colors = account.service.colors()
    colors.get().execute()
    # httplib2 retries a request once on a broken connection, so drop two in a row.
    admin(emulator, "POST", "faults/scripted", method="colors.get", count=2, drop=True)
    with pytest.raises((OSError, http.client.HTTPException, httplib2.HttpLib2Error)):
        colors.get().execute()
    assert colors.get().execute()["kind"] == "calendar#colors"
    admin(emulator, "PUT", "faults", drop_rate=1.0)
    with pytest.raises((OSError, http.client.HTTPException, httplib2.HttpLib2Error)):
        colors.get().execute()


def test_bad_fault_configuration_is_rejected(emulator):
    response = httpx.put(f"{emulator.base_url}/emulator/faults",
                         json={"error_rates": {"503": 0.8, "500": 0.5}})
    assert response.status_code == 400
    response = httpx.post(f"{emulator.base_url}/emulator/faults/scripted",
                          json={"method": "events.insert", "count": 1})
    assert response.status_code == 400
