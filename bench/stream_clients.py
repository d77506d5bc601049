"""Thousands of open event streams, held by client processes of their own, each stream's chunks
dated by the kernel as they arrive (SO_TIMESTAMP).

Dated by the kernel, not by the client when it gets round to reading: on two cores busy fanning an
event out, a client process is scheduled late, and would see every stream receive it at the end.
So the clients can also run at the lowest priority: their reading takes no CPU from the server
under test (as browsers on other machines take none), and delays no arrival time.
Asked for a marker, a client process answers the time each of its streams first received it, even
if it arrived before the question.

    clients = StreamClients(url, cookies=cookies, count=5000, processes=4)
    clients.open()
    times = clients.wait_for_all(b'"run": 7, "status": "complete"')
    clients.close()
"""

import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from bench.support import ROOT

# Linux's SO_TIMESTAMP (and SCM_TIMESTAMP), which Python's socket module does not name.
SO_TIMESTAMP = 29
TIMEVAL = struct.Struct("@ll")
# Streams each client process has connecting at once: each costs the web processes a request.
CONNECTING_AT_ONCE = 50


class StreamClients:
    def __init__(self, url, *, cookies, count, processes=1):
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        # Streams the server closed before they opened (Pushpin answers a 502 when its queue of
        # requests to the web processes is full), and streams it closed after they opened.
        self.refused = self.dropped = 0
        shares = [count // processes + (1 if n < count % processes else 0) for n in range(processes)]
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.stream_clients", url, str(share)],
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
        for process in self.processes:
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        answers = [json.loads(process.stdout.readline() or "null") for process in self.processes]
        failures = [answer for answer in answers if answer is None or "error" in answer]
        if failures:
            raise AssertionError(f"stream clients failed: {failures}")
        # Streams the server closed: a browser would connect again, and is not waited for here.
        self.refused = max(self.refused, sum(answer["refused"] for answer in answers))
        self.dropped = max(self.dropped, sum(answer["dropped"] for answer in answers))
        return answers

    def open(self):
        """Connect them all; returns once every stream has received its `stream-open` event."""
        self._ask({"open": True})

    def wait_for_all(self, marker, timeout=60):
        """The wall-clock time at which each open stream first received `marker`."""
        return [at for answer in self._ask({"wait": marker.decode(), "timeout": timeout}) for at in answer["times"]]

    def close(self):
        for process in self.processes:
            process.stdin.close()
        for process in self.processes:
            process.wait(timeout=30)


class _Stream:
    def __init__(self, sock):
        self.sock = sock
        self.received = bytearray()
        self.chunks = []  # (end offset, arrival time) of every chunk, to date any offset of `received`
        self.closed = False

    def read(self):
        data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(TIMEVAL.size))
        if not data:
            self.closed = True
            return
        arrived = time.time()
        for level, kind, value in ancillary:
            if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMP):
                seconds, microseconds = TIMEVAL.unpack(value[: TIMEVAL.size])
                arrived = seconds + microseconds / 1e6
        self.received += data
        self.chunks.append((len(self.received), arrived))

    def received_at(self, marker: bytes, start=0):
        found = self.received.find(marker, start)
        if found < 0:
            return None
        end = found + len(marker)
        return next(at for offset, at in self.chunks if offset >= end)


class _Client:
    """One process's streams, read by one thread with epoll; the main thread answers commands."""

    def __init__(self, url, count):
        parsed = urlsplit(url)
        self.address = (parsed.hostname, parsed.port)
        cookie = os.environ["BENCH_STREAM_COOKIE"]
        self.request = (
            f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: {parsed.netloc}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookie}\r\n\r\n"
        ).encode()
        self.count = count
        self.streams = []
        self.opening = False
        self.selector = selectors.DefaultSelector()
        threading.Thread(target=self._read_forever, daemon=True).start()

    def _connect(self):
        sock = socket.create_connection(self.address)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        sock.sendall(self.request)
        sock.setblocking(False)
        stream = _Stream(sock)
        self.streams.append(stream)
        self.selector.register(sock, selectors.EVENT_READ, stream)

    def _read_forever(self):
        while True:
            if self.opening and len(self.streams) < self.count:
                # A stream the server closed before it opened (Pushpin answers a 502 when it cannot
                # pass a request on) is done connecting: counted as connecting, 50 of them stopped
                # this process opening the rest, and open() waited forever.
                settled = sum(1 for stream in self.streams if stream.closed or b"event: stream-open" in stream.received)
                while len(self.streams) < self.count and len(self.streams) - settled < CONNECTING_AT_ONCE:
                    self._connect()
            for key, _ in self.selector.select(timeout=0.05):
                key.data.read()
                if key.data.closed:
                    self.selector.unregister(key.fileobj)

    def wait_for(self, marker, timeout, count=None):
        """When each stream received `marker`, once all have (or `count` streams have been opened),
        and how many streams the server closed without it. Each look reads only what arrived since
        the last: a stream's whole data, read ten times a second on every stream, cost these
        processes more CPU than Pushpin took to send it."""
        deadline = time.monotonic() + timeout
        times, searched = {}, {}
        while True:
            streams = list(self.streams)
            for stream in streams:
                if times.get(stream) is None:
                    start = max(0, searched.get(stream, 0) - len(marker))
                    searched[stream] = len(stream.received)
                    times[stream] = stream.received_at(marker, start)
            waiting = [stream for stream in streams if times[stream] is None and not stream.closed]
            if len(streams) == (count or len(streams)) and not waiting:
                found = [times[stream] for stream in streams if times[stream] is not None]
                return found, len(streams) - len(found)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(waiting)} stream(s) without {marker.decode()} after {timeout} s")
            time.sleep(0.1)

    def closed_streams(self):
        closed = [stream for stream in self.streams if stream.closed]
        refused = sum(1 for stream in closed if b"event: stream-open" not in stream.received)
        return {"refused": refused, "dropped": len(closed) - refused}

    def serve(self):
        """Answer the parent's commands, one JSON line each, until its pipe closes."""
        for line in sys.stdin:
            command = json.loads(line)
            try:
                if command.get("open"):
                    self.opening = True
                    self.wait_for(b"event: stream-open", timeout=600, count=self.count)
                    answer = self.closed_streams()
                else:
                    times, _ = self.wait_for(command["wait"].encode(), command["timeout"])
                    answer = {"times": times, **self.closed_streams()}
            except (AssertionError, OSError) as error:
                answer = {"error": str(error)}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    os.nice(19)
    _Client(sys.argv[1], int(sys.argv[2])).serve()
