from tests.gcal.conftest import Mirror, add_people


def test_G1_connect_creates_the_dedicated_calendar_and_mirrors_open_tasks(mirror: Mirror):
    add_people(mirror, "ann", "bob")
    mirror.task("t1", "ann", text="Call the client", type="call", responsible_id="bob",
                due_at="2026-03-02T15:00:00+01:00")
    mirror.connect("bob")
    cals = mirror.emu.control.calendars("bob@example.com")
    assert [c["summary"] for c in cals if c["summary"] == "CRM tasks"] == ["CRM tasks"]
    events = mirror.events("bob")
    assert [e["summary"] for e in events] == ["Call: Call the client"]
    assert events[0]["start"]["dateTime"].startswith("2026-03-02T15:00:00")
