"""The web page (SPEC §6 "Web page"; seed: the bell top-left, its red counter, pop-ups next to
it, the Profile page) in headless chromium against a real daemon."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Route, expect

from tests.conftest import API_KEY
from tests.web.conftest import Site, Watch, screenshot

XSS = "<img src=x onerror=alert(1)>"
VAPID = ("BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM")


def test_sign_in_keeps_the_token_and_takes_it_out_of_the_address_bar(page: Page, site: Site) -> None:
    site.user("bob", name="Bob Stone")
    token = site.token("bob")
    page.goto(f"{site.url}/?token={token}#/profile")
    expect(page.locator("h1")).to_have_text("Profile")
    assert "token" not in page.url and page.url.endswith("#/profile")
    assert page.evaluate("localStorage.getItem('syncd.token')") == token
    page.goto(site.url)  # later visits need no link
    expect(page.locator("h1")).to_have_text("Hello, Bob Stone")
    expect(page.locator("body")).to_have_attribute("data-stream", "live")

    page.locator("#menu-button").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page.locator(".gate")).to_contain_text("You have signed out.")
    assert page.evaluate("localStorage.getItem('syncd.token')") is None

    page.goto(f"{site.url}/?token=not-a-token")
    expect(page.locator(".gate h1")).to_have_text("Sign in from your CRM")
    expect(page.locator(".gate")).to_contain_text("no longer valid")
    assert page.evaluate("localStorage.getItem('syncd.token')") is None
    expect(page.locator("#topbar")).to_be_hidden()

    page.goto(f"{site.url}/?token={API_KEY}")  # a server key is not a user
    expect(page.locator(".gate")).to_contain_text("API key")


def test_a_task_from_another_user_pops_up_and_counts_without_reload(page: Page, site: Site) -> None:
    site.user("ann", name="Ann Lee")
    site.user("bob", name="Bob Stone")
    site.open(page, "bob")
    badge = page.locator("#badge")
    expect(badge).to_be_hidden()

    site.task("t1", "ann", text="Call Acme about the renewal", author_id="ann", responsible_id="bob")
    popup = page.locator(".popup", has_text="Call Acme about the renewal")
    expect(popup).to_be_visible()
    expect(popup.locator(".popup-title")).to_have_text("New task")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("1")
    expect(page.locator("#bell")).to_have_attribute("aria-label", "1 unread notification")
    expect(page).to_have_title("(1) Notifications")
    page.wait_for_timeout(250)  # let the pop-up finish fading in
    screenshot(page, "bell.png", clip={"x": 0, "y": 0, "width": 480, "height": 200})

    site.task("t2", "ann", text="Send the proposal to Globex", author_id="ann", responsible_id="bob")
    expect(badge).to_have_text("2")
    expect(page.locator(".popup")).to_have_count(2)
    popup.locator(".popup-close").click()  # closable
    expect(popup).to_have_count(0)
    expect(badge).to_have_text("2")  # closing a pop-up is not reading the entry

    # N2: a task set for oneself lands in the center only: counted, no pop-up.
    site.task("t3", "bob", text="Note to self", author_id="bob", responsible_id="bob")
    expect(badge).to_have_text("3")
    page.wait_for_timeout(300)
    expect(page.locator(".popup", has_text="Note to self")).to_have_count(0)


def test_pop_ups_dismiss_themselves_and_clicking_one_reads_it(page: Page, site: Site) -> None:
    site.user("ann")
    site.user("bob")
    site.open(page, "bob")
    page.evaluate("document.body.dataset.popupMs = '1200'")
    site.task("t1", "ann", text="First", author_id="ann", responsible_id="bob")
    first = page.locator(".popup", has_text="First")
    expect(first).to_be_visible()
    expect(first).to_have_count(0)  # gone after a few seconds by itself
    expect(page.locator("#badge")).to_have_text("1")

    site.task("t2", "ann", text="Second", author_id="ann", responsible_id="bob")
    second = page.locator(".popup", has_text="Second")
    second.locator(".popup-body").click()
    expect(second).to_have_count(0)
    expect(page.locator("#badge")).to_have_text("1")
    assert site.unread("bob") == 1


def test_completing_a_task_takes_its_entries_away_live(page: Page, site: Site) -> None:
    site.user("ann")
    site.user("bob")
    site.task("t1", "ann", text="Call Acme", author_id="ann", responsible_id="bob")
    site.task("t2", "ann", text="Email Globex", author_id="ann", responsible_id="bob")
    site.open(page, "bob")
    badge = page.locator("#badge")
    expect(badge).to_have_text("2")

    # A pop-up whose task is completed goes away with it.
    site.task("t3", "ann", text="Quick one", author_id="ann", responsible_id="bob")
    expect(page.locator(".popup", has_text="Quick one")).to_be_visible()
    expect(badge).to_have_text("3")
    site.complete("t3", "bob")
    expect(page.locator(".popup", has_text="Quick one")).to_have_count(0)
    expect(badge).to_have_text("2")

    page.locator("#bell").click()
    entries = page.locator("#center-list .entry")
    expect(entries).to_have_count(2)
    site.complete("t1", "bob")  # N9: its entries leave the center, read or not
    expect(page.locator(".entry", has_text="Call Acme")).to_have_count(0)
    expect(entries).to_have_count(1)
    expect(badge).to_have_text("1")
    site.complete("t2", "bob")
    expect(entries).to_have_count(0)
    expect(badge).to_be_hidden()
    expect(page.locator("#center-status")).to_have_text("No notifications yet")


def test_the_center_pages_marks_read_and_reads_all(page: Page, site: Site) -> None:
    site.user("ann", name="Ann Lee")
    site.user("bob", name="Bob Stone")
    for i in range(1, 21):
        site.task(f"old{i}", "ann", text=f"Follow up with lead #{i}", type="follow_up",
                  author_id="ann", responsible_id="bob")
    site.task("m1", "ann", text="Quarterly review with Initech", type="meeting",
              author_id="ann", responsible_id="bob", due_at="2031-03-04T09:30:00+00:00")
    site.task("c1", "ann", text="Send the proposal to Globex", author_id="ann",
              responsible_id="bob", due_date="2031-03-05")
    site.task("c2", "ann", text="Call Acme about the renewal", author_id="ann", responsible_id="bob")
    site.open(page, "bob")
    badge = page.locator("#badge")
    expect(badge).to_have_text("23")

    page.locator("#bell").click()
    entries = page.locator("#center-list .entry")
    expect(entries).to_have_count(20)  # one page
    expect(entries.first).to_contain_text("Call Acme about the renewal")  # newest first
    expect(entries.nth(1)).to_contain_text("Send the proposal to Globex")
    page.locator(".entry", has_text="Quarterly review").click()  # a click reads it
    expect(page.locator(".entry.unread", has_text="Quarterly review")).to_have_count(0)
    expect(badge).to_have_text("22")
    page.mouse.move(900, 600)  # no hover highlight in the picture
    page.wait_for_timeout(200)
    screenshot(page, "center.png", clip={"x": 0, "y": 0, "width": 560, "height": 640})

    more = page.locator("#load-more")
    expect(more).to_be_visible()
    more.click()
    expect(entries).to_have_count(23)
    expect(entries.last).to_contain_text("Follow up with lead #1")
    expect(more).to_be_hidden()

    page.locator("#mark-all").click()
    expect(badge).to_be_hidden()
    expect(page.locator(".entry.unread")).to_have_count(0)
    expect(page.locator("#mark-all")).to_be_disabled()
    assert site.unread("bob") == 0
    expect(page).to_have_title("Notifications")


def test_profile_toggles_persist_across_reload(page: Page, site: Site) -> None:
    site.user("bob", name="Bob Stone", email="bob@example.com")
    site.open(page, "bob")
    page.locator("#menu-button").click()  # the icon top-left → "Profile", as in the seed
    page.locator("#menu-profile").click()
    expect(page.locator("h1")).to_have_text("Profile")

    # Every toggle a channel carries, and no others.
    assert page.locator("input.switch").count() == 3 + 5 + 3
    expect(page.locator("input[name='email.task_overdue']")).to_have_count(0)
    save = page.locator("#save")
    expect(save).to_be_disabled()
    page.locator("input[name='email.task_due']").uncheck()
    page.locator("input[name='browser.task_overdue']").uncheck()
    page.locator("input[name='mobile.task_completed']").uncheck()
    page.locator("#timezone").select_option("Europe/Berlin")
    page.locator("#all-day-at").fill("08:30")
    expect(page.locator("#save-status")).to_have_text("Unsaved changes")
    save.click()
    expect(page.locator("#toast")).to_have_text("Saved")
    expect(page.locator("#save")).to_be_disabled()

    server = site.settings("bob")
    assert server["channels"]["email"]["task_due"] is False
    assert server["channels"]["browser"]["task_overdue"] is False
    assert server["channels"]["mobile"]["task_completed"] is False
    assert server["channels"]["email"]["task_assigned"] is True
    assert (server["timezone"], server["all_day_notify_at"]) == ("Europe/Berlin", "08:30")

    page.reload()
    expect(page.locator("h1")).to_have_text("Profile")
    expect(page.locator("input[name='email.task_due']")).not_to_be_checked()
    expect(page.locator("input[name='browser.task_overdue']")).not_to_be_checked()
    expect(page.locator("input[name='mobile.task_completed']")).not_to_be_checked()
    expect(page.locator("input[name='email.task_assigned']")).to_be_checked()
    expect(page.locator("#timezone")).to_have_value("Europe/Berlin")
    expect(page.locator("#all-day-at")).to_have_value("08:30")
    expect(page.locator("#gc-state")).to_have_text(re.compile("Off|On|Connecting|Paused|Needs"))
    page.wait_for_timeout(150)
    screenshot(page, "profile.png", full_page=True)

    # The user's locale switches the whole page.
    page.locator("#locale").select_option("ru")
    page.locator("#save").click()
    expect(page.locator("h1")).to_have_text("Профиль")
    expect(page.locator("#center-title")).to_have_text("Уведомления")
    assert site.settings("bob")["locale"] == "ru"
    page.reload()
    expect(page.locator("h1")).to_have_text("Профиль")
    expect(page.locator("#save")).to_have_text("Сохранить")


def test_the_browser_toggle_silences_pop_ups_but_not_the_center(page: Page, site: Site) -> None:
    site.user("ann")
    site.user("bob")
    site.open(page, "bob", "#/profile")
    page.locator("input[name='browser.task_assigned']").uncheck()
    page.locator("#save").click()
    expect(page.locator("#toast")).to_have_text("Saved")
    site.task("t1", "ann", text="Quiet task", author_id="ann", responsible_id="bob")
    expect(page.locator("#badge")).to_have_text("1")
    page.wait_for_timeout(300)
    expect(page.locator(".popup")).to_have_count(0)


def test_task_text_is_shown_as_text_never_as_markup(page: Page, site: Site, watch: Watch) -> None:
    site.user("ann", name="<b onmouseover=alert(2)>Ann</b>")
    site.user("bob")
    site.open(page, "bob")
    site.task("t1", "ann", text=XSS, author_id="ann", responsible_id="bob")

    popup = page.locator(".popup")
    expect(popup).to_be_visible()
    expect(popup.locator(".popup-body")).to_contain_text(XSS)
    expect(popup.locator(".popup-body")).to_contain_text("<b onmouseover=alert(2)>Ann</b>")
    popup.hover()
    page.locator("#bell").click()
    entry = page.locator("#center-list .entry")
    expect(entry).to_have_count(1)
    expect(entry.get_by_text(XSS, exact=False)).to_be_visible()
    entry.hover()

    page.reload()  # the same through the REST path
    page.locator("#bell").click()
    expect(page.locator("#center-list .entry")).to_contain_text(XSS)
    page.wait_for_timeout(300)
    assert page.locator("img").count() == 0
    assert page.locator("#view b, #center b, #popups b").count() == 0
    assert watch.dialogs == []


def test_calendar_and_browser_push_work_with_or_without_their_endpoints(page: Page, site: Site) -> None:
    site.user("bob")
    # Force the fallbacks regardless of what this server has: no calendar endpoint, no Web Push.
    page.route(re.compile(r".*/v1/users/bob/calendar$"), lambda route: route.fulfill(
        status=404, json={"error": {"code": "not_found", "message": "Not Found"}}))
    page.route("**/v1/webpush/public-key", lambda route: route.fulfill(
        status=404, json={"error": {"code": "not_found", "message": "Not Found"}}))
    site.token("bob")
    # Where the OAuth callback sends the browser back to.
    page.goto(f"{site.url}/?token={site.tokens['bob']}&calendar=connected#profile")
    expect(page.locator("#toast")).to_have_text("Google Calendar connected.")
    assert page.url == f"{site.url}/#profile"
    expect(page.locator("#gc-state")).to_have_text("Off")  # from settings.google_calendar

    page.locator("#push-enable").click()
    expect(page.locator("#push-status")).to_have_text("Browser push is not set up on this server yet.")
    expect(page.locator("#push-enable")).to_be_enabled()

    # With a key: the service worker registers; headless chromium has no push service, so the
    # subscription itself fails, and the page says so instead of breaking.
    page.context.grant_permissions(["notifications"])
    page.unroute("**/v1/webpush/public-key")
    page.route("**/v1/webpush/public-key", lambda route: route.fulfill(json={"public_key": VAPID}))
    page.locator("#push-enable").click()
    expect(page.locator("#push-status")).to_have_text(
        re.compile("Browser notifications are on|Could not enable browser notifications"))
    assert page.evaluate("navigator.serviceWorker.getRegistration('/')"
                         ".then(r => r && r.active && r.active.scriptURL)").endswith("/static/sw.js")

    # With the calendar endpoint: its state, last sync and error; Disconnect asks first.
    page.unroute(re.compile(r".*/v1/users/bob/calendar$"))
    page.route(re.compile(r".*/v1/users/bob/calendar$"), lambda route: route.fulfill(json={
        "state": "needs_reconnect", "last_push_at": "2026-03-02T09:00:00+00:00",
        "last_pull_at": "2026-03-02T09:05:00+00:00", "last_error": "invalid_grant"}))
    disconnected: list[str] = []
    page.route("**/v1/users/bob/calendar/disconnect", lambda route: (
        disconnected.append(route.request.method), route.fulfill(json={"state": "off"})))
    page.reload()
    expect(page.locator("#gc-state")).to_have_text("Needs reconnecting")
    expect(page.locator(".calendar")).to_contain_text("Last error: invalid_grant")
    expect(page.locator(".calendar")).to_contain_text(re.compile(r"Last sync: .*2 March 2026.*09:05"))
    page.locator("#gc-disconnect").click()
    page.locator("#gc-disconnect-confirm").click()
    expect(page.locator("#gc-state")).to_have_text("Off")
    assert disconnected == ["POST"]

    # Connect: POST connect → {authorization_url} → the browser goes there.
    page.route("**/v1/users/bob/calendar/connect", lambda route: route.fulfill(
        json={"authorization_url": "https://accounts.google.test/o/oauth2/auth?state=s1"}))
    page.route("https://accounts.google.test/**", lambda route: route.fulfill(
        content_type="text/html", body="<title>consent</title>"))
    page.locator("#gc-connect").click()
    page.wait_for_url("https://accounts.google.test/**")
    expect(page).to_have_title("consent")


def test_a_reconnected_stream_resyncs_the_counter(page: Page, site: Site) -> None:
    """N13: the first connection is a stale one that says 5 and then drops; the browser
    reconnects to the real stream, whose first event puts the counter right."""
    site.user("ann")
    site.user("bob")
    site.task("t1", "ann", text="While away", author_id="ann", responsible_id="bob")
    site.task("t2", "ann", text="Also while away", author_id="ann", responsible_id="bob")
    connections: list[str] = []

    def stream(route: Route) -> None:
        connections.append(route.request.url)
        if len(connections) == 1:
            route.fulfill(status=200, content_type="text/event-stream", body=(
                "retry: 2500\n\nevent: unread_count\ndata: {\"count\": 5}\n\n"))
        else:
            route.continue_()

    page.route(re.compile(r"/v1/users/bob/stream\?"), stream)
    page.goto(f"{site.url}/?token={site.token('bob')}")
    expect(page.locator("#badge")).to_have_text("5")
    expect(page.locator("#badge")).to_have_text("2")
    expect(page.locator("body")).to_have_attribute("data-stream", "live")
    assert len(connections) >= 2
    assert all("access_token=" in url for url in connections)
    site.task("t3", "ann", text="Live again", author_id="ann", responsible_id="bob")
    expect(page.locator("#badge")).to_have_text("3")
