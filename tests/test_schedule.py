"""The scheduled full re-sync: which integrations a pass queues, that passes in several workers at
once queue each one once, how the times are spread, and a real worker running the schedule. The
queue is the real Redis broker."""

import itertools
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.member_sync import runs, tasks
from integrations.member_sync.schedule import first_full_sync_at, queue_due_full_syncs
from integrations.models import GitHubIntegration, MemberSyncRun
from teams.models import Team
from tests.helpers import wait_for
from tests.stack import github_environment, stack_environment, worker

# On PostgreSQL too (.ci/run): SELECT … FOR UPDATE SKIP LOCKED, the due integrations' query.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = MemberSyncRun.Status
PERIOD = timedelta(days=1)
_numbers = itertools.count()


@pytest.fixture(autouse=True)
def daily(settings):
    settings.MEMBER_SYNC_EVERY_SECONDS = int(PERIOD.total_seconds())


def make_integrations(count, **fields):
    """Integrations of teams of their own, connected by OAuth with a token unless told otherwise."""
    teams = Team.objects.bulk_create(
        Team(name=f"Team {n}", slug=f"team-{n}") for n in (next(_numbers) for _ in range(count))
    )
    fields = {"encrypted_access_token": "a-token", **fields}
    return GitHubIntegration.objects.bulk_create(
        GitHubIntegration(team=team, organization_login=team.slug, **fields) for team in teams
    )


def due(count=1, **fields):
    return make_integrations(count, next_full_sync_at=timezone.now() - timedelta(minutes=1), **fields)


def queued_messages(broker):
    return broker.client.llen(f"{broker.namespace}:member_sync")


def scheduled_integrations():
    return sorted(MemberSyncRun.objects.filter(trigger="schedule").values_list("integration_id", flat=True))


def test_a_pass_queues_one_schedule_run_per_due_integration(broker):
    due_now = due(3)
    make_integrations(2, next_full_sync_at=timezone.now() + timedelta(hours=1))
    now = timezone.now()

    assert queue_due_full_syncs(now=now) == 3

    assert scheduled_integrations() == sorted(integration.pk for integration in due_now)
    assert {(run.status, run.requested_by_id) for run in MemberSyncRun.objects.all()} == {(Status.QUEUED, None)}
    assert queued_messages(broker) == 3
    for integration in due_now:
        integration.refresh_from_db()
        assert (integration.member_sync_status, integration.next_full_sync_at) == (Status.QUEUED, now + PERIOD)
    assert queue_due_full_syncs() == 0


def test_an_integration_with_a_run_under_way_is_skipped_until_it_is_free(broker):
    busy, free = due(2)
    MemberSyncRun.objects.create(integration=busy, trigger="manual", status=Status.SYNCING)

    assert queue_due_full_syncs() == 1
    assert scheduled_integrations() == [free.pk]

    MemberSyncRun.objects.filter(integration=busy).update(status=Status.COMPLETE)
    assert queue_due_full_syncs() == 1
    assert scheduled_integrations() == sorted([busy.pk, free.pk])


def test_integrations_whose_connection_is_broken_are_skipped(broker):
    now = timezone.now()
    due(disconnected_at=now, disconnected_reason="The GitHub App was uninstalled.")
    due(connection="app", installation_id=1, installation_suspended_at=now, encrypted_access_token="")
    due(encrypted_access_token="")  # OAuth without a token
    due(connection="app", encrypted_access_token="")  # an App without an installation
    (installed_app,) = due(connection="app", installation_id=2, encrypted_access_token="")

    assert queue_due_full_syncs() == 1
    assert scheduled_integrations() == [installed_app.pk]


def test_passes_in_several_workers_at_once_queue_each_due_integration_once(broker):
    integrations = due(60)
    barrier = threading.Barrier(3)
    queued = []

    def one_pass():
        barrier.wait()
        try:
            queued.append(queue_due_full_syncs(batch_size=7))
        finally:
            connection.close()

    threads = [threading.Thread(target=one_pass) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(queued) == 60
    assert scheduled_integrations() == sorted(integration.pk for integration in integrations)
    assert queued_messages(broker) == 60


def test_integrations_never_scheduled_are_spread_within_the_period(broker):
    integrations = make_integrations(1000)
    now = timezone.now()

    assert queue_due_full_syncs(now=now) == 0

    times = dict(GitHubIntegration.objects.values_list("pk", "next_full_sync_at"))
    assert all(now < at <= now + PERIOD for at in times.values())
    tenths = [0] * 10
    for at in times.values():
        tenths[int((at - now) / PERIOD * 10)] += 1
    assert min(tenths) >= 90
    assert max(tenths) <= 110
    # Fixed by the id, so that every worker gives an integration the same time.
    assert all(times[integration.pk] == first_full_sync_at(integration.pk, now, PERIOD) for integration in integrations)


def test_an_integration_is_due_a_period_after_its_last_run_started(broker):
    (integration,) = make_integrations(1, next_full_sync_at=timezone.now() + timedelta(hours=1))
    run, _ = tasks.request_member_sync(integration=integration, trigger="manual")
    started = runs.start_run(run.pk).started_at
    MemberSyncRun.objects.filter(pk=run.pk).update(status=Status.COMPLETE)

    integration.refresh_from_db()
    assert integration.next_full_sync_at == started + PERIOD
    assert queue_due_full_syncs(now=started + PERIOD - timedelta(minutes=1)) == 0
    assert queue_due_full_syncs(now=started + PERIOD) == 1


def test_a_webhook_run_does_not_postpone_the_full_re_sync(broker):
    due_at = timezone.now() + timedelta(hours=1)
    (integration,) = make_integrations(1, next_full_sync_at=due_at)
    run = MemberSyncRun.objects.create(integration=integration, trigger="webhook")
    runs.start_run(run.pk)

    integration.refresh_from_db()
    assert integration.next_full_sync_at == due_at


def test_a_period_of_zero_turns_the_schedule_off(broker, settings):
    settings.MEMBER_SYNC_EVERY_SECONDS = 0
    due(3)

    assert queue_due_full_syncs() == 0
    assert MemberSyncRun.objects.count() == 0


def statements_of_a_pass(count, batch_size):
    """The statements a pass over `count` due integrations sends."""
    MemberSyncRun.objects.all().delete()
    due(count)
    with CaptureQueriesContext(connection) as queries:
        assert queue_due_full_syncs(batch_size=batch_size) == count
    return [query["sql"] for query in queries.captured_queries if "SAVEPOINT" not in query["sql"]]


def test_the_statements_of_a_pass_grow_with_its_batches_not_its_integrations(broker):
    one_batch = len(statements_of_a_pass(10, batch_size=10))
    two_batches = len(statements_of_a_pass(20, batch_size=10))

    # Up to 40: Django splits an INSERT of more rows on SQLite, whose statements it keeps to 999 values.
    assert len(statements_of_a_pass(80, batch_size=40)) == two_batches
    assert len(statements_of_a_pass(40, batch_size=10)) == two_batches + 2 * (two_batches - one_batch)
    # A batch is one transaction: its 5 statements, and on SQLite its BEGIN and COMMIT. Sending its
    # messages writes nothing, and reads the organizations' sizes once (which queue each goes to).
    assert two_batches - one_batch <= 8


def test_a_run_under_way_keeps_its_place_when_runs_are_queued_in_bulk(broker):
    busy, free = make_integrations(2)
    under_way = MemberSyncRun.objects.create(integration=busy, trigger="manual")

    with transaction.atomic():
        queued = tasks.request_member_syncs([busy.pk, free.pk], trigger="schedule")

    assert [run.integration_id for run in queued] == [free.pk]
    assert MemberSyncRun.objects.get(integration=busy) == under_way
    assert queued_messages(broker) == 1


@pytest.fixture
def env(github, broker):
    return stack_environment(
        **github_environment(github),
        MEMBER_SYNC_EVERY_SECONDS=3600,
        MEMBER_SYNC_SCHEDULE_CHECK_SECONDS=0.2,
    )


def test_a_worker_runs_the_scheduled_sync_of_a_due_integration(integration, env):
    GitHubIntegration.objects.filter(pk=integration.pk).update(next_full_sync_at=timezone.now())

    with worker(env):
        run = wait_for(
            lambda: MemberSyncRun.objects.filter(trigger="schedule", status__in=["complete", "error"]).first(),
            timeout=60,
            message="the scheduled run to end",
        )

    assert (run.status, run.members_created, run.requested_by) == (Status.COMPLETE, 250, None)
    assert MemberSyncRun.objects.count() == 1
    integration.refresh_from_db()
    assert integration.next_full_sync_at == run.started_at + timedelta(hours=1)
