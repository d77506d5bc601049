"""The whole pipeline with real processes: a `rundramatiq` worker and a uvicorn web server on the
real Redis broker and event bus, the GitHub simulator over HTTP, and SSE clients."""

import os
import signal
from pathlib import Path

import pytest
import requests
from django.db import connection

from bench.stream_clients import EventStream, StreamClients
from integrations.live.channels import current_event_id
from integrations.member_sync import tasks
from integrations.models import GitHubIntegration, MemberSyncRun
from tests.helpers import wait_for
from tests.stack import (
    github_environment,
    session_cookies,
    stack_environment,
    web_server,
    worker,
)

pytestmark = pytest.mark.django_db(transaction=True)

Status = MemberSyncRun.Status


@pytest.fixture
def env(github, broker):
    return stack_environment(**github_environment(github))


def post_sync_now(web_url, cookies):
    http = requests.Session()
    http.cookies.update(cookies)
    http.get(f"{web_url}/t/acme/github/members/", timeout=10).raise_for_status()
    return http.post(
        f"{web_url}/t/acme/github/members/sync/",
        headers={"X-CSRFToken": http.cookies["csrftoken"], "X-Member-Sync-Partial": "status", "Referer": web_url},
        timeout=10,
    )


def run_status():
    run = MemberSyncRun.objects.order_by("-pk").first()
    return run.status if run else None


def test_an_event_sent_by_the_worker_reaches_the_browser(alice, integration, env):
    """Costs about 4 s: a web server and a worker of its own."""
    cookies = session_cookies(alice)
    with web_server(env) as web, worker(env):
        stream = EventStream(f"{web.url}/t/acme/events/", cookies=cookies)
        stream.next("stream-open")

        response = post_sync_now(web.url, cookies)
        assert response.status_code == 202

        queued = stream.next(where=lambda data: data["status"] == "queued")
        syncing = stream.next(where=lambda data: data["status"] == "syncing")
        complete = stream.next(where=lambda data: data["status"] == "complete")
        stream.close()

    assert queued["run"] == syncing["run"] == complete["run"]
    assert complete["trigger"] == "manual"
    assert complete["result"] == {
        "created": 250, "updated": 0, "deactivated": 0, "unchanged": 0, "total": 250, "held": 0, "skipped": 0,
    }  # fmt: skip
    assert (complete["fetched"], complete["total"], complete["error"]) == (250, 250, None)
    assert set(complete) >= {"run", "status", "trigger", "fetched", "total", "result", "error", "at"}
    assert integration.access_token not in str(complete)


def test_a_member_of_another_team_gets_no_event(alice, charlie, other_team, integration, env):
    with web_server(env) as web:
        stranger = EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(charlie))
        anonymous = EventStream(f"{web.url}/t/acme/events/")
        member = EventStream(f"{web.url}/t/acme/events/", cookies=session_cookies(alice))
        member.next("stream-open")

        tasks.request_member_sync(integration=integration, trigger="manual", requested_by=alice)
        member.next(where=lambda data: data["status"] == "queued")

        for denied in (stranger, anonymous):
            assert denied.next("stream-error")["condition"] == "forbidden"
            with pytest.raises(AssertionError, match="closed"):
                denied.next("member-sync", timeout=5)
        for stream in (stranger, anonymous, member):
            stream.close()


def test_a_client_reconnecting_with_last_event_id_receives_what_it_missed(alice, integration, env):
    """Costs about 4 s: a web server and a worker of its own."""
    cookies = session_cookies(alice)
    with web_server(env) as web, worker(env):
        stream = EventStream(f"{web.url}/t/acme/events/", cookies=cookies)
        stream.next("stream-open")
        tasks.request_member_sync(integration=integration, trigger="manual", requested_by=alice)
        stream.next(where=lambda data: data["status"] == "queued")
        missed_from = stream.last_event_id
        stream.close()

        wait_for(lambda: run_status() == Status.COMPLETE, timeout=60, message="the run to complete")

        resumed = EventStream(f"{web.url}/t/acme/events/", cookies=cookies, last_event_id=missed_from)
        assert resumed.next(where=lambda data: data["status"] == "syncing")
        assert resumed.next(where=lambda data: data["status"] == "complete")["result"]["created"] == 250
        resumed.close()


def test_the_page_renders_the_event_id_the_stream_starts_from(client, alice, team, integration, broker):
    tasks.request_member_sync(integration=integration, trigger="manual", requested_by=alice)
    rendered_id = current_event_id(team.pk)
    client.force_login(alice)

    page = client.get("/t/acme/github/members/").content.decode()

    assert rendered_id
    assert f"lastEventId={requests.utils.quote(rendered_id, safe='')}" in page


def start_a_long_sync(integration, alice, github, *, latency_ms=50, held_after=None):
    """A sync of 3,000 members (30 pages), slow enough to interrupt (or held after `held_after`
    members until the test releases the organization "big"): returns once it is under way."""
    github.add_org("big", size=3000)
    if held_after is not None:
        github.org("big").hold(after=held_after)
    GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login="big", organization_id=None)
    github.set_latency(latency_ms)
    integration.refresh_from_db()
    tasks.request_member_sync(integration=integration, trigger="manual", requested_by=alice)
    wait_for(
        lambda: MemberSyncRun.objects.filter(status=Status.SYNCING, fetched__gte=300).exists(),
        timeout=60,
        message="the sync to be under way",
    )


def the_run_once_ended(timeout=90):
    wait_for(lambda: run_status() in (Status.COMPLETE, Status.ERROR), timeout=timeout, message="the run to end")
    return MemberSyncRun.objects.get()


def test_a_run_whose_worker_is_killed_mid_sync_still_ends(alice, integration, env, github):
    """Costs about 8 s: two workers in turn, and the 3 s heartbeat timeout after which the second takes
    the dead one's message."""
    # A dead worker's message goes to another after this much silence; short, for the test.
    env = {**env, "DRAMATIQ_HEARTBEAT_TIMEOUT_MS": "3000", "DRAMATIQ_MAINTENANCE_CHANCE": "1000000"}

    with worker(env) as first:
        # Held at 300 members until the worker is dead, however fast it would have read the rest.
        start_a_long_sync(integration, alice, github, latency_ms=0, held_after=300)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)

    assert run_status() == Status.SYNCING
    github.org("big").release()
    with worker(env):
        run = the_run_once_ended()

    assert run.status == Status.COMPLETE, run.error
    assert run.total == 3000


def database_connections_of(process):
    """Database connections the web server process holds: open handles on the SQLite file, or
    established TCP connections to PostgreSQL's port, read from /proc."""
    if connection.vendor == "sqlite":
        database = Path(connection.settings_dict["NAME"]).resolve()
        return sum(1 for target in _fd_targets(process.pid) if target == str(database))
    port = int(connection.settings_dict["PORT"] or 5432)
    sockets = {target[len("socket:[") : -1] for target in _fd_targets(process.pid) if target.startswith("socket:[")}
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port, state, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9]
            held += remote_port == port and state == "01" and inode in sockets
    return held


def _fd_targets(pid):
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return targets


# On PostgreSQL too (.ci/run): there every connection is one of the pool's.
@pytest.mark.postgres
def test_500_open_streams_hold_few_database_connections(alice, integration, env):
    """Costs about 9 s: 500 streams opened against one web server, all at once (none shed: what is
    measured is what open streams hold, not how a storm of openings is spread)."""
    cookies = session_cookies(alice)
    with web_server({**env, "EVENTS_MAX_STREAMS_PER_USER": "500", "WEB_MAX_PENDING_REQUESTS": "2000"}) as web:
        streams = StreamClients(f"{web.url}/t/acme/events/", cookies=cookies, count=500)
        try:
            streams.open()
            # Under load a stream's thread can still be between its access check's query and the
            # connection's release when the last stream opens: what matters is that none is kept.
            # The count the wait saw is the one reported: read again, it can catch a stream still opening.
            seen = []
            wait_for(
                lambda: seen.append(database_connections_of(web)) or seen[-1] < 10,
                message="the streams' connections to be released",
            )
            held = seen[-1]

            tasks.request_member_sync(integration=integration, trigger="manual", requested_by=alice)
            received = streams.wait_for_all(b'"status": "queued"')
        finally:
            streams.close()

    print(f"database connections held by the web process with 500 open streams: {held}")
    assert held < 10
    assert len(received) == 500


def test_a_run_interrupted_by_a_worker_shutdown_is_finished_by_the_next_worker(alice, integration, env, github):
    """Costs about 8 s: two workers in turn, the first stopped mid-sync."""
    with worker(env) as first:
        start_a_long_sync(integration, alice, github)
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)

    assert run_status() == Status.QUEUED
    with worker(env):
        run = the_run_once_ended()
    assert run.status == Status.COMPLETE, run.error


def test_a_run_over_its_time_limit_is_recorded_as_failed(alice, integration, env, github):
    """Costs about 5 s: a worker, and a sync that must outlast its 2 s time limit."""
    env = {**env, "MEMBER_SYNC_TIME_LIMIT_SECONDS": "2"}
    with worker(env):
        start_a_long_sync(integration, alice, github, latency_ms=150)  # 30 pages: over 4 s
        run = the_run_once_ended()

    assert run.status == Status.ERROR
    assert run.error.startswith("The sync took longer than 2 seconds and was stopped.")
    integration.refresh_from_db()
    assert integration.member_sync_status == Status.ERROR
