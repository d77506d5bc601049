"""`make cluster` when one of its parts fails under a sync (issue 11): Redis restarted, a worker
killed, PostgreSQL restarted, Pushpin restarted. Each time nothing is lost: the run ends complete
or clearly failed, the members are all written or untouched, and an open page shows the end.
A web process killed under an open page is tests/test_cluster.py's."""

import os
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest
from playwright.sync_api import expect
from psycopg.rows import dict_row

from bench.stream_clients import StreamClients
from tests.helpers import LIVE, http_status, wait_for
from tests.oauth_flow import onboard_in_browser
from tests.stack import Cluster, OwnRedis, github_environment, own_postgres, pids_connected_to
from tests.test_cluster import onboard

# One xdist worker runs the whole module: its tests share one cluster, started once.
pytestmark = pytest.mark.xdist_group("test_cluster_faults")

# How long the cluster's streams last here (EVENTS_STREAM_MAX_SECONDS, 15 minutes by default): Pushpin
# follows a stream's next link by its end at the latest (integrations/live/eventstream.py,
# held_by_pushpin; 2 minutes at most otherwise), and what the stream missed is replayed then.
NEXT_LINK_SECONDS = 40

# Long enough for a worker to notice that Redis, a worker or PostgreSQL came back.
RECOVERY = 120


@pytest.fixture(scope="module")
def cluster(github_simulator):
    """One cluster for the faults that leave it whole: on a Redis of its own that a test may
    restart, and with workers that hand a dead worker's messages on within seconds."""
    redis_server = OwnRedis()
    redis_server.start()
    cluster = Cluster(
        REDIS_URL=redis_server.url,
        DRAMATIQ_HEARTBEAT_TIMEOUT_MS=5000,
        # One broker command in ten also looks for dead workers' messages (a thousandth by default).
        DRAMATIQ_MAINTENANCE_CHANCE=100_000,
        # One user's pages by the hundred (test_pushpin_restarted_under_200_open_pages).
        EVENTS_MAX_STREAMS_PER_USER=5000,
        # A stream that missed an event has it within this (test_pushpin_restarted_under_200_open_pages).
        EVENTS_STREAM_MAX_SECONDS=NEXT_LINK_SECONDS,
        **github_environment(github_simulator),
    )
    cluster.redis = redis_server
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        redis_server.stop()
        print("".join(cluster.output))


def query(cluster, sql, *params):
    with psycopg.connect(cluster.env["DATABASE_URL"], row_factory=dict_row, connect_timeout=2) as connection:
        return connection.execute(sql, params).fetchall()


def latest_run(cluster, username):
    """The latest run of the team this user onboarded."""
    runs = query(
        cluster,
        """SELECT run.* FROM integrations_membersyncrun run
           JOIN integrations_githubintegration integration ON integration.id = run.integration_id
           JOIN teams_membership membership ON membership.team_id = integration.team_id
           JOIN auth_user person ON person.id = membership.user_id
           WHERE person.username = %s ORDER BY run.id DESC LIMIT 1""",
        username,
    )
    return runs[0] if runs else None


def ended(cluster, username, *, after=None):
    """The team's latest run once it has ended (a run newer than `after`)."""
    run = latest_run(cluster, username)
    newer = run and (after is None or run["id"] > after["id"])
    return run if newer and run["status"] in ("complete", "error") else None


def under_way(cluster, username, fetched):
    run = latest_run(cluster, username)
    return run if run and run["status"] == "syncing" and run["fetched"] >= fetched else None


def active_runs(cluster, run):
    return query(
        cluster,
        "SELECT id FROM integrations_membersyncrun WHERE integration_id = %s AND status IN ('queued', 'syncing')",
        run["integration_id"],
    )


def active_members(cluster, run):
    rows = query(
        cluster,
        "SELECT count(*) AS count FROM integrations_githubmember WHERE integration_id = %s AND is_active",
        run["integration_id"],
    )
    return rows[0]["count"]


def test_a_sync_under_a_redis_restart_ends_and_the_open_page_shows_how(browser, cluster, github):
    """Costs 3-15 s: a Redis restarted under a cluster's sync, and the workers noticing it."""
    github.add_org("acme", size=3000)
    github.org("acme").hold(after=500)
    page = onboard(browser, cluster, "grace")
    banner = page.locator("#member-sync-banner")
    expect(banner.locator("progress")).to_be_visible(timeout=LIVE)
    wait_for(lambda: under_way(cluster, "grace", fetched=500), message="a sync under way")

    # Without persistence: the broker's queues, the stored events and their ids are gone.
    cluster.redis.restart()
    github.org("acme").release()

    run = wait_for(lambda: ended(cluster, "grace"), timeout=RECOVERY, message="the run to end")
    assert active_runs(cluster, run) == []
    if run["status"] == "complete":
        assert active_members(cluster, run) == run["total"] == 3000
        expect(banner).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(banner).to_contain_text("Imported 3000 members from acme.")
    else:
        assert run["error"]
        assert active_members(cluster, run) == 0
        expect(banner).to_have_attribute("data-status", "error", timeout=LIVE)
        expect(banner.get_by_role("alert")).to_have_text(run["error"])


def test_a_sync_whose_worker_is_killed_is_finished_by_another(browser, cluster, github):
    """Costs 7-20 s: the 5 s heartbeat timeout after which another worker takes the dead one's message."""
    github.add_org("acme", size=3000)
    github.org("acme").hold(after=500)
    page = onboard(browser, cluster, "heidi")
    first = wait_for(lambda: under_way(cluster, "heidi", fetched=500), message="a sync under way")
    # The worker process reading GitHub (its request held) is the one running the sync.
    github_port = urlsplit(github.url).port
    syncing = wait_for(lambda: pids_connected_to(github_port, cluster.pids("dramatiq")), message="the sync's worker")
    assert len(syncing) == 1

    os.kill(syncing[0], signal.SIGKILL)
    github.org("acme").release()

    run = wait_for(lambda: ended(cluster, "heidi"), timeout=RECOVERY, message="the run to end")
    assert (run["status"], run["error"]) == ("complete", "")
    assert run["started_at"] > first["started_at"]  # claimed again, by another worker
    assert active_members(cluster, run) == run["total"] == 3000
    expect(page.locator("#member-sync-banner")).to_contain_text("Imported 3000 members from acme.", timeout=LIVE)


def test_a_page_gets_what_was_published_while_pushpin_was_down(browser, cluster, github):
    """Costs 4-10 s: Pushpin killed and started again, and the page's stream opened anew; the page
    shows the run's end within 5 s of Pushpin passing requests on again."""
    github.add_org("acme", size=1500)
    github.org("acme").hold(after=100)
    [supervisor] = cluster.pids("scripts/stack.py cluster")
    page = browser.new_context().new_page()
    # Live before Pushpin goes. The progress bar shows already in the page as rendered, and a page
    # whose script had not come through Pushpin when it was killed never goes live, whatever the
    # wait: the one way found for this test to fail (in 1 of 30 runs Pushpin was killed 47 ms after
    # the page had opened its stream).
    with page.expect_response(lambda response: "/events/" in response.url, timeout=LIVE):
        onboard_in_browser(page, cluster.url, "ivan")
    banner = page.locator("#member-sync-banner")
    expect(banner.locator("progress")).to_be_visible(timeout=LIVE)

    # The supervisor is paused until the run has ended, so that its end is published while
    # Pushpin is surely down; then it starts Pushpin again as it would have at once.
    os.kill(supervisor, signal.SIGSTOP)
    try:
        pushpin = cluster.kill_pushpin()
        github.org("acme").release()
        run = wait_for(lambda: ended(cluster, "ivan"), timeout=RECOVERY, message="the run to end")
        assert run["status"] == "complete"
        expect(banner).to_have_attribute("data-status", "syncing")
    finally:
        os.kill(supervisor, signal.SIGCONT)
    # A Pushpin still starting accepts connections before it passes them on; on a loaded machine
    # that takes longer than a page is given to recover once it does.
    login = f"{cluster.url}/accounts/login/"
    wait_for(lambda: http_status(login) == 200, timeout=RECOVERY, message="Pushpin to pass requests on")
    back_at = time.monotonic()
    assert cluster.pids("pushpin --config") != [pushpin]
    # The page opens its stream again within seconds and shows the run as it is now.
    expect(banner).to_have_attribute("data-status", "complete", timeout=5000)
    expect(banner).to_contain_text("Imported 1500 members from acme.")
    print(f"the page showed the end {time.monotonic() - back_at:.2f} s after Pushpin passed requests on again")


def test_a_sync_after_postgresql_restarted_completes(browser, github_simulator, github):
    """Costs 12-40 s: a PostgreSQL server of its own (initdb), a cluster on it, and that server restarted."""
    github.add_org("acme", size=300)
    with own_postgres() as postgres:
        cluster = Cluster(DATABASE_URL=postgres.url, **github_environment(github_simulator))
        try:
            cluster.start()
            page = onboard(browser, cluster, "judy")
            expect(page.locator("#member-sync-banner")).to_have_attribute("data-status", "complete", timeout=LIVE)

            postgres.restart()

            response = page.goto(f"{page.url}github/members/")
            assert response.ok, response.status
            first = latest_run(cluster, "judy")
            page.get_by_role("button", name="Sync Now").click()
            run = wait_for(lambda: ended(cluster, "judy", after=first), timeout=RECOVERY, message="a second run")
            expect(page.locator("#member-sync-status")).to_have_attribute("data-status", "complete", timeout=LIVE)
            assert (run["status"], run["total"], active_members(cluster, run)) == ("complete", 300, 300)
        finally:
            cluster.stop()
            print("".join(cluster.output))


def test_pushpin_killed_is_started_again_once_its_port_is_free(cluster):
    """Costs 1-3 s: Pushpin's runner killed with 3,000 connections open, and the one started in its
    place serving."""
    [runner] = cluster.pids("pushpin --config")
    # Connections make its services take longer to let go of the port once killed.
    held = [socket.create_connection(("127.0.0.1", cluster.port)) for _ in range(3000)]
    already = len(cluster.output)

    os.kill(runner, signal.SIGKILL)  # its services go on holding its ports until the supervisor kills them
    for connection in held:
        connection.close()

    login = f"{cluster.url}/accounts/login/"
    wait_for(lambda: cluster.pids("pushpin --config") not in ([], [runner]) and http_status(login) == 200,
             timeout=RECOVERY, message="a new Pushpin serving")  # fmt: skip
    output = "".join(cluster.output[already:])
    assert "Address already in use" not in output
    assert output.count("starting it again") == 1, output


def test_a_new_pushpin_waits_for_the_port_the_killed_one_held():
    from scripts.stack import wait_until_free

    held = socket.create_server(("127.0.0.1", 0))
    port = held.getsockname()[1]
    closing = threading.Event()

    def close():
        closing.set()  # before the close: a wait that returns sooner finds it unset
        held.close()

    threading.Timer(0.3, close).start()

    assert wait_until_free([port], timeout=10)
    assert closing.is_set()


def test_a_port_never_freed_is_reported_after_the_timeout():
    from scripts.stack import wait_until_free

    with socket.create_server(("127.0.0.1", 0)) as held:
        assert not wait_until_free([held.getsockname()[1]], timeout=0.2)


def test_pushpin_restarted_under_200_open_pages_brings_every_page_back_and_the_site_answers(browser, cluster, github):
    """Costs 15-30 s: 200 pages reconnecting as the page's script does (bench/stream_clients.py), from
    the event id the page was rendered with, a Pushpin killed and started again under them, and a sync
    run while they come back, whose end every page receives (live, or replayed as it reopens). A
    guard: 200 pages came back before issue 21's work too; bench.pushpin_restart measures the storms
    of 1,000 and 5,000.

    A few reopened streams in a hundred may miss the end as it is published (docs/reliability.md,
    "did not receive the run's end"; the cause is not settled): each has it once Pushpin follows its
    next link, at most NEXT_LINK_SECONDS later (the cluster's streams last that long). The test
    waits that long before it calls a page without the end, so a run with such a miss costs up to
    40 s more."""
    github.add_org("acme", size=30)
    page = onboard(browser, cluster, "petra")
    expect(page.locator("#member-sync-banner")).to_have_attribute("data-status", "complete", timeout=LIVE)
    team_path = urlsplit(page.url).path.rstrip("/")
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    # Without the rendered id, a page that had received no event yet came back "from now", and missed
    # what was published while it was away; a page is rendered with one (test_members_page.py -k hooks).
    events_url = page.locator("#member-sync-banner").get_attribute("data-events-url")
    pages = StreamClients(f"{cluster.url}{events_url}", cookies=cookies, count=200, reconnect=True)
    try:
        pages.open()
        killed_at = time.time()
        cluster.kill_pushpin()

        login = f"{cluster.url}/accounts/login/"
        wait_for(lambda: http_status(login) == 200, timeout=RECOVERY, message="Pushpin to pass requests on")
        before = latest_run(cluster, "petra")
        page.goto(f"{cluster.url}{team_path}/github/members/")
        page.get_by_role("button", name="Sync Now").click()
        answers = []
        reopened = []
        reopening = threading.Thread(target=lambda: reopened.extend(pages.reopened(killed_at, timeout=60)))
        reopening.start()
        while reopening.is_alive():
            answers.append(http_status(login))
        reopening.join()

        assert all(at is not None for at in reopened), f"{reopened.count(None)} of 200 pages not back"
        assert [status for status in answers if status != 200] == []
        run = wait_for(lambda: ended(cluster, "petra", after=before), timeout=RECOVERY, message="the run")
        marker = f'"run": {run["id"]}, "status": "complete"'.encode()
        assert len(pages.wait_for_all(marker, timeout=NEXT_LINK_SECONDS + 10)) == 200
    finally:
        pages.close()
