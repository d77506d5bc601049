"""What people see, in a real browser (Debian's Chromium driven by Playwright) against the real
stack: uvicorn, a rundramatiq worker, Redis and the GitHub simulator."""

import itertools
import time
from collections import Counter

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations.member_sync.run_events import publish_member_sync
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun
from tests import github_webhooks
from tests.helpers import LIVE, free_port, wait_for
from tests.notifications import Receiver
from tests.oauth_flow import onboard_in_browser
from tests.stack import github_environment, own_redis, sign_in, stack_environment, web_server, worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(github, broker):
    return stack_environment(DEBUG=1, **github_environment(github))


def logged_in_page(browser, web, user):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    sign_in(context, web.url, user)
    return context.new_page()


def first_login(github, org="acme"):
    """The login the member table lists first."""
    return min(member.login for member in github.org(org).members)


def test_sign_up_to_the_onboarding_banner_complete(browser, env, github, screenshot):
    """Costs 5-12 s: the whole onboarding in a browser, against a web server and a worker of its own,
    and an import of 3,000 members."""
    # Under way, its total known, until the test has seen it so: the first page takes longer than
    # the interval between progress events, so its progress is published; the next waits.
    github.add_org("acme", size=3000)
    github.set_latency(300)
    github.org("acme").hold(after=100)
    with web_server(env) as web, worker(env):
        page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
        onboard_in_browser(page, web.url, "dana")

        banner = page.locator("#member-sync-banner")
        expect(banner).to_be_visible()
        assert page.url.startswith(f"{web.url}/t/")
        expect(banner).to_contain_text("Importing members from acme")
        expect(banner.locator("progress")).to_be_visible()
        expect(banner).to_contain_text(" of 3000", timeout=LIVE)
        expect(page.get_by_text("Connected to acme. Members syncing in background.")).to_be_visible()
        screenshot(page, "team-banner")
        github.set_latency(0)
        github.org("acme").release()
        expect(banner).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(banner).to_contain_text("Imported 3000 members from acme.")
        expect(banner.locator("progress")).to_be_hidden()

    run = MemberSyncRun.objects.get()
    assert (run.trigger, run.status) == ("onboarding", "complete")


def test_sync_now_to_complete_with_the_members_listed_and_no_polling(browser, env, alice, integration, github):
    """Costs 5-10 s: a web server, a worker and a browser page of their own."""
    with web_server(env) as web, worker(env):
        page = logged_in_page(browser, web, alice)
        page.goto(f"{web.url}/t/acme/github/members/")
        status = page.locator("#member-sync-status")
        expect(status).to_have_attribute("data-status", "pending")

        requests = []
        page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
        page.get_by_role("button", name="Sync Now").click()
        expect(status).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(page.locator("#github-members")).to_contain_text(first_login(github))
        expect(page.locator("#member-sync-status [role=status]")).to_have_text("Complete")
        # The run's changes in one line, put in place from its event: every member added.
        members = str(len(github.org("acme").members))
        expect(page.locator("#member-changes-summary")).to_be_visible()
        expect(page.locator("#member-changes-summary")).to_have_text(f"Changes: +{members}")

    repeated = [request for request, count in Counter(requests).items() if count > 1]
    assert repeated == [], f"requests repeated during the sync: {repeated}"
    assert f"POST {web.url}/t/acme/github/members/sync/" in requests
    assert not any("/sync/progress/" in request for request in requests)


def test_a_second_tab_sees_the_same_updates(browser, env, alice, integration, github):
    """Costs 5-10 s, like every test here: a web server, a worker and a browser page of their own, and a
    sync of 3,000 members."""
    github.add_org("big", size=3000)
    GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login="big", organization_id=None)
    github.org("big").hold(after=100)
    with web_server(env) as web, worker(env):
        first = logged_in_page(browser, web, alice)
        second = first.context.new_page()
        for page in (first, second):
            page.goto(f"{web.url}/t/acme/github/members/")
        first.get_by_role("button", name="Sync Now").click()

        expect(second.locator("#member-sync-status")).to_have_attribute("data-status", "syncing", timeout=LIVE)
        expect(second.locator("#member-sync-status progress")).to_be_visible()
        github.org("big").release()
        expect(second.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(second.locator("#github-members")).to_contain_text(first_login(github, "big"))


def test_the_stream_recovers_after_the_web_server_restarts_mid_sync(browser, env, alice, integration, github):
    """Costs 6-12 s: two web servers in turn, a worker and a sync of 3,000 members."""
    github.add_org("big", size=3000)
    GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login="big", organization_id=None)
    github.org("big").hold(after=100)
    port = free_port()
    with worker(env):
        with web_server(env, port=port) as web:
            page = logged_in_page(browser, web, alice)
            page.goto(f"{web.url}/t/acme/github/members/")
            page.get_by_role("button", name="Sync Now").click()
            expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "syncing", timeout=LIVE)
        # The web server is down while the worker goes on syncing.
        github.org("big").release()
        wait_for(lambda: MemberSyncRun.objects.filter(fetched__gte=1000).exists(), timeout=60, message="progress")
        with web_server(env, port=port):
            expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=60_000)
            expect(page.locator("#member-sync-status [role=status]")).to_have_text("Complete")


def test_the_page_recovers_after_redis_restarts_mid_sync(browser, env, alice, integration, github, tmp_path):
    """Costs 10-16 s: a Redis of its own stopped and started again, and two syncs of 3,000 members
    watched by two pages."""
    github.add_org("big", size=3000)
    GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login="big", organization_id=None)
    big = github.org("big")
    big.hold(after=300)
    web_log = tmp_path / "web.log"
    with own_redis() as redis_server, web_log.open("w") as log:
        env = {**env, "REDIS_URL": redis_server.url, "EVENTS_REDIS_URL": redis_server.url}
        with web_server(env, stderr=log) as web, worker(env):
            watching = logged_in_page(browser, web, alice)
            watching.goto(f"{web.url}/t/acme/github/members/")
            status = watching.locator("#member-sync-status")
            watching.get_by_role("button", name="Sync Now").click()
            expect(status).to_have_attribute("data-status", "syncing", timeout=LIVE)

            # Down until the web process has seen its listener's connection fail, and the worker
            # has gone on syncing without Redis; then back, empty: queues, stored events and the
            # event counter are gone.
            redis_server.stop()
            wait_for(lambda: "Lost the events Redis" in web_log.read_text(), message="the web process to see Redis go")
            big.hold(after=1000)
            wait_for(lambda: MemberSyncRun.objects.get().fetched >= 1000, message="the sync to go on")
            redis_server.start()
            restarted_at = timezone.now()
            big.release()
            expect(status).to_have_attribute("data-status", "complete", timeout=60_000)
            expect(status.get_by_role("status")).to_have_text("Complete")
            assert MemberSyncRun.objects.get().finished_at > restarted_at, "the sync ended before the restart"

            opened_after = watching.context.new_page()
            opened_after.goto(f"{web.url}/t/acme/github/members/")
            big.hold(after=100)  # until both pages are seen syncing
            opened_after.get_by_role("button", name="Sync Now").click()
            for page in (opened_after, watching):
                expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "syncing", timeout=LIVE)
            big.release()
            for page in (opened_after, watching):
                expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=LIVE)
            expect(watching.locator('[data-role="live-off"]')).to_be_hidden()


# How long a fault may hide a run's state from an open page once the part that failed is back.
BACK_WITHIN_MS = 5000


def test_an_open_page_shows_the_progress_made_while_redis_was_down_once_it_is_back(
    browser, env, alice, integration, github
):
    """Costs 14-20 s: a Redis of its own stopped for 5 s under a sync of 3,000 members read slowly,
    watched by a page; then the rest of the sync."""
    github.add_org("big", size=3000)
    GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login="big", organization_id=None)
    big = github.org("big")
    # Each page of 100 members takes longer than the interval between progress events, so every
    # page's progress is published (or, with Redis down, fails to be): the state the page must
    # reach is the one the sync is held at.
    github.set_latency(300)
    big.hold(after=300)
    with own_redis() as redis_server:
        env = {**env, "REDIS_URL": redis_server.url, "EVENTS_REDIS_URL": redis_server.url}
        with web_server(env) as web, worker(env):
            page = logged_in_page(browser, web, alice)
            page.goto(f"{web.url}/t/acme/github/members/")
            status = page.locator("#member-sync-status")
            progress_text = status.locator('[data-role="progress-text"]')
            page.get_by_role("button", name="Sync Now").click()
            expect(progress_text).to_have_text("300 of 3000", timeout=LIVE)

            # Down for 5 s, during which the sync reads on to 1,000 and is held there: every event
            # of that progress fails to be published. Back empty (no persistence).
            redis_server.stop()
            stopped_at = time.monotonic()
            big.hold(after=1000)
            wait_for(lambda: MemberSyncRun.objects.get().fetched >= 1000, message="the sync to go on")
            time.sleep(max(0.0, 5 - (time.monotonic() - stopped_at)))  # the outage's length, not a wait for a state
            redis_server.start()
            back_at = time.monotonic()

            expect(status).to_have_attribute("data-status", "syncing")
            expect(progress_text).to_be_visible()
            expect(progress_text).to_have_text("1000 of 3000", timeout=BACK_WITHIN_MS)
            print(f"the page showed the progress {time.monotonic() - back_at:.2f} s after Redis was back")

            github.set_latency(0)
            big.release()
            expect(status).to_have_attribute("data-status", "complete", timeout=LIVE)
            expect(status.get_by_role("status")).to_have_text("Complete")


def test_a_page_whose_stream_was_down_shows_the_run_as_it_is_when_the_store_lost_what_it_missed(
    browser, env, alice, integration, github
):
    """Costs 10-16 s: a web server stopped and started again, and a Redis of its own restarted
    between, under a sync of 3,000 members watched by a page."""
    github.add_org("big", size=3000)
    GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login="big", organization_id=None)
    big = github.org("big")
    big.hold(after=300)
    port = free_port()
    with own_redis() as redis_server:
        env = {**env, "REDIS_URL": redis_server.url, "EVENTS_REDIS_URL": redis_server.url}
        with worker(env):
            with web_server(env, port=port) as web:
                page = logged_in_page(browser, web, alice)
                page.goto(f"{web.url}/t/acme/github/members/")
                status = page.locator("#member-sync-status")
                progress_text = status.locator('[data-role="progress-text"]')
                page.get_by_role("button", name="Sync Now").click()
                expect(status).to_have_attribute("data-status", "syncing", timeout=LIVE)
                wait_for(lambda: MemberSyncRun.objects.get().fetched >= 300, message="the sync to reach 300")
            # The page's stream is down while the sync reads on to 1,000 (its events published and
            # stored), then Redis restarts empty: no replay holds them any more.
            big.hold(after=1000)
            wait_for(lambda: MemberSyncRun.objects.get().fetched >= 1000, message="the sync to go on")
            redis_server.restart()
            with web_server(env, port=port):
                back_at = time.monotonic()
                expect(progress_text).to_be_visible()
                expect(progress_text).to_have_text("1000 of 3000", timeout=BACK_WITHIN_MS)
                print(f"the page showed the progress {time.monotonic() - back_at:.2f} s after the web server was back")
                big.release()
                expect(status).to_have_attribute("data-status", "complete", timeout=LIVE)
                expect(page.locator("#github-members")).to_contain_text(first_login(github, "big"))


def test_a_tab_over_the_users_stream_cap_says_live_updates_are_off(browser, env, alice, integration):
    with web_server({**env, "EVENTS_MAX_STREAMS_PER_USER": "1"}) as web:
        first = logged_in_page(browser, web, alice)
        with first.expect_response(lambda response: "/events/" in response.url):
            first.goto(f"{web.url}/t/acme/github/members/")
        second = first.context.new_page()
        second.goto(f"{web.url}/t/acme/github/members/")

        expect(second.locator('[data-role="live-off"]')).to_be_visible(timeout=LIVE)
        expect(second.locator('[data-role="live-off"]')).to_contain_text("Close some tabs")
        expect(first.locator('[data-role="live-off"]')).to_be_hidden()


def test_a_page_spreads_its_reconnections_over_a_window_that_doubles(browser, env, alice, integration):
    """Costs about 4 s: three refused reconnections waited out (1, 2 and 4 s windows, halved here)."""
    asked_at, answered = [], []

    def shed(route):
        answered.append(route.request.url)
        if len(answered) <= 3:
            route.fulfill(status=503, headers={"Retry-After": "1"}, body="Busy.\n")
        else:
            route.continue_()

    with web_server(env) as web:
        page = logged_in_page(browser, web, alice)
        # Each delay is the middle of its window: a random draw of 0.5.
        page.add_init_script("Math.random = () => 0.5;")
        page.route("**/events/**", shed)
        page.on("request", lambda request: "/events/" in request.url and asked_at.append(time.monotonic()))
        with page.expect_request("**/events/**"):
            page.goto(f"{web.url}/t/acme/github/members/")
        for _ in range(3):  # the reconnections, each waited for as the browser makes it
            with page.expect_request("**/events/**", timeout=20_000):
                pass

        gaps = [later - earlier for earlier, later in itertools.pairwise(asked_at)]
        assert [round(gap * 2) / 2 for gap in gaps] == [0.5, 1.0, 2.0], gaps
        run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="complete")
        publish_member_sync(run)
        expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(page.locator('[data-role="live-off"]')).to_be_hidden()


def first_stream_answered_then_reopened(browser, web, alice, body, *, random_draw=None):
    """The page's first stream answered with `body` (then closed), the next passed on: when the page
    asked for each, monotonic."""
    asked_at = []

    def answered_once(route):
        if len(asked_at) == 1:
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)
        else:
            route.continue_()

    page = logged_in_page(browser, web, alice)
    if random_draw is not None:
        page.add_init_script(f"Math.random = () => {random_draw};")
    page.route("**/events/**", answered_once)
    page.on("request", lambda request: "/events/" in request.url and asked_at.append(time.monotonic()))
    with page.expect_request("**/events/**"):
        page.goto(f"{web.url}/t/acme/github/members/")
    with page.expect_request("**/events/**", timeout=20_000):
        pass
    return page, asked_at


def test_a_page_turned_away_comes_back_when_the_server_said(browser, env, alice, integration):
    with web_server(env) as web:
        body = 'retry: 1500\nevent: stream-busy\ndata: {"retry": 1500}\n\n'
        page, asked_at = first_stream_answered_then_reopened(browser, web, alice, body)

        assert 1.4 < asked_at[1] - asked_at[0] < 2.5
        run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="complete")
        publish_member_sync(run)
        expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(page.locator('[data-role="live-off"]')).to_be_hidden()


def test_a_dropped_stream_comes_back_within_the_window_the_stream_said_to_spread_over(browser, env, alice, integration):
    """Costs about 3 s: the reconnection waited out, in the middle of a 6 s window."""
    with web_server(env) as web:
        body = 'event: stream-reopen\ndata: {"spread": 6000}\n\nevent: stream-open\ndata:\n\n'
        page, asked_at = first_stream_answered_then_reopened(browser, web, alice, body, random_draw=0.5)

        assert 2.8 < asked_at[1] - asked_at[0] < 4.0  # half of 6 s, not of the 1 s window
        run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="complete")
        publish_member_sync(run)
        expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=LIVE)


def test_an_error_is_shown_with_what_to_do(browser, env, alice, integration, github):
    """Costs 5-10 s: a web server, a worker and a browser page of their own."""
    github.inject("bad_credentials", times=None)
    with web_server(env) as web, worker(env):
        page = logged_in_page(browser, web, alice)
        page.goto(f"{web.url}/t/acme/github/members/")
        page.get_by_role("button", name="Sync Now").click()
        status = page.locator("#member-sync-status")
        expect(status).to_have_attribute("data-status", "error", timeout=LIVE)
        expect(status.get_by_role("alert")).to_contain_text("Reconnect GitHub")
        expect(status.locator("progress")).to_be_hidden()


def test_held_deactivations_appear_live_and_go_after_confirm(browser, env, alice, integration, github):
    """Costs 5-10 s: a web server, a worker, a browser page and two syncs."""
    with web_server(env) as web, worker(env):
        page = logged_in_page(browser, web, alice)
        page.goto(f"{web.url}/t/acme/github/members/")
        status = page.locator("#member-sync-status")
        held = page.locator("#held-deactivations")
        page.get_by_role("button", name="Sync Now").click()
        expect(status).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(held).to_be_hidden()

        github.org("acme").remove_members(100)  # 40% of the members at once
        page.get_by_role("button", name="Sync Now").click()
        expect(held).to_be_visible(timeout=LIVE)
        expect(held).to_have_attribute("data-count", "100")
        expect(status).to_contain_text("100 deactivations are on hold")

        page.get_by_role("button", name="Confirm").click()
        expect(held).to_be_hidden(timeout=LIVE)
        expect(held).to_have_attribute("data-count", "0")

    assert GitHubMember.objects.filter(integration=integration, is_active=True).count() == 150


def test_a_signed_member_added_delivery_shows_the_member_on_an_open_page_without_a_reload(
    browser, env, alice, integration, github
):
    """Costs 5-10 s: a web server, a worker, a browser page and a webhook delivery through them."""
    env = {**env, "GITHUB_WEBHOOK_SECRET": github_webhooks.SECRET}
    with web_server(env) as web, worker(env):
        # The simulator, as the App installed on acme, delivers to this server
        # (docs/github-simulator.md#what-it-speaks).
        github.app.configure(webhook_url=f"{web.url}/github/webhook/", webhook_secret=github_webhooks.SECRET)
        github.install_app("acme")
        page = logged_in_page(browser, web, alice)
        page.goto(f"{web.url}/t/acme/github/members/")
        page.evaluate("window.sameDocument = true")

        (newcomer,), (delivery,) = github.add_members("acme", 1)

        expect(page.locator("#github-members td.login")).to_have_text([newcomer.login], timeout=LIVE)
        expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(page.locator("#member-changes-summary")).to_be_visible()
        expect(page.locator("#member-changes-summary")).to_have_text("Changes: +1")
        assert page.evaluate("window.sameDocument") is True
        assert github.webhooks.get(delivery).status == 202

    run = MemberSyncRun.objects.get()
    assert (run.trigger, run.status, run.members_created) == ("webhook", "complete", 1)


def test_an_admin_sets_up_notifications_and_sees_the_test_delivered(browser, env, alice, integration):
    """Costs 3-5 s: a web server and a browser page of their own, and a receiver on this machine
    (which DEBUG's NOTIFICATIONS_ALLOW_PRIVATE_URLS lets the product post to)."""
    receiver = Receiver()
    try:
        with web_server(env) as web:
            page = logged_in_page(browser, web, alice)
            page.goto(f"{web.url}/t/acme/github/members/")
            page.get_by_role("link", name="Notifications").click()
            secret = page.locator("#new-secret").input_value()
            page.get_by_label("Endpoint URL").fill(receiver.url)
            page.get_by_label("Secret", exact=True).fill(secret)
            page.get_by_role("button", name="Save").click()
            expect(page.locator("#notification-deliveries")).to_be_visible()

            page.get_by_role("button", name="Send test").click()

            row = page.locator("#notification-deliveries tr[data-type=test]")
            expect(row).to_be_visible()
            expect(row).to_have_attribute("data-status", "delivered")
            expect(row.locator("td.http-status")).to_have_text("200")
            expect(page.get_by_role("button", name="Redeliver")).to_be_visible()
        [message] = receiver.received
        assert message.verified(secret)["type"] == "test"
    finally:
        receiver.close()
