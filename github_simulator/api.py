"""What every request to the simulated GitHub goes through: injected faults, then (for the API)
authentication and the token's rate-limit budget, then the endpoint, and GitHub's headers on the way out."""

import secrets

from github_simulator import graphql, oauth, rest
from github_simulator.faults import (
    GRAPHQL_DOCS,
    REST_DOCS,
    TRANSPORT_FAULTS,
    bad_credentials,
    rate_limited,
    transport_response,
)
from github_simulator.responses import Response, github_error

_GRAPHQL_AUTH_DOCS = f"{GRAPHQL_DOCS}/guides/forming-calls-with-graphql#authenticating-with-graphql"


def handle(state, request) -> Response:
    request_id = _request_id()
    is_graphql = request.path == "/graphql"
    resource = "graphql" if is_graphql else "core"
    token_value = _token_value(request)
    token = state.tokens.get(token_value) if token_value else None
    fault = state.faults.take(TRANSPORT_FAULTS, request.path)
    if fault:
        budget_headers = state.tokens.budget(token, resource).headers(resource) if token else []
        response = transport_response(fault, graphql=is_graphql, budget_headers=budget_headers, request_id=request_id)
    elif request.path.startswith("/login/oauth/"):
        return oauth.handle(state, request)
    else:
        response = _api(state, request, is_graphql, token_value, token, request_id)
    media_type = "github.v4; format=json" if is_graphql else "github.v3; format=json"
    response.headers += [("X-GitHub-Media-Type", media_type), ("X-GitHub-Request-Id", request_id)]
    return response


def _api(state, request, is_graphql, token_value, token, request_id) -> Response:
    found = None if is_graphql else rest.route(request.path)
    if not is_graphql and (found is None or request.method != "GET"):
        return github_error(404, "Not Found", REST_DOCS)
    if is_graphql and request.method != "POST":
        return github_error(404, "Not Found", GRAPHQL_DOCS)
    if not token_value:
        if is_graphql:
            return github_error(401, "This endpoint requires you to be authenticated.", _GRAPHQL_AUTH_DOCS)
        return github_error(401, "Requires authentication", found[0].docs)
    if token is None:
        return bad_credentials(graphql=is_graphql)
    resource = "graphql" if is_graphql else "core"
    budget, charged = state.tokens.charge(token, resource)
    if not charged:
        response = rate_limited(graphql=is_graphql, limit=budget.limit, reset_at=budget.reset_at, request_id=request_id)
    elif is_graphql:
        response = graphql.handle(state, token, budget, request)
        response.headers += budget.headers(resource)
    else:
        route, parameters = found
        response = route.view(state, token, request, **parameters)
        response.headers += budget.headers(resource)
    accepted = "" if is_graphql else found[0].accepted_scopes
    response.headers += [("X-OAuth-Scopes", token.scopes_header), ("X-Accepted-OAuth-Scopes", accepted)]
    return response


def _token_value(request) -> str | None:
    """The token of an "Authorization: token …" or "Bearer …" header; any other value counts as a
    token GitHub does not know."""
    authorization = request.headers.get("authorization", "").strip()
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() in ("token", "bearer") else authorization


def _request_id() -> str:
    # The shape of GitHub's X-GitHub-Request-Id.
    parts = (
        secrets.randbits(16),
        secrets.randbits(24),
        secrets.randbits(28),
        secrets.randbits(28),
        secrets.randbits(32),
    )
    return ":".join(f"{part:X}" for part in parts)
