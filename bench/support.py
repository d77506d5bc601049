"""What every benchmark needs: a throwaway database, the GitHub simulator in its own process, and
the table of timings and bars each prints."""

import html
import os
import re
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import requests

from scripts.stack import start_simulator, stop

ROOT = Path(__file__).resolve().parent.parent


# A key for the bench's own throwaway database, never a deployment's.
BENCH_TOKEN_KEY = "YmVuY2gtb25seS10b2tlbi1rZXktMzItYnl0ZXMtLi4="  # noqa: S105


def bench_environment(directory):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key-never-a-deployments-key"),
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{directory / 'bench.sqlite3'}"),
        "LOG_LEVEL": "WARNING",
        # Production settings (DEBUG off), over plain HTTP on 127.0.0.1, apart from other Redis users.
        "TOKEN_ENCRYPTION_KEYS": os.environ.get("TOKEN_ENCRYPTION_KEYS", BENCH_TOKEN_KEY),
        "EVENTS_CHANNEL_PREFIX": os.environ.get("EVENTS_CHANNEL_PREFIX", "bench-"),
        "HTTPS_ONLY": "0",
        # Collected into the run's own folder: a bench leaves the work tree as it found it.
        "STATIC_ROOT": str(directory / "static"),
    }


@contextmanager
def bench_database():
    """A migrated database for one benchmark run (a temporary SQLite file, or BENCH_DATABASE_URL), and
    the static files collected (into STATIC_ROOT, as `make run` does) as a deployment has them."""
    with tempfile.TemporaryDirectory() as directory:
        env = bench_environment(Path(directory))
        for command in ("migrate", "collectstatic"):
            subprocess.run([sys.executable, "manage.py", command, "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        yield env


@contextmanager
def bench_cluster(orgs, **overrides):
    """`make cluster` (tests/stack.py's Cluster: Pushpin, web processes, workers, a PostgreSQL
    database of its own) on production settings, against a GitHub simulator holding these
    organizations; and Django set up in this process on the cluster's database, for the bench's users
    and teams. Django can be set up once per process: run each cluster bench in a process of its own."""
    from tests.stack import Cluster

    with tempfile.TemporaryDirectory() as directory:
        env = bench_environment(Path(directory))
        shared = {name: env[name] for name in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "HTTPS_ONLY", "LOG_LEVEL")}
        with github_simulator(env, orgs) as simulator_url:
            cluster = Cluster(
                **shared,
                DEBUG="0",
                STATIC_ROOT=env["STATIC_ROOT"],
                GITHUB_API_URL=simulator_url,
                GITHUB_GRAPHQL_URL=f"{simulator_url}/graphql",
                GITHUB_WEB_URL=simulator_url,
                **overrides,
            )
            try:
                cluster.start()
                # Not the cluster's marker: Cluster.stop kills every process that carries it.
                for name in ("DATABASE_URL", "DRAMATIQ_NAMESPACE", "EVENTS_CHANNEL_PREFIX"):
                    shared[name] = cluster.env[name]
                os.environ.update(shared, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0")
                import django

                django.setup()
                yield cluster, simulator_url
            finally:
                from django.db import connections

                connections.close_all()
                cluster.stop()


def bench_team(slug, organization, token):
    """A team connected to a simulator organization, and the session cookies of its admin."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from integrations.models import GitHubIntegration
    from teams.models import Membership, Team

    user = get_user_model().objects.create_user(f"{slug}-admin")
    team = Team.objects.create(name=slug.title(), slug=slug)
    Membership.objects.create(team=team, user=user, role=Membership.Role.ADMIN)
    integration = GitHubIntegration(team=team, organization_login=organization)
    integration.access_token = token
    integration.save()
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


def sync_now_request(web_url, team_slug, cookies):
    """What the members page's Sync Now button sends: its URL, and the session's cookies and headers."""
    http = requests.Session()
    http.cookies.update(cookies)
    http.get(f"{web_url}/t/{team_slug}/github/members/", timeout=10).raise_for_status()
    headers = {"X-CSRFToken": http.cookies["csrftoken"], "X-Member-Sync-Partial": "status"}
    return f"{web_url}/t/{team_slug}/github/members/sync/", dict(http.cookies), headers


def rendered_events_url(web_url, team_slug, cookies):
    """The stream URL the members page opens, with the event id it was rendered with: a page that
    reconnects before it has received an event resumes from that id, and misses nothing published
    while it was away (a client without it came back "from now")."""
    page = requests.get(f"{web_url}/t/{team_slug}/github/members/", cookies=cookies, timeout=10)
    page.raise_for_status()
    return web_url + html.unescape(re.search(r'data-events-url="([^"]+)"', page.text).group(1))


@contextmanager
def github_simulator(env, orgs):
    """The simulator in a process of its own (scripts/stack.py), so that its work does not count against ours."""
    process, url = start_simulator(*(f"--org={login}={size}" for login, size in orgs.items()), env=env)
    try:
        yield url
    finally:
        stop(process)


def process_figures(pid):
    """A running process's resident memory (MB), threads, open file descriptors and the CPU time it
    has used (s), from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    # utime and stime, the 14th and 15th fields, counted after the command's closing parenthesis.
    ticks = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[11:13]
    return {
        "CPU s": sum(map(int, ticks)) / os.sysconf("SC_CLK_TCK"),
        "RSS MB": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def database_connections(pid, env):
    """Connections to the bench's database: on SQLite the process's open handles of the file, on
    PostgreSQL every session of the database (the worker's among them)."""
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        database = os.path.realpath(url.removeprefix("sqlite:///"))
        fds = Path(f"/proc/{pid}/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == database)
    import psycopg

    with psycopg.connect(url) as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        return connection.execute(query).fetchone()[0]


def control(simulator_url, path, payload):
    response = requests.post(f"{simulator_url}/_simulator/{path}", json=payload, timeout=10)
    response.raise_for_status()
    return response.json() if response.content else None


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms(seconds):
    return round(seconds * 1000, 1)


def timings_row(measure, seconds):
    """A table row of timings: how many, their median, 99th percentile and longest, in ms."""
    return {
        "measure": measure,
        "n": len(seconds),
        "p50 ms": ms(statistics.median(seconds)),
        "p99 ms": ms(percentile(seconds, 0.99)),
        "max ms": ms(max(seconds)),
    }


def print_table(title, columns, rows):
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        first, *rest = zip(row, widths, strict=True)
        print("  ".join([first[0].ljust(first[1]), *(cell.rjust(width) for cell, width in rest)]))


def print_bars(bars):
    print()
    for label, ok, figure in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {figure}")
