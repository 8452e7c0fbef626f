"""The /emulator/ admin API: accounts, inspection, counters, clients, reset, persistence."""

from __future__ import annotations

import json

import httpx
from google.oauth2.credentials import Credentials
from googleapiclient.http import BatchHttpRequest

from syncd.emulator import EmulatorServer

from .support import APP_CREATED, connect, new_email, service_for, timed


def test_create_account_returns_usable_tokens(emulator):
    email = new_email()
    tokens = httpx.post(f"{emulator.base_url}/emulator/accounts",
                        json={"email": email, "time_zone": "Europe/Moscow"}).json()
    assert tokens["scope"] == APP_CREATED and tokens["token_uri"] == emulator.token_uri
    creds = Credentials(tokens["access_token"], refresh_token=tokens["refresh_token"],
                        token_uri=tokens["token_uri"], client_id=tokens["client_id"],
                        client_secret=tokens["client_secret"])
    created = service_for(emulator, creds).calendars().insert(
        body={"summary": "CRM tasks"}).execute()
    assert created["timeZone"] == "Europe/Moscow"  # new calendars take the account's zone
    bad = httpx.post(f"{emulator.base_url}/emulator/accounts", json={"email": "nobody"})
    assert bad.status_code == 400


def test_inspect_calendars_and_events_including_deleted(emulator, account, calendar_id):
    events = account.service.events()
    kept = events.insert(calendarId=calendar_id, body=timed(
        "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z")).execute()
    gone = events.insert(calendarId=calendar_id, body=timed(
        "2030-01-02T09:00:00Z", "2030-01-02T10:00:00Z")).execute()
    events.delete(calendarId=calendar_id, eventId=gone["id"]).execute()
    base = f"{emulator.base_url}/emulator/accounts/{account.email}"
    calendars = httpx.get(f"{base}/calendars").json()["items"]
    assert {c["id"] for c in calendars} == {account.email, calendar_id}
    listed = httpx.get(f"{base}/calendars/{calendar_id}/events").json()["items"]
    assert [(e["id"], e["status"]) for e in listed] == [(kept["id"], "confirmed"),
                                                        (gone["id"], "cancelled")]
    assert httpx.get(f"{base}/calendars/nope/events").status_code == 404


def test_counters_separate_round_trips_from_api_requests(emulator, account, calendar_id):
    events = account.service.events()
    httpx.post(f"{emulator.base_url}/emulator/counters/reset")
    batch = BatchHttpRequest(batch_uri=emulator.batch_uri)
    for _ in range(5):
        batch.add(events.insert(calendarId=calendar_id, body=timed(
            "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z")))
    batch.execute()
    events.list(calendarId=calendar_id).execute()
    counters = httpx.get(f"{emulator.base_url}/emulator/counters").json()
    assert counters["http_by_kind"]["batch"] == 1 and counters["http_by_kind"]["api"] == 1
    assert counters["api_requests"] == 6 and counters["batch_items"] == 5
    assert counters["by_method"] == {"calendar.events.insert": 5, "calendar.events.list": 1}
    assert counters["by_status"] == {"200": 6}
    assert counters["by_account"] == {account.email: 6}


def test_registered_clients_and_client_secrets_files(emulator):
    client = httpx.post(f"{emulator.base_url}/emulator/clients", json={
        "type": "web", "redirect_uris": ["http://127.0.0.1:8080/oauth/google/callback"]}).json()
    secrets = httpx.get(
        f"{emulator.base_url}/emulator/clients/{client['client_id']}/secrets").json()
    assert secrets == {"web": {
        "client_id": client["client_id"], "project_id": "syncd-emulator",
        "auth_uri": emulator.auth_uri, "token_uri": emulator.token_uri,
        "auth_provider_x509_cert_url": f"{emulator.base_url}/oauth2/v1/certs",
        "client_secret": client["client_secret"],
        "redirect_uris": ["http://127.0.0.1:8080/oauth/google/callback"]}}
    default = httpx.get(f"{emulator.base_url}/emulator/client-secrets").json()
    assert default["installed"]["client_id"] == emulator.settings.default_client_id


def test_runtime_config_round_trip(emulator):
    url = f"{emulator.base_url}/emulator/config"
    assert httpx.patch(url, json={"access_token_ttl": 120}).json()["access_token_ttl"] == 120
    assert httpx.get(url).json()["access_token_ttl"] == 120
    assert httpx.patch(url, json={"max_batch_size": 5}).status_code == 400


def test_reset_and_state_file_round_trip(tmp_path):
    path = str(tmp_path / "emulator.json")
    with EmulatorServer(state_file=path) as first:
        account = connect(first)
        calendar = account.service.calendars().insert(body={"summary": "saved"}).execute()["id"]
        events = account.service.events()
        event = events.insert(calendarId=calendar, body=timed(
            "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z", tz="Asia/Tokyo")).execute()
        first_page = events.list(calendarId=calendar).execute()
    saved = json.loads((tmp_path / "emulator.json").read_text(encoding="utf-8"))
    assert saved["accounts"][0]["email"] == account.email
    with EmulatorServer(state_file=path) as second:
        # The grant, the event and even the sync token survive the restart.
        service = service_for(second, Credentials(
            None, refresh_token=account.tokens["refresh_token"], token_uri=second.token_uri,
            client_id=account.tokens["client_id"], client_secret=account.tokens["client_secret"]))
        again = service.events().get(calendarId=calendar, eventId=event["id"]).execute()
        assert again["start"] == event["start"] and again["etag"] == event["etag"]
        delta = service.events().list(calendarId=calendar,
                                      syncToken=first_page["nextSyncToken"]).execute()
        assert delta["items"] == []
        assert httpx.post(f"{second.base_url}/emulator/reset").json() == {"ok": True}
        assert httpx.get(f"{second.base_url}/emulator/accounts").json() == {"accounts": []}
        assert httpx.get(f"{second.base_url}/emulator/client-secrets").status_code == 200
