"""Benchmark of the sync pipeline with its real processes (uvicorn, a rundramatiq worker, Redis,
the GitHub simulator): how fast Sync Now answers, how soon a worker picks the run up, and how soon
a worker's event reaches 1, 200 and 1,000 connected browsers, and what holding those streams costs the
one web process (no Pushpin in front): its memory, threads and database connections.

The streams are held by client processes of their own (bench/stream_clients.py), so that reading
a thousand of them neither competes with the server in its process nor delays their receive times."""

import os
import time
from datetime import datetime

import requests

from bench.stream_clients import EventStream, StreamClients
from bench.support import (
    bench_database,
    bench_team,
    control,
    database_connections,
    github_simulator,
    print_bars,
    print_table,
    process_figures,
    sync_now_request,
    timings_row,
)

REQUESTS = 40
EVENTS_PER_CLIENT_COUNT = 5
CLIENT_COUNTS = (1, 200, 1000)
ORG = "bench-tiny"


def main():
    with bench_database() as env, github_simulator(env, {ORG: 5}) as simulator_url:
        env.update(
            GITHUB_API_URL=simulator_url, GITHUB_GRAPHQL_URL=f"{simulator_url}/graphql", GITHUB_WEB_URL=simulator_url
        )
        # One bench user holds every open stream: a thousand tabs, over any sane per-user cap.
        env["EVENTS_MAX_STREAMS_PER_USER"] = "2000"
        # Its streams open all at once and do not retry: none shed.
        env["WEB_MAX_PENDING_REQUESTS"] = "5000"
        os.environ.update(env)
        import django

        django.setup()
        # Imported after setup: they need Django's settings and apps.
        from tests.stack import web_server, worker

        team_slug = "bench"
        cookies = bench_team(team_slug, ORG, control(simulator_url, "tokens", {"scopes": ["read:org"]})["token"])
        with web_server(env) as web, worker(env):
            events_url = f"{web.url}/t/{team_slug}/events/"
            stream = EventStream(events_url, cookies=cookies)
            stream.next("stream-open")
            sync_now = _sync_now_client(web.url, team_slug, cookies)

            request_times, pickup_times = [], []
            for _ in range(REQUESTS):
                started = time.time()
                run_id = sync_now()
                request_times.append(time.time() - started)
                stream.next(where=lambda data, run_id=run_id: data["run"] == run_id and data["status"] == "syncing")
                pickup_times.append(stream.last_received_at - started)
                stream.next(where=lambda data, run_id=run_id: data["run"] == run_id and data["status"] == "complete")

            event_rows, cost_rows = [], [_stream_cost(0, web.pid, env)]
            for count in CLIENT_COUNTS:
                streams = StreamClients(events_url, cookies=cookies, count=count, processes=2 if count > 500 else 1)
                streams.open()
                cost_rows.append(_stream_cost(count, web.pid, env))
                latencies = []
                for _ in range(EVENTS_PER_CLIENT_COUNT):
                    run_id = sync_now()
                    marker = f'"run": {run_id}, "status": "complete"'.encode()
                    received = streams.wait_for_all(marker)
                    complete = stream.next(
                        where=lambda data, run_id=run_id: data["run"] == run_id and data["status"] == "complete"
                    )
                    published = datetime.fromisoformat(complete["at"]).timestamp()
                    latencies += [at - published for at in received]
                cost_rows[-1]["threads after events"] = process_figures(web.pid)["threads"]
                streams.close()
                event_rows.append(timings_row(f"event latency, {count} client(s)", latencies))
            stream.close()

    rows = [
        timings_row("Sync Now request", request_times),
        timings_row("pick-up (request → syncing event)", pickup_times),
    ]
    rows += event_rows
    print_table(
        "Sync pipeline (real uvicorn, rundramatiq, Redis)", ["measure", "n", "p50 ms", "p99 ms", "max ms"], rows
    )
    print_table(
        "The web process holding the streams (one uvicorn, no Pushpin)",
        ["open streams", "RSS MB", "threads", "threads after events", "fds", "DB connections"],
        cost_rows,
    )
    at_200 = next(row for row in event_rows if "200" in row["measure"])
    idle, busiest = cost_rows[0], cost_rows[-1]
    print_bars(
        [
            ("Sync Now request p50 < 30 ms", rows[0]["p50 ms"] < 30, f"{rows[0]['p50 ms']} ms"),
            ("pick-up p50 < 150 ms", rows[1]["p50 ms"] < 150, f"{rows[1]['p50 ms']} ms"),
            ("event latency p50 < 50 ms at 200 clients", at_200["p50 ms"] < 50, f"{at_200['p50 ms']} ms"),
            ("no database connection held per open stream", busiest["DB connections"] <= idle["DB connections"] + 1,
             f"{idle['DB connections']} at 0 streams, {busiest['DB connections']} at {busiest['open streams']}"),
        ]
    )  # fmt: skip


def _stream_cost(count, pid, env):
    return {"open streams": count, **process_figures(pid), "DB connections": database_connections(pid, env)}


def _sync_now_client(web_url, team_slug, cookies):
    """Press Sync Now as the page's script does; returns the run id the answer names."""
    from integrations.models import MemberSyncRun

    url, cookies, headers = sync_now_request(web_url, team_slug, cookies)

    def sync_now():
        response = requests.post(url, headers=headers, cookies=cookies, timeout=10)
        assert response.status_code == 202, response.status_code
        return MemberSyncRun.objects.order_by("-pk").values_list("pk", flat=True).first()

    return sync_now


if __name__ == "__main__":
    main()
