"""Benchmark of one pass of the scheduled full re-sync over 10,000 due integrations: the database
time it takes to claim them and queue their runs, the enqueueing after commit included."""

import os
import time
from contextlib import contextmanager

from bench.support import bench_database, print_bars, print_table

SIZES = (1_000, 10_000)


def main():
    with bench_database() as env:
        # A namespace of its own, emptied afterwards: no worker on this machine takes these messages.
        os.environ.update(env, DRAMATIQ_NAMESPACE="bench-schedule", MEMBER_SYNC_EVERY_SECONDS="86400")
        import django

        django.setup()
        import dramatiq

        broker = dramatiq.get_broker()
        try:
            rows = [_measure(size) for size in SIZES]
        finally:
            broker.flush_all()
    print_table(
        "Scheduled full re-sync: one pass over due integrations (in process, real Redis broker)",
        ["integrations", "runs queued", "database s", "SQL + commits", "pass s"],
        rows,
    )
    big = rows[-1]
    print_bars(
        [
            (
                "a pass over 10,000 due integrations queues them in < 5 s of database time",
                big["runs queued"] == big["integrations"] and big["database s"] < 5,
                f"{big['runs queued']} queued in {big['database s']} s",
            ),
        ]
    )


def _measure(size):
    from django.db import connection
    from django.utils import timezone

    from integrations.member_sync.schedule import queue_due_full_syncs
    from integrations.models import GitHubIntegration, MemberSyncRun
    from teams.models import Team

    MemberSyncRun.objects.all().delete()
    GitHubIntegration.objects.all().delete()
    Team.objects.all().delete()
    teams = Team.objects.bulk_create(Team(name=f"Bench {n}", slug=f"bench-{n}") for n in range(size))
    due = timezone.now() - timezone.timedelta(minutes=1)
    # Any token will do: the schedule asks only whether there is one.
    token = "-"  # noqa: S105
    GitHubIntegration.objects.bulk_create(
        GitHubIntegration(team=team, organization_login=team.slug, encrypted_access_token=token, next_full_sync_at=due)
        for team in teams
    )

    timer = StatementTimer()
    started = time.perf_counter()
    with connection.execute_wrapper(timer), timer.commits(connection):
        queued = queue_due_full_syncs()
    elapsed = time.perf_counter() - started
    return {
        "integrations": size,
        "runs queued": queued,
        "database s": round(timer.seconds, 2),
        "SQL + commits": timer.statements,
        "pass s": round(elapsed, 2),
    }


class StatementTimer:
    """Adds up the time the database spends on each statement (and commit) this thread sends."""

    def __init__(self):
        self.seconds = 0.0
        self.statements = 0

    def __call__(self, execute, sql, params, many, context):
        with self._timed():
            return execute(sql, params, many, context)

    @contextmanager
    def commits(self, connection):
        """Commits too (each a disk sync), which no execute wrapper sees."""
        commit = connection._commit

        def timed_commit():
            with self._timed():
                return commit()

        connection._commit = timed_commit
        try:
            yield
        finally:
            del connection._commit

    @contextmanager
    def _timed(self):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started
            self.statements += 1


if __name__ == "__main__":
    main()
