"""Thousands of open event streams, held by client processes of their own so that the clients'
work neither slows the server under test nor delays the time each stream is seen to receive an
event.

Each client process holds its share of the streams with asyncio protocols (no coroutine per read)
and notes the time of every chunk as it arrives; asked for a marker, it answers the time each of its
streams first received it. A marker that arrived before it was asked for is found all the same.

    clients = StreamClients(url, cookies=cookies, count=5000, processes=4)
    clients.open()
    times = clients.wait_for_all(b'"run": 7, "status": "complete"')
    clients.close()
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

from bench.support import ROOT

# Streams each client process connects at once: beyond this the connecting burst only queues up.
CONNECTING_AT_ONCE = 50


class StreamClients:
    def __init__(self, url, *, cookies, count, processes=1):
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
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
        if any(answer is None or "error" in answer for answer in answers):
            raise AssertionError(f"stream clients failed: {answers}")
        return answers

    def open(self):
        """Connect them all; returns once every stream has received its `stream-open` event."""
        self._ask({"open": True})

    def wait_for_all(self, marker, timeout=60):
        """The wall-clock time at which each stream first received `marker`."""
        return [at for answer in self._ask({"wait": marker.decode(), "timeout": timeout}) for at in answer["times"]]

    def close(self):
        for process in self.processes:
            process.stdin.close()
        for process in self.processes:
            process.wait(timeout=30)


class _Stream(asyncio.Protocol):
    def __init__(self):
        self.received = bytearray()
        self.chunks = []  # (end offset, time) of every chunk, to date any offset of `received`
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data):
        self.received += data
        self.chunks.append((len(self.received), time.time()))

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(None)

    def received_at(self, marker: bytes):
        found = self.received.find(marker)
        if found < 0:
            return None
        end = found + len(marker)
        return next(at for offset, at in self.chunks if offset >= end)


async def _connect(url, cookie, slots):
    parsed = urlsplit(url)
    async with slots:
        transport, stream = await asyncio.get_running_loop().create_connection(_Stream, parsed.hostname, parsed.port)
        transport.write(
            f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: {parsed.netloc}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookie}\r\n\r\n".encode()
        )
        await _wait_for([stream], b"event: stream-open", timeout=120)
    return transport, stream


async def _wait_for(streams, marker, timeout):
    """When each stream received `marker`. One look over them all every so often: a coroutine
    polling each stream would cost this process more than the streams themselves."""
    deadline = time.monotonic() + timeout
    times = [None] * len(streams)
    pending = list(range(len(streams)))
    while pending:
        for n in pending:
            times[n] = streams[n].received_at(marker)
        pending = [n for n in pending if times[n] is None]
        closed = [n for n in pending if streams[n].closed.done()]
        if closed:
            last = bytes(streams[closed[0]].received[-300:])
            raise AssertionError(f"{len(closed)} stream(s) closed before {marker.decode()}: {last}")
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} stream(s) without {marker.decode()} after {timeout} s")
        if pending:
            await asyncio.sleep(0.1)
    return times


async def _serve(url, count):
    """Answer the parent's commands, one JSON line each, until its pipe closes."""
    cookie = os.environ["BENCH_STREAM_COOKIE"]
    loop = asyncio.get_running_loop()
    connections = []
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command = json.loads(line)
        try:
            if command.get("open"):
                slots = asyncio.Semaphore(CONNECTING_AT_ONCE)
                connections = await asyncio.gather(*(_connect(url, cookie, slots) for _ in range(count)))
                answer = {"open": len(connections)}
            else:
                marker, timeout = command["wait"].encode(), command["timeout"]
                times = await _wait_for([stream for _, stream in connections], marker, timeout)
                answer = {"times": times}
        except (AssertionError, OSError) as error:
            answer = {"error": str(error)}
        print(json.dumps(answer), flush=True)
    for transport, _ in connections:
        transport.close()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2])))
