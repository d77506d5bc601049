"""The HTTP side: a threading HTTP/1.1 server with keep-alive (so that a client's session reuses its
connection as it would with GitHub), and the way every request goes: the control API, the OAuth pages,
or the API (injected faults, authentication, the token's rate-limit budget, the endpoint, conditional
requests, and GitHub's headers on the way out)."""

import hashlib
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from github_simulator import app_api, avatars, control, graphql, install_page, oauth, rest, revocation
from github_simulator.faults import (
    GRAPHQL_DOCS,
    REST_DOCS,
    TRANSPORT_FAULTS,
    bad_credentials,
    rate_limited,
    transport_response,
)
from github_simulator.messages import Request, Response, github_error, json_response
from github_simulator.tokens import kind_of

_GRAPHQL_AUTH_DOCS = f"{GRAPHQL_DOCS}/guides/forming-calls-with-graphql#authenticating-with-graphql"
_ENTERPRISE_REST = "/api/v3"  # GitHub Enterprise Server serves REST here and GraphQL at /api/graphql


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, simulator):
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        # A client that hung up (a killed worker, a test that gave up waiting) is not a fault of
        # the simulator's: no traceback for it.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End the kept-alive connections too, so that nothing answers once the simulator is stopped."""
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
            # Closed with SO_LINGER 0 and no shutdown first, the client gets a TCP reset, not an orderly end.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
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
    # Asked for by browsers showing the product's pages, not by the product: not counted as its requests.
    if request.path.startswith(avatars.PREFIX):
        return avatars.handle(request)
    simulator.record(request.method, request.target, credential=kind_of(request.headers.get("authorization")))
    if simulator.latency_ms:
        time.sleep(simulator.latency_ms / 1000)
    with simulator.lock:
        return _handle(simulator, request)


def _handle(simulator, request: Request) -> Response:
    path = request.path
    enterprise = path.startswith(("/api/v3/", "/api/graphql"))
    request.api_url = simulator.url + (_ENTERPRISE_REST if enterprise else "")
    graphql_path = "/api/graphql" if enterprise else "/graphql"
    request.api_path = "/graphql" if path == graphql_path else path.removeprefix(_ENTERPRISE_REST)
    is_graphql = request.api_path == "/graphql"
    request_id = _request_id()
    token_value = _token_value(request)
    token = simulator.tokens.get(token_value) if token_value else None
    fault = simulator.faults.take(request.api_path, *TRANSPORT_FAULTS)
    if fault:
        resource = "graphql" if is_graphql else "core"
        budget_headers = simulator.tokens.budget(token, resource).headers(resource) if token else []
        response = transport_response(fault, graphql=is_graphql, budget_headers=budget_headers, request_id=request_id)
    elif path.startswith("/login/oauth/"):
        return oauth.handle(simulator, request)
    elif path.startswith(("/apps/", "/github-apps/")):
        return install_page.handle(simulator, request)
    elif request.api_path == "/app" or request.api_path.startswith("/app/"):
        response = app_api.handle_jwt(simulator, request)
    elif match := revocation.APPLICATION_TOKEN_PATH.fullmatch(request.api_path):
        response = revocation.delete_app_token(simulator, request, match["client_id"])
    elif revocation.INSTALLATION_TOKEN_PATH.fullmatch(request.api_path):
        response = revocation.revoke_installation_token(simulator, request, token_value, token)
    elif is_graphql:
        response = _graphql(simulator, request, token_value, token, request_id)
    else:
        response = _rest(simulator, request, token_value, token, request_id)
    media_type = "github.v4; format=json" if is_graphql else "github.v3; format=json"
    response.headers += [("X-GitHub-Media-Type", media_type), ("X-GitHub-Request-Id", request_id)]
    return response


def _graphql(simulator, request, token_value, token, request_id) -> Response:
    if request.method != "POST":
        return github_error(404, "Not Found", GRAPHQL_DOCS)
    if not token_value:
        return github_error(401, "This endpoint requires you to be authenticated.", _GRAPHQL_AUTH_DOCS)
    if token is None:
        return bad_credentials(graphql=True)
    budget, charged = simulator.tokens.charge(token, "graphql")
    if not charged:
        return rate_limited(graphql=True, limit=budget.limit, reset_at=budget.reset_at, request_id=request_id)
    response = graphql.handle(simulator, token, budget, request, request_id)
    response.headers += [*budget.headers("graphql"), ("X-OAuth-Scopes", token.scopes_header)]
    return response


def _rest(simulator, request, token_value, token, request_id) -> Response:
    found = rest.route(request.api_path) or app_api.route(request.api_path)
    if found is None or request.method != "GET":
        return github_error(404, "Not Found", REST_DOCS)
    route, parameters = found
    if not token_value:
        return github_error(401, "Requires authentication", REST_DOCS)
    if token is None:
        return bad_credentials(graphql=False)
    if route.for_users and token.installation is not None:
        return github_error(403, app_api.NOT_ACCESSIBLE, REST_DOCS)
    if refusal := app_api.permission_refusal(token, request):
        return refusal
    budget = simulator.tokens.budget(token, "core")
    if route.charged and budget.remaining == 0:
        return rate_limited(graphql=False, limit=budget.limit, reset_at=budget.reset_at, request_id=request_id)
    response = route.view(simulator, token, request, **parameters)
    if response.status == 200:
        etag = f'W/"{hashlib.sha256(response.body).hexdigest()[:40]}"'
        response.headers.append(("ETag", etag))
        # A conditional request answered 304 is free, as on GitHub: that is what makes polling cheap.
        if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
            response = Response(304, b"", [header for header in response.headers if header[0] != "Content-Type"])
    if route.charged and response.status != 304:
        simulator.tokens.charge(token, "core")
    scope_headers = [("X-OAuth-Scopes", token.scopes_header), ("X-Accepted-OAuth-Scopes", route.accepted_scopes)]
    response.headers += [*budget.headers("core"), *scope_headers]
    return response


def _token_value(request) -> str | None:
    """Return the token of an "Authorization: token …" or "Bearer …" header; any other value counts as a
    token GitHub does not know."""
    authorization = request.headers.get("authorization", "").strip()
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") else authorization


def _request_id() -> str:
    # The shape of GitHub's X-GitHub-Request-Id.
    return ":".join(f"{secrets.randbits(bits):X}" for bits in (16, 24, 28, 28, 32))
