from tests.conftest import Api


def test_new_task_reaches_the_center(api: Api) -> None:
    api.user("ann")
    api.user("bob")
    api.task("t1", "ann", text="Call the client", responsible_id="bob",
             due_at="2026-03-02T12:00:00+00:00")
    assert [e["kind"] for e in api.entries("bob")] == ["task_assigned"]
    assert api.unread("bob") == 1
