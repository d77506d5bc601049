"""The database itself allows one queued-or-syncing run per integration
(docs/interfaces.md#runs-states-and-triggers)."""

import pytest
from django.db import IntegrityError, transaction

from integrations.models import GitHubIntegration, MemberSyncRun

# On PostgreSQL too (.ci/run): the one-active-run partial unique constraint.
pytestmark = pytest.mark.postgres

Status = MemberSyncRun.Status


def start_run(integration, status=Status.QUEUED):
    return MemberSyncRun.objects.create(integration=integration, trigger="manual", status=status)


def test_the_database_refuses_a_second_queued_run(integration):
    start_run(integration)

    with pytest.raises(IntegrityError), transaction.atomic():
        start_run(integration)

    assert MemberSyncRun.objects.filter(integration=integration).count() == 1


def test_the_database_refuses_a_queued_run_while_one_is_syncing(integration):
    start_run(integration, status=Status.SYNCING)

    with pytest.raises(IntegrityError), transaction.atomic():
        start_run(integration)


def test_the_database_refuses_moving_a_second_run_back_to_syncing(integration):
    finished = start_run(integration, status=Status.COMPLETE)
    start_run(integration)

    with pytest.raises(IntegrityError), transaction.atomic():
        MemberSyncRun.objects.filter(pk=finished.pk).update(status=Status.SYNCING)


def test_finished_runs_do_not_block_a_new_one(integration):
    start_run(integration, status=Status.COMPLETE)
    start_run(integration, status=Status.ERROR)
    start_run(integration)

    assert MemberSyncRun.objects.filter(integration=integration).count() == 3


def test_other_integrations_run_independently(integration, other_team):
    start_run(integration)
    start_run(GitHubIntegration.objects.create(team=other_team, organization_login="globex"))

    assert MemberSyncRun.objects.filter(status=Status.QUEUED).count() == 2


def test_a_completed_run_reports_its_result(integration):
    run = start_run(integration, status=Status.COMPLETE)
    run.members_created, run.total = 3, 3

    assert run.result() == {
        "created": 3,
        "updated": 0,
        "deactivated": 0,
        "unchanged": 0,
        "total": 3,
        "held": 0,
        "skipped": 0,
    }
    assert start_run(integration).result() is None
