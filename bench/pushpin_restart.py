"""Benchmark of a Pushpin restart under `make cluster` (two web processes) holding 5,000 open pages:
how long until every page has its stream open again, whether any page misses an event of a run
published meanwhile, and what the site answers other requests during that storm.

The pages are one team's, read by one user, as in bench/cluster_streams.py, the per-user cap on
streams raised to twice the pages and 1,000 more: behind Pushpin a claim counts until its stream's
end, 15 minutes, so the streams Pushpin lost still count, as does every reopening that reached
Django. Each page is held by a client process (bench/stream_clients.py) that reconnects as the
page's script does: after a random delay growing with the failures in a row, a connection given up
if it has not opened in 10 s, from the last event id it received; a page refused with a
`stream-error` (too many streams) stops, and is counted.

Pushpin is killed (its runner and every service it started, SIGKILL), and `make cluster` starts it
again, as it would after a crash. From the kill:
- a probe asks for the login page through Pushpin every 100 ms, each given 5 s to answer: its first
  200's arrival is the moment Pushpin passes requests on again, from which the pages' reopening is
  timed; the answers to those sent from then on are what any other visitor got during the storm;
- Sync Now is pressed, again until accepted (it fails while Pushpin is down), so that a run's events
  are published while the pages are coming back: every page must receive its end, live or replayed
  from its last event id once it reconnects.
With PUSHPIN_LOG_LEVEL=2, Pushpin logs each request: the requests it passed to the web processes
during the storm, and its answers, are counted from its output (written whole, with the web
processes' and workers', to the file BENCH_RESTART_LOG names, if set).
"""

import json
import os
import re
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import requests

from bench.cluster_streams import PUSHPIN_PROGRAMS
from bench.stream_clients import StreamClients
from bench.support import (
    bench_cluster,
    bench_team,
    control,
    print_bars,
    print_table,
    process_figures,
    rendered_events_url,
    sync_now_request,
    timings_row,
)

STREAMS = int(os.environ.get("BENCH_RESTART_STREAMS", 5000))
CLIENT_PROCESSES = 4
ORG = "bench-restart"
# Bar: every page open again within this of Pushpin passing requests on.
BACK_WITHIN = 15
# Every page must have the run's end within this of both the end's publishing and the page's
# reopening, live or replayed: later, it came from Pushpin following the stream's next link (up to
# two minutes after the stream opened), which a page waiting for it sees as missed. A page not back
# has missed it too.
EVENT_WITHIN = 30
# How long the bench waits for Pushpin to pass requests on after the kill, and for the pages to be
# open again after that: beyond, counted as not.
PUSHPIN_TIMEOUT = 60
PAGES_TIMEOUT = 120
PROBE_EVERY = 0.1
PROBE_TIMEOUT = 5
SYNC_NOW_EVERY = 0.5


def main():
    # Behind Pushpin a stream's claim counts until its stream's end (15 min), and every page here is
    # one user's: each opening of the storm claims one.
    settings = {"WEB_PROCESSES": 2, "EVENTS_MAX_STREAMS_PER_USER": 20 * STREAMS, "PUSHPIN_LOG_LEVEL": 2}
    with bench_cluster({ORG: 5}, **settings) as (cluster, simulator_url):
        cookies = bench_team("restart", ORG, control(simulator_url, "tokens", {"scopes": ["read:org"]})["token"])
        url, cookies, headers = sync_now_request(cluster.url, "restart", cookies)
        run_events = RunEvents("restart")
        pages = StreamClients(
            rendered_events_url(cluster.url, "restart", cookies), cookies=cookies, count=STREAMS,
            processes=CLIENT_PROCESSES, reconnect=True,
        )  # fmt: skip
        pages.open()
        # A run before the kill, received by every page: each is live before the storm.
        response = requests.post(url, headers=headers, cookies=cookies, timeout=10)
        assert response.status_code == 202, response.status_code
        *_, complete = run_events.of_next_run(timeout=60)
        pages.wait_for_all(_marker(run_events.channel, complete))
        before_storm = pages.refused, pages.dropped

        storm_output, cpu_before = len(cluster.output), _cpu_by_process(cluster, pages)
        killed_at = time.time()
        cluster.kill_pushpin()
        probe = Probe(f"{cluster.url}/accounts/login/")
        sync_now = SyncNow(url, headers, cookies)
        back_at = probe.back_at() if probe.back.wait(PUSHPIN_TIMEOUT) else None
        reopened = pages.reopened(killed_at, timeout=PAGES_TIMEOUT + (back_at or time.time()) - time.time())
        storm_log, cpu_after, storm_ended = cluster.output[storm_output:], _cpu_by_process(cluster, pages), time.time()
        if os.environ.get("BENCH_RESTART_LOG"):
            Path(os.environ["BENCH_RESTART_LOG"]).write_text("".join(storm_log))
        probe.stop()
        # Read again: Pushpin may have answered a first 200 only after the wait for it ended.
        back_at = probe.back_at()
        run = run_events.of_next_run(timeout=PUSHPIN_TIMEOUT + PAGES_TIMEOUT)
        published = datetime.fromisoformat(run[-1]["at"]).timestamp()
        # The run's end first, waited for; the events before it have arrived, if ever, by then.
        last_chance = max([published, *(at for at in reopened if at is not None)]) + EVENT_WITHIN
        received = [pages.received(_marker(run_events.channel, run[-1]), timeout=max(0, last_chance - time.time()))]
        received += [pages.received(_marker(run_events.channel, event), timeout=0) for event in run[:-1]]
        pages.close()

    storm = storm_ended - killed_at
    if back_at:
        passed_on, since = f"passed requests on again {back_at - killed_at:.1f} s after the kill", back_at
    else:  # the pages are timed from the kill then
        passed_on, since = f"answered none of the probe's requests 200 in the {storm:.0f} s watched", killed_at
    accepted = (
        f"Sync Now was accepted {sync_now.accepted_at - killed_at:.1f} s after the kill"
        if sync_now.accepted_at
        else "Sync Now was never accepted"
    )
    back = [at - since for at in reopened if at is not None]
    not_back = sum(1 for at in reopened if at is None)
    ends = [at - published for at in received[0] if at is not None]
    answered = [took for sent, answer, took in probe.sent if answer == "2xx" and sent >= back_at] if back_at else []

    def missed(times, reopened_at):
        """Whether a page lacks one of these events (`times`, when it received each) in time."""
        return any(at is None or at > max(published, reopened_at or 0) + EVENT_WITHIN for at in times)

    missed_end, missed_any, missed_back = 0, 0, 0
    for *times, reopened_at in zip(*received, reopened, strict=True):
        missed_end += missed(times[:1], reopened_at)
        missed_any += missed(times, reopened_at)
        missed_back += missed(times[:1], reopened_at) and reopened_at is not None
    print_table(
        f"Pushpin killed under make cluster (2 web processes) with {STREAMS} pages open: it {passed_on}; "
        f"{accepted} ({sync_now.tries} tries)",
        ["measure", "n", "p50 ms", "p99 ms", "max ms"],
        [
            timings_row(measure, times) if times else {"measure": measure, "n": 0}
            for measure, times in (
                ("page open again, from " + ("Pushpin passing requests on" if back_at else "the kill"), back),
                ("the run's end reached the page, from its publishing", ends),
                ("GET /accounts/login/ answered 2xx, once Pushpin passed requests on", answered),
            )
        ],
    )
    refused, dropped = before_storm
    print_table(
        f"The pages during the storm ({refused} connections refused and {dropped} dropped before it, while "
        f"opening them and through a first run)",
        ["measure", "count"],
        [
            {"measure": f"pages not open again {PAGES_TIMEOUT} s after Pushpin passed requests on "
                        f"(or {PUSHPIN_TIMEOUT + PAGES_TIMEOUT} s after the kill, if it did not)", "count": not_back},
            {"measure": "connections refused, failed or given up", "count": pages.refused - refused},
            {"measure": "connections dropped after they opened", "count": pages.dropped - dropped},
            *({"measure": f"pages whose live updates a stream-error turned off: {condition}", "count": count}
              for condition, count in pages.stream_errors.items()),
            {"measure": f"pages without the run's end within {EVENT_WITHIN} s (of it, or of their reopening)",
             "count": missed_end},
            {"measure": "  of them, pages back", "count": missed_back},
            {"measure": f"pages without one of the run's {len(run)} events within {EVENT_WITHIN} s",
             "count": missed_any},
        ],
    )  # fmt: skip
    before, after = probe.answers(back_at)
    print_table(
        f"Answers to GET /accounts/login/ through Pushpin, one every {PROBE_EVERY * 1000:.0f} ms from the kill "
        f"until the pages were back ({PROBE_TIMEOUT} s to answer)",
        ["sent", *ANSWERS],
        [{"sent": "before the first 200 arrived", **before}, {"sent": "from then on", **after}]
        if back_at
        else [{"sent": "all (none answered 200)", **before}],
    )
    print_table(
        "What Pushpin logged from the kill until the pages were back (PUSHPIN_LOG_LEVEL=2)",
        ["measure", "count"],
        [{"measure": measure, "count": count} for measure, count in pushpin_counts(storm_log).items()],
    )
    cpu = Counter()
    for (role, pid), seconds in cpu_after.items():
        cpu[role] += seconds - cpu_before.get((role, pid), 0)  # Pushpin's are new: all theirs is the storm's
    print_table(
        f"CPU time used from the kill until the pages were back ({storm:.0f} s, on {os.cpu_count()} cores)",
        ["processes", "CPU s", "% of a core"],
        [
            {"processes": role, "CPU s": round(seconds, 1), "% of a core": round(100 * seconds / storm)}
            for role, seconds in cpu.items()
        ],
    )
    all_back = max(back) if back_at and back and not not_back else None
    print_bars(
        [
            (
                f"all {STREAMS} pages open again within {BACK_WITHIN} s of Pushpin passing requests on",
                all_back is not None and all_back < BACK_WITHIN,
                f"{all_back:.1f} s" if all_back is not None
                else f"{not_back} not back after {PAGES_TIMEOUT} s" if not_back
                else "Pushpin answered the probe no 200",
            ),
            (f"no page misses the run's end (within {EVENT_WITHIN} s)", missed_end == 0,
             f"{missed_end} page(s), {missed_back} of them back"),
            ("no 5xx to other requests once Pushpin passes them on", back_at is not None and not after["5xx"],
             f"{after['5xx']} of {sum(after.values())}" if back_at else
             f"none answered 200: {before['5xx']} 5xx, {before['no answer']} unanswered of {sum(before.values())}"),
        ]
    )  # fmt: skip


def _cpu_by_process(cluster, pages):
    """The CPU time each process has used, by (role, pid)."""
    pids = {
        "web processes": cluster.web_pids(),
        "Pushpin": [pid for program in PUSHPIN_PROGRAMS for pid in cluster.pids(program)],
        "workers": cluster.pids("dramatiq"),
        "page clients (nice 19)": [process.pid for process in pages.processes],
        "the bench (probe, Sync Now)": [os.getpid()],
    }
    return {(role, pid): process_figures(pid)["CPU s"] for role, found in pids.items() for pid in found}


def _marker(channel, event):
    """The id line of this event, as the pages receive it."""
    return f"\nid: {channel}:{event['id']}\n".encode()


class RunEvents:
    """The events of the team's runs, read from the events' storage (Redis) rather than from a
    stream of this process's, which Pushpin's restart would break too."""

    def __init__(self, team_slug):
        from django_eventstream.utils import get_storage

        from integrations.live.channels import team_channel
        from teams.models import Team

        self.channel = team_channel(Team.objects.get(slug=team_slug).pk)
        self.storage = get_storage()
        self.seen = self.storage.get_current_id(self.channel)

    def of_next_run(self, timeout):
        """Every event of the next run published after those seen, once it has ended (its data, with
        the event's id)."""
        deadline = time.monotonic() + timeout
        events = []
        while not events or events[-1]["status"] not in ("complete", "error"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no run ended within {timeout} s: {events}")
            time.sleep(0.2)
            for event in self.storage.get_events(self.channel, self.seen):
                self.seen = event.id
                data = json.loads(event.data)  # stored as django-eventstream sends it: JSON
                if not events or data["run"] == events[0]["run"]:
                    events.append({**data, "id": event.id})
        return events


ANSWERS = ("2xx", "5xx", "other status", "no answer", "refused or reset")


class Probe:
    """GET `url` every PROBE_EVERY s, each in a thread of its own (a visitor does not wait for
    another's answer), from now until stopped: when each was sent, what it got and how long it took."""

    def __init__(self, url):
        self.url = url
        self.sent = []  # (wall-clock time sent, one of ANSWERS, seconds to the answer)
        self.back = threading.Event()  # set at the first 2xx (the login page's 200)
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)]
        self.threads[0].start()

    def _run(self):
        while not self.stopped.is_set():
            sent = time.time()
            self.threads.append(threading.Thread(target=self._one, args=(sent,), daemon=True))
            self.threads[-1].start()
            self.stopped.wait(max(0, sent + PROBE_EVERY - time.time()))

    def _one(self, sent):
        try:
            status = requests.get(self.url, timeout=PROBE_TIMEOUT, allow_redirects=False).status_code
            answer = {2: "2xx", 5: "5xx"}.get(status // 100, "other status")
        except requests.Timeout:
            answer = "no answer"
        except requests.ConnectionError:
            answer = "refused or reset"
        self.sent.append((sent, answer, time.time() - sent))
        if answer == "2xx":
            self.back.set()

    def back_at(self):
        """When the first 2xx arrived. Not when it was sent: a Pushpin starting accepts connections
        before it passes their requests on, and one sent then waits for it (0.1 s after the kill)."""
        return min((sent + took for sent, answer, took in self.sent if answer == "2xx"), default=None)

    def stop(self):
        self.stopped.set()
        for thread in self.threads:
            thread.join()

    def answers(self, back_at):
        """Counts of each answer, of those sent before `back_at` and of those sent from it."""
        counts = Counter(), Counter()
        for sent, answer, _ in self.sent:
            counts[back_at is not None and sent >= back_at][answer] += 1
        return [{answer: count[answer] for answer in ANSWERS} for count in counts]


class SyncNow:
    """Sync Now pressed every SYNC_NOW_EVERY s, in a thread of its own, until accepted."""

    def __init__(self, url, headers, cookies):
        self.tries, self.accepted_at = 0, None
        threading.Thread(target=self._run, args=(url, headers, cookies), daemon=True).start()

    def _run(self, url, headers, cookies):
        while True:
            self.tries += 1
            tried = time.time()
            try:
                # As long as a browser waits: a press given up on still starts a run once answered.
                if requests.post(url, headers=headers, cookies=cookies, timeout=60).status_code == 202:
                    self.accepted_at = time.time()
                    return
            except requests.RequestException:
                pass  # Pushpin down, or not passing requests on yet
            time.sleep(max(0, tried + SYNC_NOW_EVERY - time.time()))


def pushpin_counts(lines):
    """From Pushpin's log at level 2: the requests it passed to the web processes (zurl makes them),
    and its answers to clients (a held stream, a status, or "error": none passed back), by kind."""
    counts = Counter()
    for line in lines:
        if request := re.search(r"\[zurl\] IN id=\S+, \S+ (\S+)", line):
            counts[f"requests to the web processes: {_kind(request.group(1))}"] += 1
        elif answer := re.search(r"\[proxy\] \S+ (\S+) -> \S+ (\S+)", line):
            counts[f"Pushpin's answers to {_kind(answer.group(1))}: {answer.group(2)}"] += 1
    return dict(sorted(counts.items()))


def _kind(url):
    if "/events/" not in url:
        return "other requests"
    return "streams' next links (recovery)" if "es-meta=" in url else "stream openings"


if __name__ == "__main__":
    main()
