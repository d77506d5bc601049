"""GET /metrics: Prometheus metrics of the member sync, read from the database and Redis at scrape time.

Web processes and workers are separate processes, and a counter kept in one process's memory
would see only that process's share (or need prometheus-client's multiprocess mode, its files and
their cleanup). The database already records every run and Redis holds the queue, so a scrape of
any web process reads the whole deployment's state from them. Only an operator may read it
(ops/access.py).
"""

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, cast

import dramatiq
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpResponse, HttpResponseForbidden
from django.utils import timezone
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from integrations.live.streams import open_stream_count
from integrations.member_sync.tasks import sync_github_members, sync_large_github_members
from integrations.models import ACTIVE_SYNC_STATUSES, MemberSyncRun
from ops.access import operator

logger = logging.getLogger(__name__)

Status = MemberSyncRun.Status

# Upper bounds, in seconds, of the sync duration histogram's buckets.
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class MemberSyncCollector(Collector):
    def collect(self):
        yield from run_counts()
        yield run_durations()
        yield from queue_depth()
        yield GaugeMetricFamily("member_sync_event_streams_open", "Event streams open.", value=open_stream_count())
        yield rate_limit_remaining()


def run_counts():
    finished = CounterMetricFamily(
        "member_sync_runs", "Member sync runs finished, by trigger and outcome.", labels=["trigger", "status"]
    )
    active = GaugeMetricFamily(
        "member_sync_runs_active", "Member sync runs queued or syncing now, by trigger.", labels=["trigger", "status"]
    )
    counts = MemberSyncRun.objects.values_list("trigger", "status").annotate(runs=Count("pk")).order_by()
    for trigger, status, runs in counts:
        (active if status in ACTIVE_SYNC_STATUSES else finished).add_metric([trigger, status], runs)
    yield finished
    yield active


def run_durations():
    """From the start to the end of every finished run, counted per bucket by the database."""
    histogram = HistogramMetricFamily(
        "member_sync_duration_seconds", "Time from a run's start to its end, by outcome.", labels=["status"]
    )
    # Named elapsed, not duration: that is MemberSyncRun's property (the same, in Python, for one run).
    elapsed = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le{index}": Count("pk", filter=Q(elapsed__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(DURATION_BUCKETS)
    }
    # A row per outcome; its le<index> keys are named at run time.
    rows: Iterable[Mapping[str, Any]] = (
        MemberSyncRun.objects.filter(
            status__in=[Status.COMPLETE, Status.ERROR], started_at__isnull=False, finished_at__isnull=False
        )
        .annotate(elapsed=elapsed)
        .values("status")
        .annotate(runs=Count("pk"), total=Sum("elapsed"), **buckets)
        .order_by()
    )
    for row in rows:
        counts = [(str(float(bound)), row[f"le{index}"]) for index, bound in enumerate(DURATION_BUCKETS)]
        histogram.add_metric(
            [row["status"]], buckets=[*counts, ("+Inf", row["runs"])], sum_value=row["total"].total_seconds()
        )
    return histogram


def queue_depth():
    """Messages in the syncs' Dramatiq queues (small and large organizations): waiting for a worker, and
    delayed (retries waiting for a rate limit's reset or a backoff, large syncs waiting for a slot)."""
    # A RedisBroker: config/settings.py's DRAMATIQ_BROKER.
    broker = cast(RedisBroker, dramatiq.get_broker())
    gauge = GaugeMetricFamily("member_sync_queue_messages", "Messages in the member sync queue.", labels=["queue"])
    try:
        # RedisBroker keeps a queue's waiting message ids in the list <namespace>:<queue>, and every
        # message of the delay queue, held by a worker until its time or not, in <namespace>:<queue>.DQ.msgs.
        for queue in (sync_github_members.queue_name, sync_large_github_members.queue_name):
            gauge.add_metric([queue], broker.client.llen(f"{broker.namespace}:{queue}"))
            gauge.add_metric([dq_name(queue)], broker.client.hlen(f"{broker.namespace}:{dq_name(queue)}.msgs"))
    except Exception as error:
        # The other metrics still say something without Redis; /healthz tells that it is down.
        logger.warning("Could not read the queue depth: %s", error)
        return
    yield gauge


def rate_limit_remaining():
    """GitHub's remaining requests as each team's latest run saw them, while that window lasts."""
    gauge = GaugeMetricFamily(
        "github_rate_limit_remaining",
        "Requests GitHub allows the team's token until the window resets, as its latest run saw it.",
        labels=["team"],
    )
    seen = (
        MemberSyncRun.objects.filter(rate_limit_reset_at__gt=timezone.now(), rate_limit_remaining__isnull=False)
        .order_by("integration_id", "-pk")
        .values_list("integration_id", "integration__team__slug", "rate_limit_remaining")
    )
    teams = set()
    for integration_id, team, remaining in seen:
        if integration_id not in teams:
            teams.add(integration_id)
            assert remaining is not None  # rate_limit_remaining__isnull=False
            gauge.add_metric([team], remaining)
    return gauge


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(MemberSyncCollector())


def metrics(request):
    if not operator(request):
        return HttpResponseForbidden("Forbidden\n", content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
