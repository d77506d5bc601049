"""How long the change records are kept: the schedule's pass prunes those older than
MEMBER_CHANGES_KEEP_DAYS, the oldest first, a bounded number of batches a pass
(integrations/member_sync/retention.py)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.member_sync.periodic import ScheduledFullSyncs
from integrations.member_sync.retention import prune_member_changes
from integrations.models import GitHubIntegration, MemberChange, MemberSyncRun

# On PostgreSQL too (.ci/run): DELETE … WHERE id IN (a sliced, ordered subquery).
pytestmark = pytest.mark.postgres

NOW = timezone.now()


@pytest.fixture
def connected(team):
    return GitHubIntegration.objects.create(team=team, organization_login="acme")


@pytest.fixture(autouse=True)
def keep_400_days(settings):
    settings.MEMBER_CHANGES_KEEP_DAYS = 400


def add_changes(integration, *ages_in_days):
    """One change for each age, github_id its position; returns the run with its counts stored."""
    counts = {"added": len(ages_in_days)}
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="complete",
                                       change_counts=counts)  # fmt: skip
    MemberChange.objects.bulk_create(
        MemberChange(integration=integration, run=run, github_id=n, login=f"user-{n}", kind="added",
                     at=NOW - timedelta(days=age))
        for n, age in enumerate(ages_in_days)
    )  # fmt: skip
    return run


def kept():
    return sorted(MemberChange.objects.values_list("github_id", flat=True))


def test_changes_older_than_the_period_are_pruned_and_recent_ones_kept(connected):
    add_changes(connected, 401, 0, 400.01, 399.99, 30, 1000)

    assert prune_member_changes(now=NOW) == 3
    assert kept() == [1, 3, 4]


def test_every_integrations_old_changes_go(connected, other_team):
    other = GitHubIntegration.objects.create(team=other_team, organization_login="globex")
    add_changes(connected, 500, 1)
    add_changes(other, 500, 1)

    prune_member_changes(now=NOW)

    assert sorted(MemberChange.objects.values_list("integration_id", "github_id")) == [(connected.pk, 1), (other.pk, 1)]


def test_zero_keeps_every_change(connected, settings):
    settings.MEMBER_CHANGES_KEEP_DAYS = 0
    add_changes(connected, 5000, 401, 1)

    with CaptureQueriesContext(connection) as queries:
        assert prune_member_changes(now=NOW) == 0

    assert kept() == [0, 1, 2]
    assert queries.captured_queries == []


def test_a_pass_prunes_its_batches_oldest_first_and_the_next_pass_the_rest(connected):
    add_changes(connected, *(1000 - n for n in range(25)), 1)  # 25 old, the first the oldest; one recent

    assert prune_member_changes(now=NOW, batch_size=10, batches=2) == 20
    assert kept() == [20, 21, 22, 23, 24, 25]
    assert prune_member_changes(now=NOW, batch_size=10, batches=2) == 5
    assert kept() == [25]


def test_a_pass_sends_one_statement_a_batch_however_many_rows(connected):
    add_changes(connected, *[500] * 2500)

    with CaptureQueriesContext(connection) as full:
        assert prune_member_changes(now=NOW, batch_size=1000, batches=2) == 2000
    with CaptureQueriesContext(connection) as last:
        assert prune_member_changes(now=NOW, batch_size=1000, batches=2) == 500
    with CaptureQueriesContext(connection) as none_left:
        assert prune_member_changes(now=NOW, batch_size=1000, batches=2) == 0

    assert [len(q.captured_queries) for q in (full, last, none_left)] == [2, 1, 1]
    assert all(query["sql"].startswith("DELETE") for query in full.captured_queries)


def test_a_run_keeps_its_change_counts_once_its_changes_are_pruned(connected):
    run = add_changes(connected, 500, 500)

    prune_member_changes(now=NOW)

    run.refresh_from_db()
    assert (run.member_changes.count(), run.change_counts) == (0, {"added": 2})


def test_the_oldest_are_found_by_the_index_on_their_time(connected):
    oldest = MemberChange.objects.filter(at__lt=NOW).order_by("at").values("pk")[:1000]

    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A table this small PostgreSQL reads whole; the question is whether the index can serve.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")
        plan = oldest.explain()

    assert "member_changes_by_age" in plan


@pytest.mark.parametrize("every_seconds", [0, 86400])
def test_the_schedules_pass_prunes_whether_or_not_it_resyncs(connected, settings, every_seconds):
    settings.MEMBER_SYNC_EVERY_SECONDS = every_seconds
    add_changes(connected, 500, 1)

    ScheduledFullSyncs().check()

    assert kept() == [1]
