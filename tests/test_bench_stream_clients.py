"""The benchmarks' stream clients (bench/stream_clients.py) against a server that refuses streams."""

import socket
import threading

from bench.stream_clients import CONNECTING_AT_ONCE, StreamClients


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
