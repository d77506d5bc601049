"""The run service and the actor, in this process: requesting a sync, each transition, the
failure policy and the periodic check. The actor runs synchronously through its function; the
queue is the real Redis broker."""

import threading
from datetime import timedelta
from unittest import mock

import dramatiq
import pytest
from django.conf import settings
from django.db import IntegrityError, connection
from django.test import Client
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage, TimeLimitExceeded

from integrations import words
from integrations.crypto import TokenUnreadable
from integrations.member_sync import runs, tasks
from integrations.member_sync.run_events import member_sync_payload
from integrations.member_sync.sync import Progress
from integrations.member_sync.tasks import sync_github_members
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun, StagedMember

Status = MemberSyncRun.Status
Trigger = MemberSyncRun.Trigger
ErrorKind = MemberSyncRun.ErrorKind

# On PostgreSQL too (.ci/run): conditional UPDATEs, the constraint's IntegrityError, bulk inserts that ignore conflicts.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def queued_messages(broker):
    return broker.client.llen(f"{broker.namespace}:member_sync")


def request_run(integration, user=None):
    return tasks.request_member_sync(integration=integration, trigger=Trigger.MANUAL, requested_by=user)


def test_a_request_queues_a_run_and_enqueues_it_after_commit(integration, broker):
    run, created = request_run(integration)

    assert created
    assert run.status == Status.QUEUED
    integration.refresh_from_db()
    assert integration.member_sync_status == Status.QUEUED
    assert queued_messages(broker) == 1


def test_a_double_click_starts_one_run(integration, broker):
    first, _ = request_run(integration)
    second, created = request_run(integration)

    assert not created
    assert second.pk == first.pk
    assert MemberSyncRun.objects.count() == 1
    assert queued_messages(broker) == 1


def test_two_admins_at_once_start_one_run(integration, broker):
    barrier = threading.Barrier(2)
    results = []

    def request():
        barrier.wait()
        try:
            results.append(request_run(integration))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(created for _, created in results) == [False, True]
    assert len({run.pk for run, _ in results}) == 1
    assert MemberSyncRun.objects.count() == 1
    assert queued_messages(broker) == 1


def test_a_request_that_meets_runs_starting_and_ending_twice_says_so(integration, broker):
    request_run(integration)  # under way, but each time it is looked for it has just ended

    with (
        mock.patch("integrations.member_sync.runs._active_run", return_value=None),
        pytest.raises(runs.SyncAlreadyChanging),
    ):
        request_run(integration)

    assert MemberSyncRun.objects.count() == 1


def test_an_unreachable_queue_ends_the_run_with_an_error(integration, broker):
    unreachable = RedisBroker(url="redis://127.0.0.1:1/0")
    original, sync_github_members.broker = sync_github_members.broker, unreachable
    try:
        run, created = request_run(integration)
    finally:
        sync_github_members.broker = original

    assert created
    assert (run.status, run.error, run.error_kind) == (Status.ERROR, words.QUEUE_UNAVAILABLE, ErrorKind.INTERRUPTED)
    assert MemberSyncRun.objects.get().status == Status.ERROR
    integration.refresh_from_db()
    assert (integration.member_sync_status, integration.member_sync_error) == (Status.ERROR, words.QUEUE_UNAVAILABLE)
    # Nothing is left active, so the next click may start a new run.
    assert request_run(integration)[1]


def csrf_client(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/t/acme/github/members/")
    return client


def post_sync(client, *, partial=False):
    """Sync Now, as the page's script sends it (the status partial asked for) or as a plain form."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"].value}
    if partial:
        headers["X-Member-Sync-Partial"] = "status"
    return client.post("/t/acme/github/members/sync/", headers=headers)


def test_sync_now_answers_the_status_partial_at_once(integration, alice, broker):
    response = post_sync(csrf_client(alice), partial=True)

    assert response.status_code == 202
    assert b'id="member-sync-status"' in response.content
    assert b'data-status="queued"' in response.content
    assert queued_messages(broker) == 1


def test_sync_now_without_javascript_redirects_back_to_the_page(integration, alice, broker):
    response = post_sync(csrf_client(alice))

    assert response.status_code == 302
    assert response["Location"] == "/t/acme/github/members/"


def test_a_double_click_on_sync_now_answers_the_run_under_way(integration, alice, broker):
    client = csrf_client(alice)
    post_sync(client, partial=True)
    response = post_sync(client, partial=True)

    assert response.status_code == 200
    assert MemberSyncRun.objects.count() == 1


@pytest.mark.parametrize("partial", [True, False])
def test_sync_now_while_runs_start_and_end_at_once_answers_that_one_is_under_way(integration, alice, broker, partial):
    client = csrf_client(alice)

    with mock.patch("integrations.views.members.request_member_sync", side_effect=runs.SyncAlreadyChanging):
        response = post_sync(client, partial=partial)

    if partial:
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert "A sync is already under way." in client.get(response["Location"]).content.decode()


def test_sync_now_is_refused_with_the_reason_while_github_says_the_connection_is_gone(integration, alice, broker):
    integration.disconnected_at, integration.disconnected_reason = timezone.now(), "The GitHub App was uninstalled."
    integration.save()

    response = post_sync(csrf_client(alice), partial=True)

    assert response.status_code == 409
    assert b"The GitHub App was uninstalled." in response.content
    assert MemberSyncRun.objects.count() == 0


def test_sync_now_requires_admin(integration, bob, broker):
    response = post_sync(csrf_client(bob))

    assert response.status_code == 403
    assert MemberSyncRun.objects.count() == 0


def test_sync_now_refuses_a_get(integration, alice):
    assert csrf_client(alice).get("/t/acme/github/members/sync/").status_code == 405


def test_sync_now_refuses_a_post_without_csrf_token(integration, alice):
    client = csrf_client(alice)
    assert client.post("/t/acme/github/members/sync/").status_code == 403
    assert MemberSyncRun.objects.count() == 0


def test_sync_now_for_a_team_without_github_gets_a_clear_answer(team, alice, broker):
    client = csrf_client(alice)
    partial = post_sync(client, partial=True)
    page = post_sync(client)

    assert partial.status_code == 409
    assert b"Connect GitHub" in partial.content
    assert page.status_code == 302
    assert MemberSyncRun.objects.count() == 0


def test_the_progress_partial_shows_the_state(integration, bob):
    request_run(integration)
    response = csrf_client(bob).get("/t/acme/github/members/sync/progress/")

    assert response.status_code == 200
    assert b'data-status="queued"' in response.content


def test_the_actor_syncs_and_completes_the_run(integration, broker):
    run, _ = request_run(integration)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert run.status == Status.COMPLETE
    assert (run.members_created, run.total, run.fetched) == (250, 250, 250)
    assert None not in (run.started_at, run.finished_at, run.heartbeat_at)
    assert run.api_calls == 3
    integration.refresh_from_db()
    assert integration.member_sync_status == Status.COMPLETE
    assert integration.member_sync_result == {
        "created": 250, "updated": 0, "deactivated": 0, "unchanged": 0, "total": 250, "held": 0, "skipped": 0,
    }  # fmt: skip
    assert GitHubMember.objects.filter(integration=integration, is_active=True).count() == 250


def test_a_run_id_that_no_longer_exists_is_ignored(integration):
    sync_github_members.fn(987654)
    assert MemberSyncRun.objects.count() == 0


def test_a_message_for_a_run_its_worker_seems_to_sync_comes_back_when_the_run_can_be_claimed(integration, broker):
    beat = timezone.now()
    run = MemberSyncRun.objects.create(
        integration=integration, trigger="manual", status="syncing", started_at=beat, heartbeat_at=beat
    )

    sync_github_members.fn(run.pk)

    assert MemberSyncRun.objects.get().status == "syncing"  # not taken from the worker that may live
    [raw] = broker.client.hvals(f"{broker.namespace}:member_sync.DQ.msgs")
    message = dramatiq.Message.decode(raw)
    claimable = beat + timedelta(milliseconds=settings.DRAMATIQ_HEARTBEAT_TIMEOUT_MS)
    assert list(message.args) == [run.pk]
    assert message.options["eta"] >= claimable.timestamp() * 1000


def test_a_finished_run_is_not_run_again(integration, broker):
    run, _ = request_run(integration)
    sync_github_members.fn(run.pk)
    finished_at = MemberSyncRun.objects.get().finished_at

    sync_github_members.fn(run.pk)

    assert MemberSyncRun.objects.get().finished_at == finished_at


def test_an_error_the_user_must_act_on_ends_the_run_at_once(integration, broker, github):
    github.inject("bad_credentials", times=None)
    run, _ = request_run(integration)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_kind) == (Status.ERROR, ErrorKind.CREDENTIALS)
    assert "Reconnect GitHub" in run.error
    integration.refresh_from_db()
    assert integration.member_sync_error == run.error


@pytest.mark.parametrize("server", ["graphql", "rest only"])
def test_a_viewer_removed_from_the_organization_fails_the_run_and_deactivates_nobody(
    integration, broker, github, settings, server
):
    if server == "rest only":  # read over REST, whose listing shows an outsider the public members with 200
        settings.GITHUB_GRAPHQL_URL = f"{github.url}/no-graphql"
    first, _ = request_run(integration)
    sync_github_members.fn(first.pk)
    active = GitHubMember.objects.filter(integration=integration, is_active=True).count()
    github.org("acme").remove_viewer()  # GitHub now shows the token's account only the public members
    run, _ = request_run(integration)

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_kind) == (Status.ERROR, ErrorKind.ORGANIZATION)
    assert "not a member of acme" in run.error
    assert "Reconnect GitHub with an account that belongs to the organization" in run.error
    assert run.members_deactivated == 0
    assert GitHubMember.objects.filter(integration=integration, is_active=True).count() == active == 250


def test_a_rate_limit_puts_the_run_back_until_the_reset(integration, broker, github):
    github.inject("rate_limit_exhausted", times=None, reset_in=600)
    run, _ = request_run(integration)

    with pytest.raises(dramatiq.Retry) as retry:
        sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert run.waiting_until is not None
    assert timedelta(minutes=9) < run.waiting_until - timezone.now() <= timedelta(minutes=11)
    assert "rate limit" in run.error.lower()
    assert 540_000 < retry.value.delay <= 600_000


def test_a_rate_limit_still_there_after_the_last_retry_fails_the_run_as_githubs(integration, broker, github):
    github.inject("rate_limit_exhausted", times=None, reset_in=600)
    run, _ = request_run(integration)

    delivered(run, retries=tasks.MAX_RETRIES)

    run.refresh_from_db()
    assert (run.status, run.error_kind) == (Status.ERROR, ErrorKind.GITHUB)
    assert "rate limit" in run.error.lower()


@pytest.mark.parametrize(
    ("raised", "kind", "error"),
    [
        (TimeLimitExceeded(), ErrorKind.INTERRUPTED, words.TIMED_OUT),
        (TokenUnreadable(), ErrorKind.CREDENTIALS, words.RECONNECT_NEEDED),
        (RuntimeError("a bug"), ErrorKind.UNEXPECTED, words.UNEXPECTED),
    ],
)
def test_a_run_the_sync_could_not_finish_records_what_kind_of_error_ended_it(integration, broker, raised, kind, error):
    run, _ = request_run(integration)

    with mock.patch("integrations.member_sync.tasks.sync_members", side_effect=raised):
        sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_kind, run.error) == (Status.ERROR, kind, error)
    assert member_sync_payload(run)["error_kind"] == kind


def test_a_run_its_worker_is_shut_down_in_is_not_left_syncing(integration, broker):
    run, _ = request_run(integration)

    with (
        mock.patch("integrations.member_sync.tasks.sync_members", side_effect=KeyboardInterrupt),
        pytest.raises(KeyboardInterrupt),
    ):
        sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_kind) == (Status.ERROR, ErrorKind.INTERRUPTED)


def delivered(run, *, retries):
    """The actor run on the run's message as a worker hands it over after `retries` retries: the
    CurrentMessage middleware is what tells the actor which attempt this is."""
    message = sync_github_members.message_with_options(args=(run.pk,), retries=retries)
    current = CurrentMessage()
    current.before_process_message(broker=None, message=message)
    try:
        sync_github_members.fn(run.pk)
    finally:
        current.after_process_message(broker=None, message=message)


def test_the_actor_waits_longer_each_time_a_secondary_rate_limit_comes_back(integration, broker, github):
    github.inject("secondary_rate_limit", times=None, retry_after=None)
    run, _ = request_run(integration)
    waits, delays = [], []

    for retries in (0, 1):
        with pytest.raises(dramatiq.Retry) as retry:
            delivered(run, retries=retries)
        run.refresh_from_db()
        assert run.status == Status.QUEUED
        waits.append(run.waiting_until - timezone.now())
        delays.append(retry.value.delay)

    assert timedelta(seconds=50) < waits[0] <= timedelta(minutes=1)
    assert timedelta(seconds=110) < waits[1] <= timedelta(minutes=2)
    assert 50_000 < delays[0] <= 60_000
    assert 110_000 < delays[1] <= 120_000


def test_a_stale_syncing_run_is_taken_over_by_a_redelivered_message(integration, broker, settings):
    run, _ = request_run(integration)
    long_ago = timezone.now() - timedelta(milliseconds=settings.DRAMATIQ_HEARTBEAT_TIMEOUT_MS + 1000)
    MemberSyncRun.objects.filter(pk=run.pk).update(status=Status.SYNCING, heartbeat_at=long_ago)

    sync_github_members.fn(run.pk)

    assert MemberSyncRun.objects.get().status == Status.COMPLETE


def test_a_live_syncing_run_is_not_taken_over(integration, broker):
    run, _ = request_run(integration)
    MemberSyncRun.objects.filter(pk=run.pk).update(status=Status.SYNCING, heartbeat_at=timezone.now())

    sync_github_members.fn(run.pk)

    assert MemberSyncRun.objects.get().status == Status.SYNCING


def test_the_periodic_check_ends_runs_whose_worker_died(integration, broker):
    run, _ = request_run(integration)
    MemberSyncRun.objects.filter(pk=run.pk).update(
        status=Status.SYNCING, heartbeat_at=timezone.now() - runs.REAP_SYNCING_AFTER - timedelta(seconds=1)
    )

    assert runs.reap_stalled_runs() == 1

    run.refresh_from_db()
    assert (run.status, run.error, run.error_kind) == (Status.ERROR, words.WORKER_LOST, ErrorKind.INTERRUPTED)
    integration.refresh_from_db()
    assert integration.member_sync_status == Status.ERROR


def test_the_periodic_check_discards_the_pages_a_dead_worker_staged(integration, broker):
    run, _ = request_run(integration)
    MemberSyncRun.objects.filter(pk=run.pk).update(
        status=Status.SYNCING, heartbeat_at=timezone.now() - runs.REAP_SYNCING_AFTER - timedelta(seconds=1)
    )
    StagedMember.objects.create(run=run, github_id=1, node_id="U_1", login="ann", avatar_url="", role="member")

    runs.reap_stalled_runs()

    assert StagedMember.objects.count() == 0
    assert GitHubMember.objects.count() == 0


def test_the_periodic_check_ends_runs_whose_message_never_came(integration, broker):
    run, _ = request_run(integration)
    MemberSyncRun.objects.filter(pk=run.pk).update(
        queued_at=timezone.now() - runs.REAP_QUEUED_AFTER - timedelta(seconds=1)
    )

    assert runs.reap_stalled_runs() == 1
    run.refresh_from_db()
    assert (run.error, run.error_kind) == (words.QUEUED_TOO_LONG, ErrorKind.INTERRUPTED)


def test_the_periodic_check_leaves_live_runs_alone(integration, broker):
    run, _ = request_run(integration)
    MemberSyncRun.objects.filter(pk=run.pk).update(status=Status.SYNCING, heartbeat_at=timezone.now())

    assert runs.reap_stalled_runs() == 0
    assert MemberSyncRun.objects.get().status == Status.SYNCING


def test_the_check_spares_a_run_a_worker_claimed_after_the_check_looked(integration, broker):
    run, _ = request_run(integration)
    stale = timezone.now() - runs.REAP_SYNCING_AFTER - timedelta(seconds=1)
    MemberSyncRun.objects.filter(pk=run.pk).update(status=Status.SYNCING, heartbeat_at=stale)
    seen_stalled = MemberSyncRun.objects.filter(status=Status.SYNCING, heartbeat_at__lt=stale + timedelta(0, 1))
    run = seen_stalled.select_related("integration").get()
    # A redelivered message claims it now, before the check's UPDATE.
    MemberSyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())

    assert not runs.fail_run(run, error=words.WORKER_LOST, kind=ErrorKind.INTERRUPTED, only_if=seen_stalled)
    assert MemberSyncRun.objects.get().status == Status.SYNCING


def test_an_older_run_ending_late_does_not_overwrite_the_integrations_state(integration, broker):
    older, _ = request_run(integration)
    sync_github_members.fn(older.pk)
    newer, _ = request_run(integration)

    older.refresh_from_db()
    runs._save_on_integration(older)

    integration.refresh_from_db()
    assert (newer.status, integration.member_sync_status) == (Status.QUEUED, Status.QUEUED)


def test_a_request_for_a_deleted_integration_fails_instead_of_looping(integration, broker):
    GitHubIntegration.objects.filter(pk=integration.pk).delete()

    with pytest.raises(IntegrityError):
        request_run(integration)


def test_progress_is_published_only_once_its_interval_has_passed_since_the_sync_began(integration):
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status=MemberSyncRun.Status.SYNCING)
    reporter = runs.ProgressReporter(run)

    def page(fetched):
        return Progress(
            fetched=fetched, total=250, api_calls=fetched // 100, rate_limit_remaining=4999, rate_limit_reset_at=None
        )

    with mock.patch("integrations.member_sync.runs.publish_member_sync") as publish:
        reporter(page(100))
        reporter.last_published -= runs.ProgressReporter.min_interval
        reporter(page(200))

    assert [call.args[0].fetched for call in publish.call_args_list] == [200]
    stored = MemberSyncRun.objects.get(pk=run.pk)
    assert (stored.fetched, stored.api_calls, stored.rate_limit_remaining) == (200, 2, 4999)
