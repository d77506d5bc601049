"""/metrics: the member sync's Prometheus metrics, read from the database and the real Redis broker
at scrape time, for the token's holder or an allowed address only."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from github_simulator.tokens import RATE_LIMIT
from integrations.live import streams
from integrations.member_sync import tasks
from integrations.member_sync.tasks import sync_github_members
from integrations.models import MemberSyncRun

Status = MemberSyncRun.Status
Trigger = MemberSyncRun.Trigger

# On PostgreSQL too (.ci/run): durations computed by the database.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ELSEWHERE = "203.0.113.9"


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def finished_run(integration, *, trigger, status, seconds):
    start = timezone.now() - timedelta(hours=1)
    return MemberSyncRun.objects.create(
        integration=integration,
        trigger=trigger,
        status=status,
        started_at=start,
        finished_at=start + timedelta(seconds=seconds),
    )


def test_it_refuses_an_address_outside_the_list_without_the_token(client, settings):
    settings.METRICS_TOKEN = "scrape-token"

    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_it_refuses_everybody_elsewhere_when_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.services  # the metrics read Redis (open streams, queued messages)
def test_it_answers_the_tokens_holder_anywhere(client, settings, db):
    settings.METRICS_TOKEN = "scrape-token"

    response = client.get("/metrics", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer scrape-token")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.services  # the metrics read Redis (open streams, queued messages)
def test_it_answers_an_allowed_address_or_network(client, settings, db):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_it_counts_runs_by_trigger_and_outcome(client, integration):
    finished_run(integration, trigger=Trigger.MANUAL, status=Status.COMPLETE, seconds=3)
    finished_run(integration, trigger=Trigger.MANUAL, status=Status.COMPLETE, seconds=90)
    finished_run(integration, trigger=Trigger.ONBOARDING, status=Status.ERROR, seconds=2000)
    MemberSyncRun.objects.create(integration=integration, trigger=Trigger.MANUAL, status=Status.QUEUED)

    metrics = scrape(client)

    assert metrics["member_sync_runs_total", (("status", "complete"), ("trigger", "manual"))] == 2
    assert metrics["member_sync_runs_total", (("status", "error"), ("trigger", "onboarding"))] == 1
    assert metrics["member_sync_runs_active", (("status", "queued"), ("trigger", "manual"))] == 1
    assert ("member_sync_runs_total", (("status", "queued"), ("trigger", "manual"))) not in metrics


def test_it_shows_how_long_runs_took_as_a_histogram(client, integration):
    finished_run(integration, trigger=Trigger.MANUAL, status=Status.COMPLETE, seconds=3)
    finished_run(integration, trigger=Trigger.MANUAL, status=Status.COMPLETE, seconds=90)
    finished_run(integration, trigger=Trigger.ONBOARDING, status=Status.ERROR, seconds=2000)

    metrics = scrape(client)

    def bucket(status, le):
        return metrics["member_sync_duration_seconds_bucket", (("le", le), ("status", status))]

    assert (bucket("complete", "1.0"), bucket("complete", "5.0"), bucket("complete", "120.0")) == (0, 1, 2)
    assert bucket("complete", "+Inf") == 2
    assert metrics["member_sync_duration_seconds_count", (("status", "complete"),)] == 2
    assert metrics["member_sync_duration_seconds_sum", (("status", "complete"),)] == 93
    assert (bucket("error", "1800.0"), bucket("error", "3600.0")) == (0, 1)


def test_it_shows_the_messages_waiting_in_the_queue(client, integration, broker):
    tasks.request_member_sync(integration=integration, trigger=Trigger.MANUAL)
    sync_github_members.send_with_options(args=(12345,), delay=600_000)

    metrics = scrape(client)

    assert metrics["member_sync_queue_messages", (("queue", "member_sync"),)] == 1
    assert metrics["member_sync_queue_messages", (("queue", "member_sync.DQ"),)] == 1


def test_it_shows_githubs_remaining_rate_limit_as_the_latest_run_saw_it(client, integration, broker, github):
    run, _ = tasks.request_member_sync(integration=integration, trigger=Trigger.MANUAL)
    sync_github_members.fn(run.pk)
    token = github.tokens.get(integration.access_token)
    remaining = github.tokens.budget(token, "graphql").remaining

    metrics = scrape(client)

    assert remaining < RATE_LIMIT
    assert metrics["github_rate_limit_remaining", (("team", "acme"),)] == remaining


@pytest.mark.services  # the metrics read Redis (open streams, queued messages)
def test_it_counts_the_event_streams_open_in_every_web_process(client, alice, bob):
    before = scrape(client)[("member_sync_event_streams_open", ())]
    claims = [(user.pk, streams.claim_stream(user.pk)) for user in (alice, bob, bob)]

    assert scrape(client)[("member_sync_event_streams_open", ())] == before + 3
    for user_id, claim in claims:
        streams.release_stream(user_id, claim)
    assert scrape(client)[("member_sync_event_streams_open", ())] == before
