"""Benchmark of the member sync: organizations of 1,000 to 50,000 members at 0 and 20 ms of
simulated GitHub latency.

Each scenario runs in a fresh process (`python -m bench.member_sync --scenario …`), so its peak
memory is its own.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

from bench.support import ROOT, bench_database, control, github_simulator, print_bars, print_table

SIZES = (1_000, 10_000, 50_000)
LATENCIES_MS = (0, 20)
COLUMNS = [
    "members",
    "latency ms",
    "wall s",
    "fetch s",
    "apply s",
    "API calls",
    "API floor s",
    "wall/floor",
    "SQL",
    "rows written",
    "peak RSS +MB",
]


def org_login(size):
    return f"bench-{size}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(**json.loads(args.scenario))))
    else:
        run_all()


def run_all():
    rows = []
    with bench_database() as env, github_simulator(env, {org_login(size): size for size in (100, *SIZES)}) as url:
        token = control(url, "tokens", {"scopes": ["read:org"]})["token"]
        scenarios = [(100, 0, False)] + [(size, latency, False) for latency in LATENCIES_MS for size in SIZES]
        scenarios.append((10_000, 0, True))
        for size, latency, resync in scenarios:
            control(url, "latency", {"ms": latency})
            scenario = {"simulator": url, "token": token, "size": size, "latency_ms": latency, "resync": resync}
            output = subprocess.run(
                [sys.executable, "-m", "bench.member_sync", "--scenario", json.dumps(scenario)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
    shown = [row for row in rows if row["members"] != 100]
    print_table("Member sync (new team each run; 'unchanged' = a second sync with nothing changed)", COLUMNS, shown)
    print_bars(bars(rows))


def bars(rows):
    def find(size, latency, resync=False):
        return next(r for r in rows if (r["members"], r["latency ms"], r["resync"]) == (size, latency, resync))

    at_20 = find(10_000, 20)
    allowed = 1.25 * at_20["API floor s"] + 1
    apply_10k = find(10_000, 0)["apply s"]
    unchanged = find(10_000, 0, True)
    return [
        (
            "10,000 members at 20 ms within 1.25 x API floor + 1 s",
            at_20["wall s"] <= allowed,
            f"{at_20['wall s']} s (allowed {allowed:.2f} s)",
        ),
        ("applying 10,000 new members under 1.5 s", apply_10k < 1.5, f"{apply_10k} s"),
        (
            "an unchanged re-sync of 10,000 writes 0 member rows",
            unchanged["rows written"] == 0,
            f"{unchanged['rows written']} rows",
        ),
        (
            "SQL statements the same for 100 and 10,000 members",
            find(100, 0)["SQL"] == find(10_000, 0)["SQL"],
            f"{find(100, 0)['SQL']} and {find(10_000, 0)['SQL']}",
        ),
    ]


def run_scenario(*, simulator, token, size, latency_ms, resync):
    import django

    django.setup()
    from django.db import connection

    from integrations.github.client import GitHubClient
    from integrations.models import GitHubIntegration, GitHubMember
    from integrations.sync import apply_members, fetch_members
    from teams.models import Team

    slug = f"bench-{size}-{latency_ms}-{int(time.time() * 1000)}"
    integration = GitHubIntegration.objects.create(
        team=Team.objects.create(name=slug, slug=slug), organization_login=org_login(size)
    )
    client = GitHubClient(token, api_url=simulator, graphql_url=f"{simulator}/graphql")
    if resync:
        apply_members(integration, fetch_members(integration, client=client))
        client = GitHubClient(token, api_url=simulator, graphql_url=f"{simulator}/graphql")

    statements = 0
    rows_written = 0
    member_table = GitHubMember._meta.db_table

    def count(execute, sql, params, many, context):
        nonlocal statements, rows_written
        statements += 1
        cursor = context["cursor"]
        result = execute(sql, params, many, context)
        if member_table in sql and sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            rows_written += max(cursor.rowcount, 0)
        return result

    rss_before = _rss_mb()
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        fetched = fetch_members(integration, client=client)
        fetched_at = time.perf_counter()
        apply_members(integration, fetched)
    finished = time.perf_counter()
    floor = client.api_calls * latency_ms / 1000
    wall = finished - started
    return {
        "members": size,
        "latency ms": latency_ms,
        "resync": resync,
        "wall s": round(wall, 2),
        "fetch s": round(fetched_at - started, 2),
        "apply s": round(finished - fetched_at, 2),
        "API calls": client.api_calls,
        "API floor s": round(floor, 2),
        "wall/floor": f"{wall / floor:.2f}" if floor else "-",
        "SQL": statements,
        "rows written": rows_written,
        "peak RSS +MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before, 1),
    }


def _rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1024 / 1024


if __name__ == "__main__":
    main()
