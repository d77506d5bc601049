"""The benchmarks' stream clients (bench/stream_clients.py) against a server that refuses streams."""

import socket
import threading
import time

import pytest

from bench.stream_clients import CONNECTING_AT_ONCE, StreamClients

# The clients run as the benchmarks run them: `python -m bench.stream_clients`.
pytestmark = pytest.mark.services


def refusing_server():
    """A server that answers every request as Pushpin answers one it cannot pass on: a 502, closed."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/t/team/events/"


def test_opening_ends_when_the_server_closes_more_streams_than_connect_at_once():
    count = CONNECTING_AT_ONCE + 10
    clients = StreamClients(refusing_server(), cookies={}, count=count)
    opening = threading.Thread(target=clients.open, daemon=True)
    try:
        opening.start()
        opening.join(timeout=30)
        assert not opening.is_alive(), "open() still waiting for streams the server closed"
        assert (clients.refused, clients.dropped) == (count, 0)
    finally:
        for process in clients.processes:
            process.kill()


def closing_server(requests):
    """A server whose first stream sends one event and closes, as Pushpin killed closes every
    stream; the next stream it serves sends the event published meanwhile."""
    listener = socket.create_server(("127.0.0.1", 0))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nevent: stream-open\ndata:\n\n"

    def serve():
        while True:
            connection, _ = listener.accept()
            requests.append(connection.recv(65536).split(b"\r\n")[0].decode())
            if len(requests) == 1:
                connection.sendall(head + b'event: member-sync\nid: team-1:1\ndata: {"n": 1}\n\n')
                connection.close()
            else:
                connection.sendall(head + b'event: member-sync\nid: team-1:2\ndata: {"n": 2}\n\n')

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/t/team/events/"


def test_a_page_whose_stream_closed_reconnects_from_its_last_event_id():
    """Costs about 1 s: the page's first reconnection waits up to a second (its policy)."""
    requests = []
    clients = StreamClients(closing_server(requests), cookies={}, count=1, reconnect=True)
    try:
        clients.open()
        [received] = clients.received(b'{"n": 2}', timeout=5)
        assert received is not None, requests
        assert requests == ["GET /t/team/events/? HTTP/1.1", "GET /t/team/events/?lastEventId=team-1%3A1 HTTP/1.1"]
        assert (clients.refused, clients.dropped) == (0, 1)
    finally:
        for process in clients.processes:
            process.kill()


def test_a_page_refused_with_a_stream_error_stays_closed():
    """Costs about 1 s: long enough for a reconnection, which the page's script does not make."""
    requests = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            connection, _ = listener.accept()
            requests.append(connection.recv(65536))
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                b'event: stream-error\nid: error\ndata: {"condition": "too-many-streams", "text": "Close some"}\n\n'
            )
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/t/team/events/"
    clients = StreamClients(url, cookies={}, count=1, reconnect=True)
    try:
        clients.open()
        # What is tested is an absence: no reconnection through the window a first one would take.
        time.sleep(1.1)
        assert clients.received(b"never sent", timeout=0) == [None]
        assert clients.stream_errors == {"too-many-streams": 1}
        assert len(requests) == 1
    finally:
        for process in clients.processes:
            process.kill()
