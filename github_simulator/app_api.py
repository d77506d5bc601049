"""The REST endpoints of GitHub Apps: those the App calls with its JWT (GET /app, its installations,
POST /app/installations/{id}/access_tokens, its webhook's deliveries) and the one a user of the App
calls with the user access token the App obtained (GET /user/installations); and the refusal of member
endpoints to an installation without the Members permission."""

import json
import re
import time
from urllib.parse import urlencode

from github_simulator.app import EVENTS, PERMISSIONS
from github_simulator.faults import REST_DOCS
from github_simulator.messages import github_error, json_response
from github_simulator.organizations import VIEWER, Member, SimulatedOrg
from github_simulator.rest import Route, _simple_user

_APPS_DOCS = "https://docs.github.com/rest/apps/apps"
_NOT_AN_APP_USER = (
    "You must authenticate with an access token authorized to a GitHub App in order to list installations"
)
_SUSPENDED = "This installation has been suspended"


def handle_jwt(simulator, request):
    """An endpoint for the App itself: the JWT is its authentication, checked against the public key."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if not authorization:
        return github_error(401, "A JSON web token could not be decoded", REST_DOCS)
    if scheme.lower() != "bearer" or (refusal := simulator.app.refusal(token.strip())):
        return github_error(401, refusal or "A JSON web token could not be decoded", REST_DOCS)
    for method, pattern, view in _JWT_ENDPOINTS:
        if method == request.method and (match := re.fullmatch(pattern, request.api_path)):
            return view(simulator, request, *match.groups())
    return github_error(404, "Not Found", REST_DOCS)


def _app(simulator, request):
    app = simulator.app
    body = {
        "id": app.id,
        "slug": app.slug,
        "node_id": f"A_kwDO{app.id:08d}",
        "client_id": app.client_id,
        "owner": _simple_user(VIEWER, request.api_url, simulator.url),
        "name": app.name,
        "description": "The GitHub simulator's App, for the member sync.",
        "external_url": simulator.url,
        "html_url": f"{simulator.url}/apps/{app.slug}",
        "created_at": "2025-01-22T12:00:00Z",
        "updated_at": "2025-01-22T12:00:00Z",
        "permissions": PERMISSIONS,
        "events": EVENTS,
        "installations_count": sum(1 for _ in simulator.installations),
    }
    return json_response(200, body)


def _installations(simulator, request):
    return json_response(
        200, [installation_body(simulator, found, request.api_url) for found in simulator.installations]
    )


def _installation(simulator, request, installation_id):
    found = simulator.installations.get(int(installation_id))
    if found is None:
        return github_error(404, "Not Found", REST_DOCS)
    return json_response(200, installation_body(simulator, found, request.api_url))


def _access_token(simulator, request, installation_id):
    found = simulator.installations.get(int(installation_id))
    if found is None:
        return github_error(404, "Not Found", REST_DOCS)
    if found.suspended_at is not None:
        return github_error(403, _SUSPENDED, REST_DOCS)
    token = simulator.tokens.issue_for_installation(found, found.permissions, simulator.app.token_lifetime_seconds)
    body = {
        "token": token.value,
        "expires_at": _iso(token.expires_at),
        "permissions": found.permissions,
        "repository_selection": "all",
    }
    return json_response(201, body)


# The App's webhook deliveries: every attempt is an item with an id of its own, newest first, paged by
# an opaque cursor in the Link header. https://docs.github.com/rest/apps/webhooks
_WEBHOOKS_DOCS = "https://docs.github.com/rest/apps/webhooks"
_DELIVERIES_PER_PAGE, _DELIVERIES_MAX_PER_PAGE = 30, 100
_CURSOR_PREFIX = "v1_"


def _hook_deliveries(simulator, request):
    try:
        per_page = min(_DELIVERIES_MAX_PER_PAGE, max(1, int(request.query.get("per_page", _DELIVERIES_PER_PAGE))))
        before = _cursor_id(request.query.get("cursor"))
    except ValueError:
        return github_error(400, "Invalid cursor or per_page", f"{_WEBHOOKS_DOCS}#list-deliveries-for-an-app-webhook")
    wanted = request.query.get("status")  # "success" or "failure"
    attempts = [
        attempt
        for attempt in simulator.webhooks.attempts()
        if (before is None or attempt.id < before)
        and (wanted not in ("success", "failure") or attempt.succeeded == (wanted == "success"))
    ]
    page, rest = attempts[:per_page], attempts[per_page:]
    headers = []
    if rest:
        query = urlencode({"per_page": per_page, "cursor": f"{_CURSOR_PREFIX}{page[-1].id}"})
        if wanted:
            query += "&" + urlencode({"status": wanted})
        headers.append(("Link", f'<{request.api_url}/app/hook/deliveries?{query}>; rel="next"'))
    return json_response(200, [_delivery_item(attempt) for attempt in page], headers)


def _cursor_id(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.startswith(_CURSOR_PREFIX):
        raise ValueError(cursor)
    return int(cursor.removeprefix(_CURSOR_PREFIX))


def _hook_delivery(simulator, request, delivery_id):
    if (attempt := simulator.webhooks.attempt(int(delivery_id))) is None:
        return github_error(404, "Not Found", f"{_WEBHOOKS_DOCS}#get-a-delivery-for-an-app-webhook")
    body = {
        **_delivery_item(attempt),
        "url": attempt.url,
        "request": {"headers": attempt.request_headers, "payload": json.loads(attempt.delivery.body)},
        "response": {"headers": attempt.response_headers or None, "payload": attempt.response_body or None},
    }
    return json_response(200, body)


def _redeliver(simulator, request, delivery_id):
    if (attempt := simulator.webhooks.attempt(int(delivery_id))) is None:
        return github_error(404, "Not Found", f"{_WEBHOOKS_DOCS}#redeliver-a-delivery-for-an-app-webhook")
    simulator.webhooks.redeliver(attempt.delivery.guid)
    return json_response(202, {})


def _delivery_item(attempt) -> dict:
    """GitHub's "hook-delivery-item"."""
    delivery = attempt.delivery
    return {
        "id": attempt.id,
        "guid": delivery.guid,
        "delivered_at": _iso(attempt.delivered_at),
        "redelivery": attempt.redelivery,
        "duration": attempt.duration,
        "status": attempt.status,
        "status_code": attempt.status_code,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository_id": None,
        "throttled_at": None,
    }


_JWT_ENDPOINTS = (
    ("GET", r"/app", _app),
    ("GET", r"/app/hook/deliveries", _hook_deliveries),
    ("GET", r"/app/hook/deliveries/(\d+)", _hook_delivery),
    ("POST", r"/app/hook/deliveries/(\d+)/attempts", _redeliver),
    ("GET", r"/app/installations", _installations),
    ("GET", r"/app/installations/(\d+)", _installation),
    ("POST", r"/app/installations/(\d+)/access_tokens", _access_token),
)


# What an installation needs the Members permission for; without it GitHub refuses them to its tokens.
# The member endpoints, teams' among them: GitHub's Members permission covers teams too.
_MEMBER_PATHS = re.compile(
    r"/(?:orgs/[^/]+|organizations/\d+)/(?:members|memberships/[^/]+|teams(?:/.*)?|team/\d+(?:/.*)?)"
)
NOT_ACCESSIBLE = "Resource not accessible by integration"


def permission_refusal(token, request):
    """GitHub's 403 to an installation token whose installation lacks the Members permission (not
    granted, or new permissions not accepted yet), on an endpoint that needs it; else None."""
    if token.installation is None or token.grants("read:org") or not _MEMBER_PATHS.fullmatch(request.api_path):
        return None
    return github_error(403, NOT_ACCESSIBLE, REST_DOCS)


def _user_installations(simulator, token, request):
    """The App's installations the user can reach: here, those on organizations octocat belongs to."""
    if token.permissions is None:
        return github_error(
            403, _NOT_AN_APP_USER, f"{_APPS_DOCS}#list-app-installations-accessible-to-the-user-access-token"
        )
    reachable = [
        found
        for found in simulator.installations
        if (org := simulator.orgs.find_by_id(found.org_id)) and org.viewer_is_member
    ]
    body = {
        "total_count": len(reachable),
        "installations": [installation_body(simulator, found, request.api_url) for found in reachable],
    }
    return json_response(200, body)


ROUTES = (Route(re.compile(r"/user/installations"), _user_installations, for_users=True),)


def route(path: str):
    return next(((candidate, {}) for candidate in ROUTES if candidate.pattern.fullmatch(path)), None)


def installation_body(simulator, installation, api_url: str) -> dict:
    """GitHub's "installation": the App's installation on an organization's account."""
    app = simulator.app
    org = simulator.orgs.find_by_id(installation.org_id)
    suspended = installation.suspended_at is not None
    return {
        "id": installation.id,
        "account": _account(org, api_url, simulator.url),
        "repository_selection": "all",
        "access_tokens_url": f"{api_url}/app/installations/{installation.id}/access_tokens",
        "repositories_url": f"{api_url}/installation/repositories",
        "html_url": f"{simulator.url}/organizations/{org.login}/settings/installations/{installation.id}",
        "app_id": app.id,
        "app_slug": app.slug,
        "target_id": org.id,
        "target_type": "Organization",
        "permissions": installation.permissions,
        "events": EVENTS,
        "created_at": _iso(installation.created_at),
        "updated_at": _iso(installation.suspended_at or installation.created_at),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": _simple_user(VIEWER, api_url, simulator.url) if suspended else None,
        "suspended_at": _iso(installation.suspended_at) if suspended else None,
    }


def _account(org: SimulatedOrg, api_url: str, web_url: str) -> dict:
    """An organization as GitHub shows the account of an installation: shaped as a simple user."""
    as_user = Member(-1, org.id, org.node_id, org.login, org.name, "", "", True, False)
    return {**_simple_user(as_user, api_url, web_url), "type": "Organization"}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
