"""Benchmark of open event streams behind Pushpin (`make cluster`, two web processes): how long an
event takes to reach every one of 5,000 open streams, then of 10,000 (5,000 more opened in the same
cluster; `BENCH_CLUSTER_STREAMS`, "5000,10000", names the steps), and what holding them costs each
process, Pushpin's and the web processes' (which should hold no thread per stream: Pushpin holds
them).

All the streams are one team's, read by one user: one publish fanned out to every subscriber,
Pushpin's heaviest case; the per-user cap on streams is raised for it (behind Pushpin a claim counts
until its stream's end, so the warm-up's count too). The streams are held by client processes of
their own (bench/stream_clients.py). The events are those of a few Sync Now runs: an event's latency
runs from the time in its payload (set as it is published) to the time each stream received it, as
the kernel dated its arrival.
"""

import os
import time
from datetime import datetime
from pathlib import Path

import requests

from bench.stream_clients import EventStream, StreamClients
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

# The open streams at each step, one cluster: the streams of a step stay open through the next.
STEPS = [int(count) for count in os.environ.get("BENCH_CLUSTER_STREAMS", "5000,10000").split(",")]
RUNS = 5
CLIENT_PROCESSES = 4
ORG = "bench-fan-out"
PUSHPIN_PROGRAMS = ("condure", "pushpin-proxy", "pushpin-handler", "zurl")
# The bar (21): one event reaches every open page within this, at its 99th percentile.
FAN_OUT_P99_MS = 500


def main():
    cap = str(2 * max(STEPS) + 1000)
    # Its clients open 200 streams at once and do not retry: none shed (the storm is
    # bench/pushpin_restart.py's).
    overrides = {"EVENTS_MAX_STREAMS_PER_USER": cap, "WEB_MAX_PENDING_REQUESTS": "5000"}
    steps = []
    with bench_cluster({ORG: 5}, WEB_PROCESSES=2, **overrides) as (cluster, simulator_url):
        cookies = bench_team("fan-out", ORG, control(simulator_url, "tokens", {"scopes": ["read:org"]})["token"])
        events_url = f"{cluster.url}/t/fan-out/events/"
        url, cookies, headers = sync_now_request(cluster.url, "fan-out", cookies)
        # One stream read in this process for each event's payload: the time it was published at.
        stream = EventStream(events_url, cookies=cookies)
        stream.next("stream-open")

        # Every web process has served a few streams (and so started its threads) before the count at 0.
        warm_up = StreamClients(events_url, cookies=cookies, count=100)
        warm_up.open()
        warm_up.close()
        at_zero = _figures(cluster)
        clients = StreamClients(events_url, cookies=cookies, count=max(STEPS), processes=CLIENT_PROCESSES)
        opened = 0
        for count in STEPS:
            started = time.monotonic()
            clients.open(upto=count)
            opening = time.monotonic() - started
            # A run publishes a burst (queued, syncing, its progress, complete): each event's fan-out
            # queues behind the ones before it, as it does for a real page.
            # Pushpin asks Django about each stream once more, about a second after it subscribed it
            # (its recovery request); when the last stream opens, the last of those are still queued,
            # and an event waits for them. One run first, timed on its own: the steady state is what
            # follows.
            first_run = sum(_run_and_time(url, headers, cookies, stream, clients).values(), [])
            latencies = {}
            load = os.getloadavg()[0]
            before_events, busy_before, runs_started = _figures(cluster, clients), _busy_cpu(), time.monotonic()
            for _ in range(RUNS):
                for kind, times in _run_and_time(url, headers, cookies, stream, clients).items():
                    latencies.setdefault(kind, []).extend(times)
            # With the streams still open, after the events were sent to them.
            after_events = _figures(cluster, clients)
            busy, wall = _busy_cpu() - busy_before, time.monotonic() - runs_started
            steps.append({
                "count": count, "opened": count - opened, "opening": opening,
                "first": first_run, "latencies": latencies,
                "events": round(sum(len(times) for times in latencies.values()) / count),
                "figures": after_events,
                "CPU": {key: after_events[key]["CPU s"] - before_events[key]["CPU s"] for key in after_events},
                "refused": clients.refused, "dropped": clients.dropped,
                "load": load, "busy": busy, "wall": wall,
            })  # fmt: skip
            opened = count
        clients.close()
        stream.close()

    bars = []
    for step in steps:
        count = step["count"]
        fan_out = timings_row(f"event fan-out, every event of {RUNS} runs", sum(step["latencies"].values(), []))
        first = timings_row("event fan-out, first run after the streams opened", step["first"])
        print_table(
            f"Event streams behind Pushpin (make cluster, 2 web processes; {count} streams open, the last "
            f"{step['opened']} opened in {step['opening']:.1f} s; so far {step['refused']} refused by Pushpin when "
            f"opening, {step['dropped']} closed after opening)",
            ["measure", "n", "p50 ms", "p99 ms", "max ms"],
            [
                first,
                fan_out,
                *(timings_row(f"  {kind} event", times) for kind, times in step["latencies"].items()),
            ],
        )
        # A client that reads after a run's next event arrived reads both from one packet: TCP merges a
        # packet arriving behind unread data into it, dated at the newer arrival. The clients run below
        # Pushpin and read late, so a run's earlier events may be dated as late as a later one arrived
        # (their figures are an upper bound); its last (complete) is dated by its own arrival.
        last = timings_row("", step["latencies"]["complete"])
        listed = sum(step["CPU"].values())
        print(
            f"The machine during the {RUNS} runs ({step['wall']:.1f} s; load average {step['load']:.1f} before): "
            f"{step['busy']:.1f} CPU s busy of {os.cpu_count() * step['wall']:.1f}, {listed:.1f} of them in the "
            f"processes below, {step['busy'] - listed:.1f} in others (workers, PostgreSQL, anyone else's)"
        )
        bars += [
            (
                f"event fan-out at {count} streams, every event of a run: p50 {fan_out['p50 ms']} ms, "
                f"p99 < {FAN_OUT_P99_MS} ms",
                fan_out["p99 ms"] < FAN_OUT_P99_MS,
                f"{fan_out['p99 ms']} ms",
            ),
            (
                f"event fan-out at {count} streams, a run's last event (complete): p50 {last['p50 ms']} ms, "
                f"p99 < {FAN_OUT_P99_MS} ms",
                last["p99 ms"] < FAN_OUT_P99_MS,
                f"{last['p99 ms']} ms",
            ),
            # Pushpin's recovery requests of the streams just opened delay these (docs/reliability.md); a
            # change that makes it tens of seconds (as the cap behind Pushpin once did) fails here.
            (
                f"first run's fan-out p99 < 10 s at {count} streams, the last just opened",
                first["p99 ms"] < 10_000,
                f"{first['p99 ms']} ms",
            ),
        ]
    whens = ["0", *(str(step["count"]) for step in steps)]
    figures = {"0": at_zero, **{str(step["count"]): step["figures"] for step in steps}}
    last = figures[whens[-1]]
    rows = [
        {"process": name, "pid": pid,
         **{f"{column} {when}": value for when in whens
            for column, value in figures[when].get((name, pid), {}).items()},
         **{f"CPU s in events {step['count']}": round(step["CPU"].get((name, pid), 0), 2) for step in steps}}
        for name, pid in last
    ]  # fmt: skip
    columns = [f"{column} {when}" for column in ("RSS MB", "threads", "fds") for when in whens]
    runs = ", ".join(f"{RUNS} runs at {step['count']} ({step['events']} events)" for step in steps)
    print_table(
        f"Processes, with {', '.join(whens)} streams open; CPU in the events of the {runs} (the streams' "
        "clients: the bench's own)",
        ["process", "pid", *columns, *(f"CPU s in events {step['count']}" for step in steps)],
        rows,
    )
    webs = [row for row in rows if row["process"] == "web"]
    refused, dropped = steps[-1]["refused"], steps[-1]["dropped"]
    print_bars(
        [
            *bars,
            # Refused when opening (a 502 before the stream opened: Pushpin's queue to the web processes
            # is full) is told apart: the page opens it again; a stream closed once open is the bar's.
            ("no stream closed unasked", dropped == 0,
             f"{dropped} closed after opening ({refused} refused by Pushpin when opening)"),
            ("no thread per stream in the web processes",
             all(row[f"threads {whens[-1]}"] <= row["threads 0"] + 2 for row in webs),
             ", ".join(f"{row['threads 0']} at 0, {row[f'threads {whens[-1]}']} at {whens[-1]}" for row in webs)),
        ]
    )  # fmt: skip


def _run_and_time(url, headers, cookies, stream, clients):
    """Press Sync Now and time each event of the run to every stream, by kind of event."""
    response = requests.post(url, headers=headers, cookies=cookies, timeout=10)
    assert response.status_code == 202, response.status_code
    burst = [stream.next()]
    while burst[-1]["status"] != "complete":
        burst.append(stream.next())
    latencies = {}
    for event in burst:
        received = clients.wait_for_all(_marker(event))
        published = datetime.fromisoformat(event["at"]).timestamp()
        latencies.setdefault(_kind(event), []).extend(at - published for at in received)
    return latencies


def _busy_cpu():
    """CPU seconds the whole machine has spent busy (every core; from /proc/stat): what the cluster
    and its clients did not spend of it, another process did."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _kind(event):
    return "progress" if event["status"] == "syncing" and event["fetched"] else event["status"]


def _marker(event):
    """Bytes that only this event's data holds, as django-eventstream serialises it."""
    run, status, fetched = event["run"], event["status"], event["fetched"]
    return f'"run": {run}, "status": "{status}", "trigger": "manual", "fetched": {fetched},'.encode()


def _figures(cluster, clients=None):
    """RSS, threads, fds and CPU time of each web process, each of Pushpin's and each stream client
    process, by (name, pid)."""
    found = {("web", pid): process_figures(pid) for pid in cluster.web_pids()}
    for process in clients.processes if clients else ():
        found[("clients", process.pid)] = process_figures(process.pid)
    for program in PUSHPIN_PROGRAMS:
        for pid in cluster.pids(program):
            found[(program, pid)] = process_figures(pid)
    return found


if __name__ == "__main__":
    main()
