"""Every state of a member sync, as a team admin sees it in the members page's status block and in the
team page's banner: rendered by the server from the latest run, and the same when an event brings it
to an open page. Checked by what is visible, in a real browser against a real web server."""

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from github_simulator.avatars import avatar_url
from integrations.member_sync.run_events import publish_member_sync
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun
from tests.accessibility import serious_violations
from tests.helpers import LIVE
from tests.stack import github_environment, sign_in, stack_environment, web_server

# One xdist worker runs the whole module: its tests share one web server, started once.
pytestmark = [pytest.mark.xdist_group("test_sync_status_states"), pytest.mark.django_db(transaction=True)]

# A reader half an hour off UTC, so that a time left in UTC shows.
READER_ZONE = "Asia/Kolkata"
NOW = timezone.now().replace(second=0, microsecond=0)
RETRY_AT = NOW + timedelta(minutes=10)


@dataclass(frozen=True)
class State:
    run: dict | None
    label: str
    headline: str
    # What shows besides the badge; everything else in PARTS is hidden.
    visible: frozenset = field(default_factory=frozenset)
    # A run in this state comes to an open page from: the same run syncing, or an older run's error.
    live_from: str = "syncing"


FINISHED = {"started_at": NOW - timedelta(minutes=1), "finished_at": NOW, "fetched": 250, "total": 250}
AN_HOUR_BEFORE = {"started_at": NOW - timedelta(hours=1, minutes=1), "finished_at": NOW - timedelta(hours=1)}
COMPLETE = {**FINISHED, "status": "complete", "members_created": 250}
IMPORTING = "Importing members from acme…"
FAILED = "Importing members from acme failed."


def error(kind, text):
    return {**FINISHED, "status": "error", "error_kind": kind, "error": text}


STATES = {
    "pending": State(
        None, "Never synced", "Members from acme have not been imported yet.", frozenset({"members link"}), live_from=""
    ),
    "queued": State({"status": "queued"}, "Queued", IMPORTING, frozenset({"members link"}), live_from="error"),
    "waiting for a rate limit": State(
        {"status": "queued", "waiting_until": RETRY_AT, "error": "GitHub's rate limit is used up."},
        "Queued", IMPORTING, frozenset({"waiting", "members link"}), live_from="error",
    ),
    "syncing": State(
        {"status": "syncing", "started_at": NOW, "fetched": 200, "total": 1500},
        "Syncing", IMPORTING, frozenset({"progress", "members link"}), live_from="error",
    ),
    "complete": State(COMPLETE, "Complete", "Imported 250 members from acme.", frozenset({"summary", "see members"})),
    "complete with held deactivations": State(
        {**COMPLETE, "members_held": 3}, "Complete", "Imported 250 members from acme.",
        frozenset({"summary", "see members", "held"}),
    ),
    "complete with skipped members": State(
        {**COMPLETE, "members_skipped": 2}, "Complete", "Imported 250 members from acme.",
        frozenset({"summary", "see members", "skipped"}),
    ),
    "credentials error": State(
        error("credentials", "GitHub no longer accepts this connection's token."), "Error", FAILED,
        frozenset({"summary", "retry", "error", "reconnect"}),
    ),
    "installation error": State(
        error("installation", "The GitHub App is no longer installed on acme."), "Error", FAILED,
        frozenset({"summary", "retry", "error", "reinstall"}),
    ),
    "suspended error": State(
        error("suspended", "The App's installation is suspended on GitHub."), "Error", FAILED,
        frozenset({"summary", "retry", "error", "owner"}),
    ),
    "permissions error": State(
        error("permissions", "GitHub refused the GitHub App access to the organization's members."), "Error", FAILED,
        frozenset({"summary", "retry", "error", "owner"}),
    ),
    "github error": State(
        error("github", "GitHub kept failing (HTTP 502)."), "Error", FAILED, frozenset({"summary", "retry", "error"})
    ),
    "interrupted": State(
        error("interrupted", "The sync was interrupted. Press Sync Now."), "Error", FAILED,
        frozenset({"summary", "retry", "error"}),
    ),
}  # fmt: skip

PARTS = {
    "progress": lambda root: root.locator("progress"),
    "waiting": lambda root: root.get_by_text("retrying at"),
    "error": lambda root: root.get_by_role("alert"),
    "reconnect": lambda root: root.get_by_role("link", name="Reconnect GitHub"),
    "reinstall": lambda root: root.get_by_role("link", name="Install the GitHub App again"),
    "owner": lambda root: root.get_by_role("link", name="the App's installation settings on GitHub"),
    "held": lambda root: root.get_by_text("deactivations are on hold"),
    "skipped": lambda root: root.get_by_text("members could not be read"),
    "summary": lambda root: root.get_by_text("Last sync"),
    "see members": lambda root: root.get_by_role("link", name="See the members"),
    "retry": lambda root: root.get_by_role("link", name="Go to the members page to try again"),
    "members link": lambda root: root.get_by_role("link", name="Members from GitHub"),
}


@dataclass(frozen=True)
class Page:
    url: str
    root: str
    parts: frozenset  # the PARTS this page has


PAGES = {
    "members page": Page(
        "/t/acme/github/members/", "#member-sync-status", frozenset(PARTS) - {"see members", "retry", "members link"}
    ),
    "team banner": Page("/t/acme/", "#member-sync-banner", frozenset(PARTS) - {"summary"}),
}
SCREENSHOTS = {
    ("members page", "syncing"): "members-syncing",
    ("members page", "complete"): "members-complete",
    ("members page", "complete with held deactivations"): "members-held",
    ("members page", "credentials error"): "members-error",
}


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker, github_simulator):
    """One web server for the module: the states are rows, and events are published from here. Its
    GitHub is the simulator, whose avatars the pages may then show."""
    env = stack_environment(DEBUG=1, **github_environment(github_simulator))
    with django_db_blocker.unblock(), web_server(env) as web:
        yield web


@pytest.fixture
def acme(team, alice, github_simulator):
    # Connected through the App: its errors link an owner to the installation's settings.
    integration = GitHubIntegration.objects.create(
        team=team, organization_login="acme", connected_by=alice, connection="app", installation_id=60_000_001
    )
    GitHubMember.objects.bulk_create(
        GitHubMember(
            integration=integration,
            github_id=n,
            login=f"member-{n:02d}",
            name=f"Member {n}",
            avatar_url=avatar_url(github_simulator.url, n),
        )
        for n in range(1, 13)
    )
    return integration


@pytest.fixture
def reader(browser, web, alice):
    """A browser context of Alice, an admin, who reads in India."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, timezone_id=READER_ZONE, locale="en-GB")
    sign_in(context, web.url, alice)
    yield context
    context.close()


def run_in(integration, fields):
    return MemberSyncRun.objects.create(integration=integration, trigger="manual", **fields)


def publish(run):
    publish_member_sync(run)


def open_page(context, web, page):
    tab = context.new_page()
    tab.goto(f"{web.url}{page.url}")
    return tab.locator(page.root)


def assert_shows(root, page, state):
    expect(root.get_by_role("status")).to_have_text(state.label)
    if page.root == "#member-sync-banner":
        expect(root.get_by_text(state.headline, exact=True)).to_be_visible()
    for part in page.parts:
        if part in state.visible:
            expect(PARTS[part](root)).to_be_visible()
        else:
            expect(PARTS[part](root)).to_be_hidden()


@pytest.mark.parametrize("where", PAGES)
@pytest.mark.parametrize("name", STATES)
def test_each_state_shows_what_it_should_and_nothing_else(reader, web, acme, screenshot, name, where):
    state, page = STATES[name], PAGES[where]
    pages = []
    if state.run and state.run.get("members_held"):
        held = GitHubMember.objects.filter(integration=acme, github_id__lte=state.run["members_held"])
        held.update(deactivation_held_at=NOW)
    if state.live_from:
        # Open on an earlier state, then the event of this one: what that state showed must go.
        if state.live_from == "syncing":
            run = run_in(acme, STATES["syncing"].run)
        else:
            run_in(acme, STATES["credentials error"].run | AN_HOUR_BEFORE)
        live = open_page(reader, web, page)
        expect(live).to_have_attribute("data-status", state.live_from)
        if state.live_from == "syncing":
            MemberSyncRun.objects.filter(pk=run.pk).update(**state.run)
            run.refresh_from_db()
        else:
            run = run_in(acme, state.run)
        publish(run)
        expect(live).to_have_attribute("data-status", state.run["status"], timeout=LIVE)
        pages.append(live)
    elif state.run:
        run_in(acme, state.run)
    pages.append(open_page(reader, web, page))

    for root in pages:
        assert_shows(root, page, state)
        if where == "members page":
            # The held members themselves, with what an admin can do about them.
            held = root.page.locator("#held-deactivations")
            if "held" in state.visible:
                expect(held.get_by_role("button", name="Confirm")).to_be_visible()
            else:
                expect(held).to_be_hidden()
        # Each state read by keyboard and screen reader as axe-core sees it, live and as rendered.
        assert serious_violations(root.page) == []
    if (where, name) in SCREENSHOTS:
        screenshot(pages[-1].page, SCREENSHOTS[where, name])


def test_times_are_in_the_readers_time_zone_with_utc_on_hover(reader, web, acme):
    waiting = STATES["waiting for a rate limit"].run
    run = run_in(acme, STATES["syncing"].run)
    live = open_page(reader, web, PAGES["team banner"])
    MemberSyncRun.objects.filter(pk=run.pk).update(**waiting)
    publish(MemberSyncRun.objects.get(pk=run.pk))
    rendered = open_page(reader, web, PAGES["team banner"])

    local = RETRY_AT.astimezone(ZoneInfo(READER_ZONE))
    for root in (live, rendered):
        time = root.locator("time", has_text=f"{local:%H:%M}")
        expect(time).to_be_visible(timeout=LIVE)
        expect(time).to_have_attribute("title", f"{RETRY_AT:%H:%M} UTC")
