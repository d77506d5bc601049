"""The OAuth web flow: GitHub's authorize page, its answers to Authorize and Cancel, and the exchange of
the code for a token (https://docs.github.com/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps)."""

import re
import secrets
import time
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode, urlsplit

from github_simulator.app import PERMISSIONS
from github_simulator.messages import Response, json_response, redirect
from github_simulator.organizations import VIEWER

CODE_LIFETIME_SECONDS = 600
_TROUBLESHOOTING = "https://docs.github.com/apps/managing-oauth-apps"
_TOKEN_ERRORS = {
    "bad_verification_code": "The code passed is incorrect or expired.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
}


@dataclass(frozen=True)
class Grant:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    expires_at: float


class Codes:
    """Authorization codes: single use, valid for ten minutes, as GitHub's."""

    def __init__(self, lock):
        self._lock = lock
        self._grants: dict[str, Grant] = {}

    def issue(self, client_id: str, redirect_uri: str, scopes: tuple[str, ...]) -> str:
        code = secrets.token_hex(10)
        with self._lock:
            self._grants[code] = Grant(client_id, redirect_uri, scopes, time.time() + CODE_LIFETIME_SECONDS)
        return code

    def get(self, code: str) -> Grant | None:
        with self._lock:
            grant = self._grants.get(code)
            return grant if grant and grant.expires_at > time.time() else None

    def discard(self, code: str) -> None:
        with self._lock:
            self._grants.pop(code, None)

    def clear(self) -> None:
        with self._lock:
            self._grants.clear()


def handle(simulator, request) -> Response:
    path, method = request.path.rstrip("/"), request.method
    if path == "/login/oauth/authorize" and method == "GET":
        return _authorize_page(simulator, request.query)
    if path == "/login/oauth/authorize" and method == "POST":
        return _authorize(simulator, request.form())
    if path == "/login/oauth/cancel" and method == "GET":
        return _cancel(request.query)
    if path == "/login/oauth/access_token" and method == "POST":
        return _exchange(simulator, request)
    return page(404, "Page not found", "<p>This is not the web page you are looking for.</p>")


def _authorize_page(simulator, query) -> Response:
    if refusal := _invalid(query):
        return refusal
    app = escape(query["client_id"])
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(query.get(name, ""))}">'
        for name in ("client_id", "redirect_uri", "state", "scope")
    )
    cancel = "/login/oauth/cancel?" + urlencode({name: query.get(name, "") for name in ("redirect_uri", "state")})
    scopes = ", ".join(f"<code>{escape(scope)}</code>" for scope in _scopes(query.get("scope", ""))) or "none"
    orgs = ", ".join(escape(org.login) for org in simulator.orgs)
    body = f"""<h1>Authorize {app}</h1>
<p>{app} wants to access your {VIEWER.login} account. Scopes: {scopes}. Organizations: {orgs}.</p>
<form method="post" action="/login/oauth/authorize">{hidden}
<a class="cancel" href="{escape(cancel)}">Cancel</a> <button type="submit">Authorize</button>
</form>"""
    return page(200, f"Authorize application {query['client_id']}", body)


def _authorize(simulator, form) -> Response:
    if refusal := _invalid(form):
        return refusal
    code = simulator.codes.issue(form["client_id"], form["redirect_uri"], _scopes(form.get("scope", "")))
    return redirect(with_query(form["redirect_uri"], {"code": code, "state": form.get("state")}))


def _cancel(query) -> Response:
    if not _is_web_url(query.get("redirect_uri", "")):
        return page(400, "Bad request", "<p>The redirect_uri is missing or not an http(s) URL.</p>")
    parameters = {
        "error": "access_denied",
        "error_description": "The user has denied your application access.",
        "error_uri": f"{_TROUBLESHOOTING}/troubleshooting-authorization-request-errors/#access-denied",
        "state": query.get("state"),
    }
    return redirect(with_query(query["redirect_uri"], parameters))


def _exchange(simulator, request) -> Response:
    form = request.form()
    code = form.get("code", "")
    grant = simulator.codes.get(code)
    if grant is None:
        error = "bad_verification_code"
    elif form.get("client_id") != grant.client_id or not _secret_matches(simulator, grant, form.get("client_secret")):
        error = "incorrect_client_credentials"
    elif form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
        error = "redirect_uri_mismatch"
    elif grant.client_id == simulator.app.client_id:
        # A GitHub App's user access token: no scopes, the App's permissions instead.
        simulator.codes.discard(code)
        token = simulator.tokens.issue_for_app_user(PERMISSIONS, client_id=grant.client_id)
        return _token_answer(request, {"access_token": token, "token_type": "bearer", "scope": ""})
    else:
        simulator.codes.discard(code)
        token = simulator.tokens.issue(grant.scopes, client_id=grant.client_id)
        return _token_answer(request, {"access_token": token, "token_type": "bearer", "scope": ",".join(grant.scopes)})
    # GitHub answers a failed exchange with 200, the error in the body.
    anchor = error.replace("_", "-") + ("2" if error == "redirect_uri_mismatch" else "")
    error_uri = f"{_TROUBLESHOOTING}/troubleshooting-oauth-app-access-token-request-errors/#{anchor}"
    return _token_answer(request, {"error": error, "error_description": _TOKEN_ERRORS[error], "error_uri": error_uri})


def _secret_matches(simulator, grant, secret: str | None) -> bool:
    """Any secret does for an OAuth App (the simulator knows no registrations but its App's); the App's
    must be its own."""
    if grant.client_id == simulator.app.client_id:
        return secret == simulator.app.client_secret
    return bool(secret)


def _token_answer(request, payload: dict) -> Response:
    """Answer JSON when asked for it, else form-encoded, as GitHub's token endpoint does."""
    if "application/json" in request.headers.get("accept", ""):
        return json_response(200, payload)
    content_type = "application/x-www-form-urlencoded; charset=utf-8"
    return Response(200, urlencode(payload).encode(), [("Content-Type", content_type)])


def _invalid(fields) -> Response | None:
    if not fields.get("client_id"):
        return page(404, "Page not found", "<p>No OAuth application has this client_id.</p>")
    if not _is_web_url(fields.get("redirect_uri", "")):
        return page(400, "Bad request", "<p>The redirect_uri is missing or not an http(s) URL.</p>")
    return None


def _scopes(requested: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(scope for scope in re.split(r"[\s,]+", requested) if scope))


def _is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def with_query(url: str, parameters: dict) -> str:
    query = urlencode({name: value for name, value in parameters.items() if value is not None})
    return f"{url}{'&' if urlsplit(url).query else '?'}{query}"


def page(status: int, title: str, body: str) -> Response:
    page = f'<!DOCTYPE html>\n<html lang="en"><title>{escape(title)}</title>\n<body>{body}</body></html>'
    return Response(status, page.encode(), [("Content-Type", "text/html; charset=utf-8")])
