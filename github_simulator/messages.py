"""The requests and responses passed between the HTTP server and the simulated endpoints, and GitHub's
JSON conventions."""

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

JSON = "application/json; charset=utf-8"


@dataclass
class Request:
    method: str
    target: str  # the path with its query, as sent
    headers: dict[str, str]  # lowercase names
    body: bytes = b""
    path: str = field(init=False)
    query: dict[str, str] = field(init=False)
    # Set by the server for the API: the path without the layout's prefix (/api/v3 on Enterprise Server,
    # and "/graphql" for either GraphQL endpoint), and the API's base URL in the request's layout.
    api_path: str = ""
    api_url: str = ""

    def __post_init__(self):
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = {name: values[-1] for name, values in parse_qs(parts.query).items()}

    @property
    def query_string(self) -> str:
        return urlsplit(self.target).query

    def json(self):
        """Return the body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def form(self) -> dict[str, str]:
        """Return the fields of the query and of a form-encoded or JSON body, as GitHub's OAuth endpoints
        accept them."""
        fields = dict(self.query)
        if self.headers.get("content-type", "").startswith("application/json"):
            body = self.json()
            fields.update({key: str(value) for key, value in body.items()} if isinstance(body, dict) else {})
        else:
            fields.update({name: values[-1] for name, values in parse_qs(self.body.decode(errors="replace")).items()})
        return fields


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    reset_connection: bool = False  # close the socket without answering


def json_response(status: int, payload, headers=()) -> Response:
    # GitHub answers compact JSON.
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, [("Content-Type", JSON), *headers])


def github_error(status: int, message: str, documentation_url: str, headers=()) -> Response:
    """Return GitHub's "Basic Error" body, with the status repeated as a string as GitHub has done since 2024."""
    payload = {"message": message, "documentation_url": documentation_url, "status": str(status)}
    return json_response(status, payload, headers)


def redirect(location: str) -> Response:
    return Response(302, b"", [("Location", location), ("Content-Type", "text/html; charset=utf-8")])
