"""Fairness between organizations: a large organization's sync goes to a queue of its own, at most
MEMBER_SYNC_LARGE_CONCURRENCY of them run at once, and a small team's Sync Now does not wait behind
them. In this process against the real Redis broker, then with a real `rundramatiq` worker."""

import itertools
from datetime import timedelta

import dramatiq
import pytest
from django.test import Client
from django.utils import timezone
from dramatiq.middleware import CurrentMessage

from integrations.member_sync import large_syncs, runs, tasks
from integrations.member_sync.periodic import StalledRunReaper
from integrations.member_sync.tasks import LARGE_SYNC_SLOT_WAIT, sync_large_github_members
from integrations.models import GitHubIntegration, MemberSyncRun
from integrations.words import WAITING_FOR_LARGE_SYNCS
from teams.models import Membership, Team
from tests.helpers import wait_for
from tests.stack import github_environment, stack_environment, worker

pytestmark = pytest.mark.django_db(transaction=True)

Status = MemberSyncRun.Status
Trigger = MemberSyncRun.Trigger
LARGE = 1000
_numbers = itertools.count()


@pytest.fixture(autouse=True)
def large_from_1000_members_on_the_simulator(settings, github):
    settings.MEMBER_SYNC_LARGE_ORGANIZATION = LARGE
    settings.GITHUB_API_URL = settings.GITHUB_WEB_URL = github.url
    settings.GITHUB_GRAPHQL_URL = f"{github.url}/graphql"


@pytest.fixture(autouse=True)
def free_slots():
    """No large sync running, as far as the cap knows, before and after each test."""
    large_syncs.clear()
    yield
    large_syncs.clear()


def another_integration(github, github_token, *, members, last_total=None, admin=None):
    """A team of its own connected to an organization of `members` members, whose latest full sync
    counted `last_total` members (None: never synced)."""
    n = next(_numbers)
    team = Team.objects.create(name=f"Org {n}", slug=f"org-{n}")
    if admin is not None:
        Membership.objects.create(team=team, user=admin, role=Membership.Role.ADMIN)
    login = f"org-{n}"
    github.add_org(login, size=members)
    integration = GitHubIntegration(team=team, organization_login=login, organization_id=github.org(login).id)
    integration.access_token = github_token
    integration.save()
    if last_total is not None:
        MemberSyncRun.objects.create(
            integration=integration, trigger=Trigger.SCHEDULE, status=Status.COMPLETE, total=last_total,
            fetched=last_total, started_at=timezone.now(), finished_at=timezone.now(),
        )  # fmt: skip
    return integration


def messages(broker, queue):
    return broker.client.llen(f"{broker.namespace}:{queue}")


def delayed_messages(broker, queue):
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.DQ.msgs")
    return [dramatiq.Message.decode(message) for message in raw]


def request_run(integration):
    return tasks.request_member_sync(integration=integration, trigger=Trigger.MANUAL)[0]


def test_a_large_organizations_run_goes_to_the_large_queue(integration, github, github_token, broker):
    large = another_integration(github, github_token, members=10, last_total=LARGE)

    request_run(large)

    assert messages(broker, "member_sync_large") == 1
    assert messages(broker, "member_sync") == 0


def test_an_organization_never_synced_or_below_the_threshold_is_small(integration, github, github_token, broker):
    below = another_integration(github, github_token, members=10, last_total=LARGE - 1)

    request_run(integration)
    request_run(below)

    assert messages(broker, "member_sync") == 2
    assert messages(broker, "member_sync_large") == 0


def test_a_webhooks_run_does_not_make_a_large_organization_small(integration, github, github_token, broker):
    large = another_integration(github, github_token, members=10, last_total=5 * LARGE)
    MemberSyncRun.objects.create(integration=large, trigger=Trigger.WEBHOOK, status=Status.COMPLETE, total=1)

    request_run(large)

    assert messages(broker, "member_sync_large") == 1


def test_the_schedule_sends_each_run_of_a_batch_to_its_organizations_queue(integration, github, github_token, broker):
    large = another_integration(github, github_token, members=10, last_total=LARGE)

    tasks.request_member_syncs([integration.pk, large.pk], trigger=Trigger.SCHEDULE)

    assert messages(broker, "member_sync") == 1
    assert messages(broker, "member_sync_large") == 1


# Runs of other teams' large syncs, under way in other workers.
OTHER_RUNS = 10**9


def all_slots_taken(settings, *, but=0):
    """What large syncs running in other workers leave: no slot (or `but` of them)."""
    for n in range(settings.MEMBER_SYNC_LARGE_CONCURRENCY - but):
        assert large_syncs.claim(OTHER_RUNS + n)


def test_a_large_run_beyond_the_cap_stays_queued_and_is_sent_again(github, github_token, broker, settings):
    large = another_integration(github, github_token, members=10, last_total=LARGE)
    run = request_run(large)
    broker.flush_all()  # the message a worker would have taken
    all_slots_taken(settings)

    sync_large_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.error) == (Status.QUEUED, WAITING_FOR_LARGE_SYNCS)
    assert timezone.now() < run.waiting_until <= timezone.now() + LARGE_SYNC_SLOT_WAIT
    [again] = delayed_messages(broker, "member_sync_large")
    assert again.args == (run.pk,)
    # Waiting for a slot is no failure, and uses up none of the run's retries.
    assert again.options["retries"] == 0
    assert 0 < again.options["eta"] - timezone.now().timestamp() * 1000 <= LARGE_SYNC_SLOT_WAIT.total_seconds() * 1000

    large_syncs.release(OTHER_RUNS)
    sync_large_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.fetched, run.waiting_until, run.error) == (Status.COMPLETE, 10, None, "")


def test_a_run_sent_again_keeps_the_retries_its_failures_used(github, github_token, broker, settings):
    large = another_integration(github, github_token, members=10, last_total=LARGE)
    run = request_run(large)
    broker.flush_all()
    all_slots_taken(settings)
    message = sync_large_github_members.message_with_options(args=(run.pk,), retries=3)
    current = CurrentMessage()
    current.before_process_message(broker=None, message=message)
    try:
        sync_large_github_members.fn(run.pk)
    finally:
        current.after_process_message(broker=None, message=message)

    [again] = delayed_messages(broker, "member_sync_large")
    assert again.options["retries"] == 3


def test_a_run_waiting_for_a_slot_is_not_ended_by_the_periodic_check(github, github_token, broker, settings):
    large = another_integration(github, github_token, members=10, last_total=LARGE)
    run = request_run(large)
    MemberSyncRun.objects.filter(pk=run.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    all_slots_taken(settings)

    sync_large_github_members.fn(run.pk)

    assert runs.reap_stalled_runs() == 0
    assert MemberSyncRun.objects.get(pk=run.pk).status == Status.QUEUED


def test_a_finished_runs_message_is_not_sent_again_while_the_cap_is_reached(github, github_token, broker, settings):
    large = another_integration(github, github_token, members=10, last_total=LARGE)
    run = request_run(large)
    runs.fail_run(run, error="Stopped.", kind=MemberSyncRun.ErrorKind.INTERRUPTED)
    broker.flush_all()
    all_slots_taken(settings)

    sync_large_github_members.fn(run.pk)

    assert delayed_messages(broker, "member_sync_large") == []
    assert MemberSyncRun.objects.get(pk=run.pk).error == "Stopped."


def test_the_next_attempt_of_a_run_whose_worker_was_killed_takes_its_slot_back(github, github_token, broker, settings):
    large = another_integration(github, github_token, members=10, last_total=LARGE)
    run = request_run(large)
    broker.flush_all()
    # Its worker was SIGKILLed mid-sync: the run still syncing, its heartbeat old, its slot never given back.
    assert large_syncs.claim(run.pk)
    all_slots_taken(settings, but=1)
    MemberSyncRun.objects.filter(pk=run.pk).update(
        status=Status.SYNCING, started_at=timezone.now() - timedelta(minutes=2),
        heartbeat_at=timezone.now() - timedelta(minutes=2),
    )  # fmt: skip

    sync_large_github_members.fn(run.pk)

    run.refresh_from_db()
    assert (run.status, run.fetched) == (Status.COMPLETE, 10)
    assert run.pk not in large_syncs.holders()


def test_the_stalled_run_check_frees_the_slot_of_a_run_it_ends(github, github_token, broker, settings):
    large = another_integration(github, github_token, members=10, last_total=LARGE)
    dead = request_run(large)
    assert large_syncs.claim(dead.pk)
    all_slots_taken(settings, but=1)
    stale = timezone.now() - runs.REAP_SYNCING_AFTER - timedelta(minutes=1)
    MemberSyncRun.objects.filter(pk=dead.pk).update(status=Status.SYNCING, started_at=stale, heartbeat_at=stale)
    waiting = another_integration(github, github_token, members=10, last_total=LARGE)
    assert not large_syncs.claim(request_run(waiting).pk)

    StalledRunReaper().check()

    assert MemberSyncRun.objects.get(pk=dead.pk).status == Status.ERROR
    assert dead.pk not in large_syncs.holders()
    assert large_syncs.claim(MemberSyncRun.objects.get(integration=waiting, trigger=Trigger.MANUAL).pk)


def test_a_second_message_of_a_run_another_worker_syncs_leaves_that_worker_its_slot(
    github, github_token, broker, settings
):
    large = another_integration(github, github_token, members=10, last_total=LARGE)
    run = request_run(large)
    broker.flush_all()
    assert large_syncs.claim(run.pk)
    MemberSyncRun.objects.filter(pk=run.pk).update(
        status=Status.SYNCING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )

    sync_large_github_members.fn(run.pk)

    assert MemberSyncRun.objects.get(pk=run.pk).status == Status.SYNCING
    assert run.pk in large_syncs.holders()


@pytest.fixture
def env(github, broker):
    return stack_environment(
        **github_environment(github),
        MEMBER_SYNC_EVERY_SECONDS=0,
        MEMBER_SYNC_LARGE_CONCURRENCY=2,
    )


def test_a_small_teams_sync_now_completes_while_large_syncs_take_the_cap(integration, alice, github, github_token, env):
    """Costs about 6 s: the third large sync asks for a slot again LARGE_SYNC_SLOT_WAIT (5 s) after
    the first refusal."""
    # Three threads: two for the large syncs the cap lets run, held at their first page by the
    # simulator until the small team's sync is done; the third thread is free for the rest.
    large = [another_integration(github, github_token, members=300, last_total=3000) for _ in range(3)]
    for integration_ in large:
        github.org(integration_.organization_login).hold()
    large_runs = MemberSyncRun.objects.filter(integration__in=large, trigger=Trigger.MANUAL)  # .all(): read afresh
    admin = Client()
    admin.force_login(alice)

    with worker(env, threads=3):
        for integration_ in large:
            request_run(integration_)
        wait_for(
            lambda: (
                large_runs.filter(status=Status.SYNCING).count() == 2
                and large_runs.filter(status=Status.QUEUED, waiting_until__isnull=False).count() == 1
            ),
            timeout=60,
            message="two large syncs under way, the third waiting for a slot",
        )

        response = admin.post("/t/acme/github/members/sync/", headers={"X-Member-Sync-Partial": "status"})
        assert response.status_code == 202
        small = wait_for(
            lambda: MemberSyncRun.objects.filter(integration=integration, status=Status.COMPLETE).first(),
            message="the small team's sync to complete",
        )
        still = [run.status for run in large_runs.all()]
        for integration_ in large:
            github.org(integration_.organization_login).release()

        wait_for(lambda: large_runs.filter(status=Status.COMPLETE).count() == 3, timeout=120, message="large syncs")

    assert (small.trigger, small.members_created) == (Trigger.MANUAL, 250)
    assert sorted(still) == [Status.QUEUED, Status.SYNCING, Status.SYNCING]
    # Never more than two at once: the third started only once one of the others had finished.
    first, second, third = sorted(large_runs.all(), key=lambda run: run.started_at)
    assert third.started_at >= min(first.finished_at, second.finished_at)
    assert all(run.fetched == 300 and run.error == "" for run in large_runs.all())
