"""The HTTP layer: a threading HTTP/1.1 server with keep-alive, so that a client's session reuses its
connection as it would with GitHub."""

import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from github_simulator import api, control
from github_simulator.responses import Request, Response, json_response


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, simulator):
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._resets: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        # A client that hung up (a killed worker, a test that gave up waiting) is not a fault of
        # the simulator's: no traceback for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            # Straight to close: with SO_LINGER 0 the client gets a TCP reset, not an orderly end.
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def reset_after_handling(self, request) -> None:
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._connections_lock:
            self._resets.add(request)

    def close_connections(self) -> None:
        """Ends the kept-alive connections too, so nothing answers once the simulator is stopped."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    # Headers and body go out in two writes; with Nagle's algorithm and the client's delayed ACK the
    # second would wait some 40 ms.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            response = dispatch(self.server.simulator, Request(self.command, self.path, headers, body))
        except Exception:
            # A simulator bug must not look like an injected connection reset: answer 500, and say why.
            traceback.print_exc()
            response = json_response(500, {"message": "Server Error"})
        if response.reset_connection:
            self.close_connection = True
            self.server.reset_after_handling(self.connection)
            return
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format, *args):
        pass  # a request line per call would drown the output of tests and of make run


def dispatch(simulator, request: Request) -> Response:
    if request.path.startswith(control.PREFIX):
        return control.handle(simulator, request)
    state = simulator.state
    state.record(request.method, request.target)
    if state.latency_ms:
        time.sleep(state.latency_ms / 1000)
    with state.lock:
        return api.handle(state, request)
