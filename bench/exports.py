"""Benchmark of github_members_export: the CSV of 1,000 and of 100,000 members, and of as many
changes, streamed by uvicorn serving config.asgi as a deployment serves it, with the web process's
peak memory while it serves the whole file; and the JSON export of 100,000 members and of 100,000
changes followed page by page, each page's time and SQL statements.

Each CSV is served by a web process of its own, which first serves a team of 10 the same export (so
that the code and the database connection are loaded), then has its peak resident memory reset
(/proc/PID/clear_refs) and serves the measured file: "peak RSS +MB" is the peak while serving it,
above what the process held just before.
"""

import os
import statistics
import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

from bench.support import bench_database, percentile, print_bars, print_table
from tests.stack import session_cookies, web_server

SIZES = (1_000, 100_000)
PER_PAGE = 1000
CHUNK = 64 * 1024


def main():
    with bench_database() as env:
        # Plain HTTP with DEBUG off starts only for the loopback names (config/settings.py).
        os.environ.update(env, ALLOWED_HOSTS="127.0.0.1")
        import django

        django.setup()
        warm = _team(10)
        teams = {size: _team(size) for size in SIZES}
        streamed = [_stream(warm, teams[size], size, changes) for changes in (False, True) for size in SIZES]
        paged = [_pages(teams[SIZES[-1]], changes) for changes in (False, True)]
    print_table(
        "CSV export streamed (uvicorn serving config.asgi, a web process of its own for each; "
        "peak RSS of the web process above its RSS before the request)",
        ["export", "rows", "MB sent", "s", "peak RSS +MB"],
        streamed,
    )
    print_table(
        f"JSON export followed page by page (per_page={PER_PAGE:,}, one kept-alive connection)",
        ["export", "rows", "pages", "total s", "p50 ms", "p99 ms", "max ms", "first ms", "last ms", "SQL a page"],
        paged,
    )
    print_bars(_bars(streamed, paged))


def _bars(streamed, paged):
    def find(export, rows):
        return next(row for row in streamed if (row["export"], row["rows"]) == (export, rows))

    bars = []
    for export in ("members", "changes"):
        small, big = find(export, SIZES[0]), find(export, SIZES[-1])
        bars.append(
            (
                f"{export} CSV: 100,000 rows streamed within 20 MB of 1,000",
                big["peak RSS +MB"] <= small["peak RSS +MB"] + 20,
                f"+{big['peak RSS +MB']} MB and +{small['peak RSS +MB']} MB",
            )
        )
    for row in paged:
        bars.append(
            (
                f"{row['export']} JSON: the same SQL statements on every page",
                len(set(row["SQL a page"].split("/"))) == 1,
                f"{row['SQL a page']} (first/last page)",
            )
        )
    return bars


def _team(size):
    """A team of `size` members (a tenth of them gone) and as many changes, made by a hundred runs
    of size/100 changes each, all of a run's at one time; its admin's session cookies."""
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth import get_user_model

    from integrations.models import GitHubIntegration, GitHubMember, MemberChange, MemberSyncRun
    from teams.models import Membership, Team

    slug = f"export-{size}"
    user = get_user_model().objects.create_user(f"{slug}-admin")
    team = Team.objects.create(name=slug, slug=slug)
    Membership.objects.create(team=team, user=user, role=Membership.Role.ADMIN)
    integration = GitHubIntegration.objects.create(team=team, organization_login=slug)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    GitHubMember.objects.bulk_create(
        (
            GitHubMember(
                integration=integration, github_id=1_000_000 + n, node_id=f"U_{n}", login=f"user-{n:06d}",
                name=f"User Number {n}", email=f"user-{n}@example.com", role="admin" if n % 10 == 0 else "member",
                avatar_url=f"https://avatars.githubusercontent.com/u/{1_000_000 + n}?v=4",
                is_active=n % 10 != 3, left_at=started if n % 10 == 3 else None,
            )
            for n in range(size)
        ),
        batch_size=5000,
    )  # fmt: skip
    kinds = ("added", "deactivated", "login_changed", "role_changed", "profile_changed")
    runs = MemberSyncRun.objects.bulk_create(
        MemberSyncRun(integration=integration, trigger="schedule", status="complete") for _ in range(100)
    )
    per_run = max(1, size // 100)
    MemberChange.objects.bulk_create(
        (
            MemberChange(
                integration=integration, run=runs[n // per_run % 100], github_id=1_000_000 + n, login=f"user-{n:06d}",
                kind=kinds[n % 5], before="member" if n % 5 == 3 else "", after="admin" if n % 5 == 3 else "",
                at=started + timedelta(days=n // per_run),
            )
            for n in range(size)
        ),
        batch_size=5000,
    )  # fmt: skip
    return {"slug": slug, "cookies": session_cookies(user)}


def _stream(warm, team, size, changes):
    query = "?changes=1" if changes else ""
    with web_server({**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}) as web:
        http = _connection(web.url)
        _get_all(http, f"/t/{warm['slug']}/github/members/export/{query}", warm["cookies"])
        status = Path(f"/proc/{web.pid}/status")
        Path(f"/proc/{web.pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
        before = _kb(status, "VmRSS")
        started = time.perf_counter()
        sent = _get_all(http, f"/t/{team['slug']}/github/members/export/{query}", team["cookies"])
        seconds = time.perf_counter() - started
        peak = _kb(status, "VmHWM")
        http.close()
    return {
        "export": "changes" if changes else "members",
        "rows": size,
        "MB sent": round(sent / 1e6, 1),
        "s": round(seconds, 2),
        "peak RSS +MB": round((peak - before) / 1024, 1),
    }


def _pages(team, changes):
    """Every page of the JSON export, following next, timed; the SQL statements of the first and last."""
    import json

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    query = f"?format=json&per_page={PER_PAGE}" + ("&changes=1" if changes else "")
    url = f"/t/{team['slug']}/github/members/export/{query}"
    key = "changes" if changes else "members"
    times, urls, rows = [], [], 0
    with web_server({**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}) as web:
        http = _connection(web.url)
        _get_all(http, url.replace(f"per_page={PER_PAGE}", "per_page=1"), team["cookies"])  # warm-up
        started = time.perf_counter()
        while url:
            urls.append(url)
            began = time.perf_counter()
            body = json.loads(_get(http, url, team["cookies"]))
            times.append(time.perf_counter() - began)
            rows += len(body[key])
            url = body["next"] and urlsplit(body["next"])._replace(scheme="", netloc="").geturl()
        total = time.perf_counter() - started
        http.close()
    client = Client(HTTP_HOST="127.0.0.1")
    for name, value in team["cookies"].items():
        client.cookies[name] = value
    statements = []
    for page in (urls[0], urls[-1]):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(page).status_code == 200
        statements.append(str(len(queries.captured_queries)))
    return {
        "export": key,
        "rows": rows,
        "pages": len(times),
        "total s": round(total, 2),
        "p50 ms": round(statistics.median(times) * 1000, 1),
        "p99 ms": round(percentile(times, 0.99) * 1000, 1),
        "max ms": round(max(times) * 1000, 1),
        "first ms": round(times[0] * 1000, 1),
        "last ms": round(times[-1] * 1000, 1),
        "SQL a page": "/".join(statements),
    }


def _connection(url):
    server = urlsplit(url)
    return HTTPConnection(server.hostname, server.port, timeout=120)


def _send(http, path, cookies):
    http.request("GET", path, headers={"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())})
    response = http.getresponse()
    assert response.status == 200, (path, response.status, response.read()[:500])
    return response


def _get(http, path, cookies):
    return _send(http, path, cookies).read()


def _get_all(http, path, cookies):
    """The whole body read and dropped a chunk at a time, as a client saving it to a file; its length."""
    response = _send(http, path, cookies)
    length = 0
    while chunk := response.read(CHUNK):
        length += len(chunk)
    return length


def _kb(status, field):
    line = next(line for line in status.read_text().splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1])


if __name__ == "__main__":
    main()
