"""One emulator for the whole session, driven through the real Google client libraries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.emulator import EmulatorServer

from .support import Account, connect


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_faults(emulator: EmulatorServer) -> Iterator[None]:
    """Faults and runtime options are server-wide: never let one test leak them."""
    options = emulator.settings.runtime_options()
    yield
    emulator.faults.clear()
    emulator.control.config(**options)


@pytest.fixture
def account(emulator: EmulatorServer) -> Account:
    return connect(emulator)


@pytest.fixture
def calendar_id(account: Account) -> str:
    """The app's own calendar, as the daemon creates it (G1)."""
    created = account.service.calendars().insert(
        body={"summary": "CRM tasks", "timeZone": "Europe/Moscow"}).execute()
    return created["id"]
