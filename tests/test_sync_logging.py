"""Every line a sync logs says its run and team, in whichever thread of the sync it was logged;
lines outside a sync say "-"."""

import logging

import pytest
from django.conf import settings

from integrations.member_sync import tasks
from integrations.member_sync.tasks import sync_github_members
from integrations.models import MemberSyncRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_record_of_a_sync_carries_its_run_and_team(integration, broker, github, caplog):
    # A reset connection makes urllib3 log its retry from the thread that asks for the next page;
    # GitHub giving up on the page size makes the client log from the actor's.
    github.inject("connection_reset", path="/graphql")
    github.inject("resource_limits", times=None, max_first=50)
    run, _ = tasks.request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)
    caplog.set_level(logging.INFO)
    caplog.clear()

    sync_github_members.fn(run.pk)

    run.refresh_from_db()
    assert run.status == MemberSyncRun.Status.COMPLETE
    records = [record for record in caplog.records if not record.threadName.startswith("github-simulator")]
    threads = {record.threadName.split("_")[0] for record in records}
    assert {"MainThread", "github-next-page"} <= threads
    assert {(record.run_id, record.team_id) for record in records} == {(run.pk, integration.team_id)}


def test_records_after_the_sync_carry_no_run(integration, broker, caplog):
    run, _ = tasks.request_member_sync(integration=integration, trigger=MemberSyncRun.Trigger.MANUAL)
    sync_github_members.fn(run.pk)
    caplog.set_level(logging.INFO)

    logging.getLogger("integrations").info("after the sync")

    assert (caplog.records[-1].run_id, caplog.records[-1].team_id) == ("-", "-")


def test_the_log_format_shows_run_and_team(db, caplog):
    formatter = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"])
    caplog.set_level(logging.INFO)

    sync_github_members.fn(987654)  # a run that does not exist: the actor says so, then leaves
    logging.getLogger("integrations").warning("outside")

    inside, outside = (formatter.format(record) for record in caplog.records)
    assert "run=987654 team=- " in inside
    assert "nothing to do" in inside
    assert outside.endswith("run=- team=- outside")
