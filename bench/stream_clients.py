"""Thousands of open event streams, held by client processes of their own, each stream's chunks
dated by the kernel as they arrive (SO_TIMESTAMP).

Dated by the kernel, not by the client when it gets round to reading: on two cores busy fanning an
event out, a client process is scheduled late, and would see every stream receive it at the end.
So the clients can also run at the lowest priority: their reading takes no CPU from the server
under test (as browsers on other machines take none), and delays no arrival time but this one: TCP
merges a packet that arrives behind unread data into it, dated at the newer arrival, so an event read
only after the next one arrived is dated at the next one's arrival.
Asked for a marker, a client process answers the time each of its streams first received it, even
if it arrived before the question.

    clients = StreamClients(url, cookies=cookies, count=5000, processes=4)
    clients.open()
    times = clients.wait_for_all(b'"run": 7, "status": "complete"')
    clients.close()

Each stream is a page's. By default a page whose stream closes stays closed (counted as refused or
dropped). With `reconnect=True` it opens a new one as the page's script does (the policy below),
from the id of the last event it received: a page is then a sequence of connections, and what they
all received is searched for a marker as one.

A single stream, read by a thread of the test's or bench's own process, is an `EventStream`: both
read events with `events()`, the one Server-Sent-Events parser of the tests and benchmarks.
"""

import errno
import json
import os
import queue
import random
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import quote, urlsplit

import requests

from bench.support import ROOT

# Linux's SO_TIMESTAMP (and SCM_TIMESTAMP), which Python's socket module does not name.
SO_TIMESTAMP = 29
TIMEVAL = struct.Struct("@ll")
# Streams each client process has connecting at once while opening them: each costs the web
# processes a request. Reconnections are spread by the page's policy alone, as browsers' are.
CONNECTING_AT_ONCE = 50

# The reconnection policy of the page's script, static/js/member_sync.js, mirrored here: after a
# stream closed or failed (a non-200 answer too), the next opens after a delay drawn uniformly from
# [0, W), W = max(SPREAD, min(MAX, BASE × 2^failures)), `failures` being the attempts in a row that
# did not open (0 after a stream that opened), reset when one receives `stream-open`, SPREAD what the
# last stream to open said in its `stream-reopen` event (BASE until one did); a connection without it
# after OPEN_TIMEOUT is given up, and counts as one; after a `stream-busy` event, the next opens after
# the delay it names. A `stream-error` event (too many streams,
# access denied) turns the page's live updates off: it does not reconnect.
RECONNECT_MAX_MS = 4000
RECONNECT_BASE_MS = 1000
OPEN_TIMEOUT_MS = 10000

# What JavaScript's encodeURIComponent, with which the page puts the id in its URL, leaves unescaped.
URI_COMPONENT_SAFE = "-_.!~*'()"


def events(lines):
    """The events in Server-Sent-Events lines, each a dict of its fields (the last of each name),
    yielded at the blank line that ends it; comments, and events without a type, skipped."""
    event = {}
    for line in lines:
        if not line:
            if event.get("event"):
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


class EventStream:
    """One stream, read by a thread; its events arrive on a queue."""

    def __init__(self, url, *, cookies=None, last_event_id=None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(url, headers=headers, cookies=cookies, stream=True, timeout=(5, 60))
        self.events = queue.Queue()
        self.last_event_id = last_event_id
        self.seen = []  # the types of the events next() went through, skipped ones included
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for event in events(self.response.iter_lines(decode_unicode=True)):
                event["received_at"] = time.time()
                self.events.put(event)
        except (requests.RequestException, AttributeError, ValueError):
            pass  # the stream was closed
        self.events.put(None)

    def next(self, event_type="member-sync", *, timeout=30, where=lambda data: True):
        """The next event of this type whose data satisfies `where`; skips others."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event_type} event within {timeout} s")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None:
                raise AssertionError("the stream closed")
            self.seen.append(event["event"])
            if event.get("id") and event["event"] not in ("stream-error",):
                self.last_event_id = event["id"]
            if event["event"] == event_type:
                data = json.loads(event["data"]) if event.get("data") else None
                if where(data):
                    self.last_received_at = event["received_at"]
                    return data

    def close(self):
        # Shut the socket down first: closing the response alone waits for the reading thread's
        # recv, which returns only with the next keep-alive, 20 s later.
        connection = self.response.raw.connection
        if connection is not None and connection.sock is not None:
            connection.sock.shutdown(socket.SHUT_RDWR)
        self.response.close()


class StreamClients:
    def __init__(self, url, *, cookies, count, processes=1, reconnect=False):
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        # Connections that ended before their stream opened (Pushpin answers a 502 when its queue of
        # requests to the web processes is full; a connection can also fail, or be given up), and
        # connections the server closed after their stream opened.
        self.refused = self.dropped = 0
        # Pages a `stream-error` event stopped, by its condition.
        self.stream_errors = {}
        self.count = count
        shares = _shares(count, processes)
        command = [sys.executable, "-m", "bench.stream_clients", url]
        self.processes = [
            subprocess.Popen(
                [*command, str(share), *(["--reconnect"] if reconnect else [])],
                cwd=ROOT,
                env={**os.environ, "BENCH_STREAM_COOKIE": cookie},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for share in shares
            if share
        ]

    def _ask(self, command):
        """The same command to each process, or a list of commands, one for each."""
        commands = command if isinstance(command, list) else [command] * len(self.processes)
        for process, each in zip(self.processes, commands, strict=True):
            process.stdin.write(json.dumps(each) + "\n")
            process.stdin.flush()
        answers = [json.loads(process.stdout.readline() or "null") for process in self.processes]
        failures = [answer for answer in answers if answer is None or "error" in answer]
        if failures:
            raise AssertionError(f"stream clients failed: {failures}")
        # Streams the server closed: without `reconnect` a browser would connect again, and is not
        # waited for here.
        self.refused = max(self.refused, sum(answer["refused"] for answer in answers))
        self.dropped = max(self.dropped, sum(answer["dropped"] for answer in answers))
        self.stream_errors = dict(sum((Counter(answer["stream_errors"]) for answer in answers), Counter()))
        return answers

    def open(self, upto=None):
        """Connect them all, or `upto` of them in all (more of them later); returns once every stream
        opened so far has received its `stream-open` event."""
        shares = _shares(self.count if upto is None else min(upto, self.count), len(self.processes))
        self._ask([{"open": True, "count": share} for share in shares])

    def wait_for_all(self, marker, timeout=60):
        """The wall-clock time at which each open stream first received `marker`."""
        return [at for answer in self._ask({"wait": marker.decode(), "timeout": timeout}) for at in answer["times"]]

    def received(self, marker, timeout):
        """For each page, when it first received `marker`, or None if it had not after `timeout`
        (waited for only until every page has)."""
        return self._each_page({"received": marker.decode(), "timeout": timeout})

    def reopened(self, after, timeout):
        """For each page, when it last received `stream-open` on a connection made after the
        wall-clock time `after`, or None if none had after `timeout` (waited for only until every
        page has one)."""
        return self._each_page({"reopened": after, "timeout": timeout})

    def _each_page(self, command):
        return [at for answer in self._ask(command) for at in answer["times"]]

    def close(self):
        for process in self.processes:
            process.stdin.close()
        for process in self.processes:
            process.wait(timeout=30)


def _shares(count, processes):
    """`count` spread over `processes`: each share of a smaller count is no larger."""
    return [count // processes + (1 if n < count % processes else 0) for n in range(processes)]


class _Page:
    """A page's stream: one connection at a time. What every connection received is kept end to
    end (HTTP heads included), each chunk dated, so that a marker is found and dated across them."""

    def __init__(self):
        self.received = bytearray()
        self.chunks = []  # (end offset, arrival time) of every chunk, to date any offset of `received`
        self.sock = None
        self.connecting = False  # the connection is not made yet (non-blocking connect)
        self.began = 0.0  # when the connection was begun, monotonic, for the open timeout
        self.began_at = 0.0  # the same, wall-clock, to tell connections made after a moment
        self.start = 0  # where the connection's data starts in `received`
        self.answered = False  # its status line has come, and was a 200
        self.open = False  # it received `stream-open`
        self.opens = []  # (began_at, arrival of `stream-open`) of each connection that opened
        self.last_event_id = None
        self.parsed = 0  # how far `received` has been read for events
        # Reconnections since a stream last opened: when one's delay is drawn, the attempts in a row
        # that did not open.
        self.failures = 0
        self.next_attempt = 0.0  # monotonic time of the next connection, once this one ended
        self.stream_error = None  # the condition of the `stream-error` event that stopped the page
        self.come_back_in = None  # seconds a `stream-busy` event said to wait before the next attempt
        self.spread = RECONNECT_BASE_MS / 1000  # seconds the last `stream-reopen` said to spread over
        self.closed = False  # closed for good: the server closed it (without reconnecting), or a stream-error
        self.refused = self.dropped = 0

    def read(self):
        """What arrived; False once the connection has closed."""
        data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(TIMEVAL.size))
        if not data:
            return False
        arrived = time.time()
        for level, kind, value in ancillary:
            if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMP):
                seconds, microseconds = TIMEVAL.unpack(value[: TIMEVAL.size])
                arrived = seconds + microseconds / 1e6
        self.received += data
        self.chunks.append((len(self.received), arrived))
        if not self.answered:
            line_end = self.received.find(b"\r\n", self.start)
            if line_end < 0:
                return True
            # Anything but a 200 fails the connection at once, as it fails an EventSource.
            if self.received[self.start : line_end].split(b" ")[1:2] != [b"200"]:
                return False
            self.answered = True
        return self._read_events(arrived)

    def _read_events(self, arrived):
        """Acts on the events received whole since the last look, as the page's script does; False
        once one ends the connection. The HTTP head and chunk framing read as unknown fields, ignored."""
        end = self.received.rfind(b"\n\n", self.parsed)
        if end < 0:
            return True
        lines = self.received[self.parsed : end + 2].decode(errors="replace").splitlines()
        self.parsed = end + 2
        for event in events(lines):
            kind = event["event"]
            if kind == "stream-open" and not self.open:
                self.open = True
                self.failures = 0
                self.opens.append((self.began_at, arrived))
            elif kind == "stream-reopen":  # the window to spread a reconnection over, at least
                self.spread = json.loads(event["data"])["spread"] / 1000
            elif kind == "member-sync" and event.get("id"):
                # The script takes its ids from these alone: not from a `stream-error`'s ("error"),
                # which a page resuming from would be refused (400) on every attempt.
                self.last_event_id = event["id"]
            elif kind == "stream-error":
                self.stream_error = json.loads(event["data"])["condition"]
                return False
            elif kind == "stream-busy":  # the server's word to come back later (ops/shedding.py)
                self.come_back_in = json.loads(event["data"])["retry"] / 1000
                return False
        return True

    def received_at(self, marker: bytes, start=0):
        found = self.received.find(marker, start)
        if found < 0:
            return None
        end = found + len(marker)
        return next(at for offset, at in self.chunks if offset >= end)


class _Client:
    """One process's pages, read by one thread with epoll; the main thread answers commands."""

    def __init__(self, url, count, reconnect):
        parsed = urlsplit(url)
        self.address = (parsed.hostname, parsed.port)
        self.host, self.path, self.query = parsed.netloc, parsed.path, parsed.query
        self.cookie = os.environ["BENCH_STREAM_COOKIE"]
        self.count = count  # the pages to open so far
        self.reconnect = reconnect
        self.pages = []
        self.opening = False
        self.selector = selectors.DefaultSelector()
        threading.Thread(target=self._read_forever, daemon=True).start()

    def _request(self, page):
        query = self.query
        if page.last_event_id:
            query = f"lastEventId={quote(page.last_event_id, safe=URI_COMPONENT_SAFE)}"
        # Connection: close, so that the server closes a connection whose response has ended (a
        # refused stream, a stream at its end) and the page sees it end.
        return (
            f"GET {self.path}?{query} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {self.cookie}\r\nConnection: close\r\n\r\n"
        ).encode()

    def _connect(self, page):
        """Begin a connection without waiting for it: a server whose backlog is full (Pushpin
        starting again) leaves a connect waiting for seconds, and every other page with it."""
        page.sock = socket.socket()
        page.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        page.sock.setblocking(False)
        page.began, page.began_at = time.monotonic(), time.time()
        page.start = page.parsed = len(page.received)
        page.answered = False
        page.connecting = True
        if page.sock.connect_ex(self.address) not in (0, errno.EINPROGRESS):
            self._ended(page)
            return
        self.selector.register(page.sock, selectors.EVENT_WRITE, page)

    def _connected(self, page):
        if page.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._ended(page)
            return
        page.connecting = False
        try:
            page.sock.sendall(self._request(page))
        except OSError:
            self._ended(page)
            return
        self.selector.modify(page.sock, selectors.EVENT_READ, page)

    def _ended(self, page):
        """The connection closed or failed: the page reconnects per its policy, or stays closed."""
        try:
            self.selector.unregister(page.sock)
        except KeyError:
            pass  # failed before it was registered
        page.sock.close()
        page.sock = None
        if page.open:
            page.dropped += 1
        else:
            page.refused += 1
        page.open = False
        if not self.reconnect or page.stream_error:
            page.closed = True
            return
        if page.come_back_in is not None:
            page.next_attempt, page.come_back_in = time.monotonic() + page.come_back_in, None
            return
        # Counted as the page's script counts: the drop of a stream that opened adds one too, after
        # its reconnection's window (BASE) is drawn.
        window = max(page.spread, min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2**page.failures) / 1000)
        page.failures += 1
        page.next_attempt = time.monotonic() + random.uniform(0, window)  # noqa: S311 (a delay, no secret)

    def _read_forever(self):
        while True:
            now = time.monotonic()
            if self.opening and len(self.pages) < self.count:
                # A stream the server closed before it opened (Pushpin answers a 502 when it cannot
                # pass a request on) is done connecting: counted as connecting, 50 of them stopped
                # this process opening the rest, and open() waited forever.
                connecting = sum(1 for page in self.pages if page.sock is not None and not page.open)
                while len(self.pages) < self.count and connecting < CONNECTING_AT_ONCE:
                    self.pages.append(_Page())
                    self._connect(self.pages[-1])
                    connecting += 1
            if self.reconnect:
                for page in self.pages:
                    if page.sock is None and page.next_attempt <= now and not page.closed:
                        self._connect(page)
                    elif page.sock is not None and not page.open and now - page.began > OPEN_TIMEOUT_MS / 1000:
                        self._ended(page)
            for key, _ in self.selector.select(timeout=0.05):
                page = key.data
                if page.connecting:
                    self._connected(page)
                    continue
                try:
                    alive = page.read()
                except OSError:  # reset by the server (Pushpin killed)
                    alive = False
                if not alive:
                    self._ended(page)

    def _wait(self, found, timeout, count=None):
        """`found(page)` for every page once it is not None for each (not waiting for a page closed
        for good), or once `count` pages exist; a dict by page, and whether the wait timed out."""
        deadline = time.monotonic() + timeout
        times = {}
        while True:
            pages = list(self.pages)
            for page in pages:
                if times.get(page) is None:
                    times[page] = found(page)
            waiting = [page for page in pages if times[page] is None and not page.closed]
            if len(pages) == (count or len(pages)) and not waiting:
                return times, False
            if time.monotonic() > deadline:
                return times, True
            time.sleep(0.1)

    def _marker_finder(self, marker):
        """A page's first arrival of `marker`. Each look reads only what arrived since the last: a
        stream's whole data, read ten times a second on every stream, cost these processes more CPU
        than Pushpin took to send it."""
        searched = {}

        def find(page):
            start = max(0, searched.get(page, 0) - len(marker))
            searched[page] = len(page.received)
            return page.received_at(marker, start)

        return find

    def closed_streams(self):
        return {
            "refused": sum(page.refused for page in self.pages),
            "dropped": sum(page.dropped for page in self.pages),
            "stream_errors": Counter(page.stream_error for page in self.pages if page.stream_error),
        }

    def serve(self):
        """Answer the parent's commands, one JSON line each, until its pipe closes."""
        for line in sys.stdin:
            command = json.loads(line)
            try:
                answer = self._answer(command)
            except (AssertionError, OSError) as error:
                answer = {"error": str(error)}
            print(json.dumps({**answer, **self.closed_streams()}), flush=True)

    def _answer(self, command):
        if command.get("open"):
            self.count = command.get("count", self.count)
            self.opening = True
            _, late = self._wait(lambda page: page.opens or None, timeout=600, count=self.count)
            if late:
                raise AssertionError("streams still opening after 600 s")
            return {}
        if "wait" in command:
            marker = command["wait"].encode()
            times, late = self._wait(self._marker_finder(marker), command["timeout"])
            if late:
                waiting = sum(1 for page, at in times.items() if at is None and not page.closed)
                raise AssertionError(f"{waiting} stream(s) without {marker.decode()} after {command['timeout']} s")
            return {"times": [at for at in times.values() if at is not None]}
        if "received" in command:
            times, _ = self._wait(self._marker_finder(command["received"].encode()), command["timeout"])
            return {"times": list(times.values())}
        after = command["reopened"]

        def reopened(page):
            return max((at for began, at in page.opens if began > after), default=None)

        self._wait(reopened, command["timeout"])
        # Read again once waited: a page that reopened early may have lost that stream and reopened since.
        return {"times": [reopened(page) for page in self.pages]}


def _lowest_priority():
    """Below every process of the cluster. With Linux's autogroups (sched_autogroup_enabled, on by
    default) a process's nice ranks it only within its session, and the CPU is shared between
    sessions first: Pushpin runs in a session of its own, and a client at nice 19 in the bench's got
    as much of a core shared with one of Pushpin's as it did (9.5 M loops to 10.7 M in 3 s). Its own
    session, niced as a whole, got 1.5 % (0.18 M to 11.5 M)."""
    os.nice(19)
    try:
        os.setsid()
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write("19")
    except OSError:
        pass  # no autogroups (the kernel's or its setting): the nice above is enough


if __name__ == "__main__":
    _lowest_priority()
    _Client(sys.argv[1], int(sys.argv[2]), reconnect="--reconnect" in sys.argv[3:]).serve()
