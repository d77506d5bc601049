"""Benchmark of Sync Now under load, against `make cluster` (through Pushpin, two web processes, two
workers): 200 teams, each connected to a small organization of its own, press Sync Now 20 times a
second between them (each press a team picked at random) for a minute (BENCH_SYNC_NOW_SECONDS).
How long a press is answered, whether any fails (a press while the team's sync is under way is
answered "already under way", not an error), and how long a run waits for a worker (queued →
syncing, from the runs' rows).

The presses are sent on schedule whatever the answers (an open loop, as independent browsers do):
a press's time runs from when it was due, so a slow answer that delays the next press is counted.
"""

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.cluster_streams import PUSHPIN_PROGRAMS
from bench.support import (
    bench_cluster,
    bench_team,
    control,
    print_bars,
    print_table,
    process_figures,
    sync_now_request,
    timings_row,
)
from tests.helpers import wait_for

TEAMS = 200
PRESSES_PER_SECOND = 20
SECONDS = int(os.environ.get("BENCH_SYNC_NOW_SECONDS", 60))
MEMBERS = 5


def main():
    orgs = {f"bench-load-{n:03d}": MEMBERS for n in range(TEAMS)}
    with bench_cluster(orgs) as (cluster, simulator_url):
        teams = []
        for org in orgs:
            token = control(simulator_url, "tokens", {"scopes": ["read:org"]})["token"]
            slug = org.removeprefix("bench-")
            teams.append(sync_now_request(cluster.url, slug, bench_team(slug, org, token)))

        cpu_before = _cpu_by_role(cluster)
        started = time.time()
        presses = PRESSES_PER_SECOND * SECONDS
        with ThreadPoolExecutor(max_workers=64) as pool:
            chooser = random.Random(TEAMS)  # noqa: S311 (the same presses every run, not a secret)
            due = [started + n / PRESSES_PER_SECOND for n in range(presses)]
            answers = []
            for at in due:
                time.sleep(max(0.0, at - time.time()))
                answers.append(pool.submit(_press, *chooser.choice(teams), due=at))
            answers = [answer.result() for answer in answers]
        load_seconds = time.time() - started
        cpu = {role: round(seconds - cpu_before.get(role, 0), 1) for role, seconds in _cpu_by_role(cluster).items()}
        runs = _runs_once_done(started)

    times = [seconds for _, seconds in answers]
    statuses = [status for status, _ in answers]
    errors = [status for status in statuses if status not in (200, 202)]
    waits = [(started_at - queued_at).total_seconds() for queued_at, started_at, _ in runs if started_at]
    failed_runs = sum(1 for *_, status in runs if status != "complete")
    print_table(
        f"Sync Now under load ({TEAMS} teams, {PRESSES_PER_SECOND} presses/s for {load_seconds:.0f} s, through "
        "Pushpin; make cluster: 2 web processes, 2 workers)",
        ["measure", "n", "p50 ms", "p99 ms", "max ms"],
        [
            timings_row("Sync Now request (from when it was due)", times),
            timings_row("queue wait (queued → syncing)", waits),
        ],
    )
    print_table(
        "Their answers and runs",
        ["presses", "202 queued", "200 already under way", "errors", "runs", "runs not complete"],
        [{"presses": len(answers), "202 queued": statuses.count(202), "200 already under way": statuses.count(200),
          "errors": len(errors), "runs": len(runs), "runs not complete": failed_runs}],
    )  # fmt: skip
    print_table(
        f"CPU seconds used during the {load_seconds:.0f} s of presses ({os.cpu_count()} cores: "
        f"{os.cpu_count() * load_seconds:.0f} CPU s in all; the rest went to PostgreSQL, Redis, the simulator)",
        list(cpu),
        [cpu],
    )
    print_bars(
        [
            ("no Sync Now press answered with an error", not errors, f"{len(errors)} ({sorted(set(errors))})"),
            ("every run completes", failed_runs == 0, f"{failed_runs} of {len(runs)} not complete"),
        ]
    )


def _press(url, cookies, headers, *, due):
    try:
        status = requests.post(url, headers=headers, cookies=cookies, timeout=30).status_code
    except requests.RequestException as error:
        status = type(error).__name__
    return status, time.time() - due


def _cpu_by_role(cluster):
    pids = {
        "web processes": cluster.web_pids(),
        "workers": cluster.pids("dramatiq"),
        "Pushpin": [pid for program in PUSHPIN_PROGRAMS for pid in cluster.pids(program)],
        "the bench (presses)": [os.getpid()],
    }
    return {role: sum(process_figures(pid)["CPU s"] for pid in found) for role, found in pids.items()}


def _runs_once_done(since):
    """(queued_at, started_at, status) of every run queued since then, once none is still under way."""
    from datetime import UTC, datetime

    from integrations.member_sync.runs import ACTIVE_SYNC_STATUSES
    from integrations.models import MemberSyncRun

    runs = MemberSyncRun.objects.filter(queued_at__gte=datetime.fromtimestamp(since, UTC))
    wait_for(lambda: not runs.filter(status__in=ACTIVE_SYNC_STATUSES).exists(), timeout=300, message="runs to end")
    return list(runs.values_list("queued_at", "started_at", "status"))


if __name__ == "__main__":
    main()
