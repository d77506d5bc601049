"""Revoking tokens through the REST API: an OAuth client deletes a token it was issued (basic
authentication with its client id and secret), and an installation token revokes itself. Both answer
204 and the token stops working at once; each revocation is recorded (Tokens.revoked).

https://docs.github.com/rest/apps/oauth-applications#delete-an-app-token
https://docs.github.com/rest/apps/installations#revoke-an-installation-access-token
"""

import base64
import binascii
import re

from github_simulator.faults import bad_credentials
from github_simulator.messages import Response, github_error, json_response

_OAUTH_DOCS = "https://docs.github.com/rest/apps/oauth-applications#delete-an-app-token"
_INSTALLATION_DOCS = "https://docs.github.com/rest/apps/installations#revoke-an-installation-access-token"
APPLICATION_TOKEN_PATH = re.compile(r"/applications/(?P<client_id>[^/]+)/token")
INSTALLATION_TOKEN_PATH = re.compile(r"/installation/token")


def delete_app_token(simulator, request, client_id: str) -> Response:
    if request.method != "DELETE":
        return github_error(404, "Not Found", _OAUTH_DOCS)
    # GitHub answers 404 to a client it cannot authenticate, as if the route did not exist.
    if not _client_authenticated(simulator, request, client_id):
        return github_error(404, "Not Found", _OAUTH_DOCS)
    body = request.json()
    access_token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access_token, str) or not access_token:
        errors = [{"resource": "OauthAccess", "field": "access_token", "code": "missing_field"}]
        return json_response(422, {"message": "Validation Failed", "errors": errors, "documentation_url": _OAUTH_DOCS})
    token = simulator.tokens.get(access_token)
    # Only the client the token was issued to may delete it; a token of the control API is any OAuth
    # App's but not the GitHub App's.
    if token is None or token.installation is not None or not _issued_to(simulator, token, client_id):
        return github_error(404, "Not Found", _OAUTH_DOCS)
    simulator.tokens.revoke_through_api(token, f"DELETE /applications/{client_id}/token")
    return Response(204)


def revoke_installation_token(simulator, request, token_value: str | None, token) -> Response:
    if request.method != "DELETE":
        return github_error(404, "Not Found", _INSTALLATION_DOCS)
    if not token_value:
        return github_error(401, "Requires authentication", _INSTALLATION_DOCS)
    if token is None:
        return bad_credentials(graphql=False)
    if token.installation is None:
        return github_error(403, "Resource not accessible by integration", _INSTALLATION_DOCS)
    simulator.tokens.revoke_through_api(token, "DELETE /installation/token")
    return Response(204)


def _client_authenticated(simulator, request, client_id: str) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    if user != client_id or not secret:
        return False
    # Any secret does for an OAuth App (the simulator knows no registration but its App's), as on the
    # token exchange; the App's must be its own.
    return client_id != simulator.app.client_id or secret == simulator.app.client_secret


def _issued_to(simulator, token, client_id: str) -> bool:
    if token.client_id is not None:
        return token.client_id == client_id
    return client_id != simulator.app.client_id and token.permissions is None
