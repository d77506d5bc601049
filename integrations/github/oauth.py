"""GitHub's OAuth web flow: send the user to authorize the app, then exchange the code for a token.
The OAuth App's by default; the GitHub App's user authorization is the same flow with the App's own
client id and secret, and no scopes (integrations/github/app.py).

https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#web-application-flow
https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app#using-the-web-application-flow-to-generate-a-user-access-token
"""

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from django.conf import settings

from integrations.github import errors, schemas
from integrations.github.client import API_VERSION, new_session, send
from integrations.github.errors import (
    READ_ORG,
    GitHubUnavailable,
    MalformedResponse,
    OAuthError,
    ScopeMissing,
    grants,
    scope_list,
)
from integrations.github.schemas import OAuthToken


def authorize_url(
    *, state: str, redirect_uri: str, scopes: Sequence[str] = (READ_ORG,), client_id: str | None = None
) -> str:
    """Where to send the user to authorize the OAuth App (or, given its client id, the GitHub App,
    which takes no scopes: its permissions are the App's).

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#1-request-a-users-github-identity
    """
    query = {"client_id": client_id or settings.GITHUB_CLIENT_ID, "redirect_uri": redirect_uri}
    if scopes:
        query["scope"] = " ".join(scopes)
    query["state"] = state
    return f"{settings.GITHUB_WEB_URL}/login/oauth/authorize?{urlencode(query)}"


def exchange_code(
    code: str,
    *,
    redirect_uri: str,
    client_id: str | None = None,
    client_secret: str | None = None,
    required_scope: str | None = READ_ORG,
) -> OAuthToken:
    """Exchange the code GitHub handed to the callback for an access token, and check that the
    user granted ``required_scope`` (users may grant fewer scopes than asked). The OAuth App's
    credentials unless others are given; a GitHub App's user token has no scopes to check.

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#2-users-are-redirected-back-to-your-site-by-github
    https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
    """
    form = {
        "client_id": client_id or settings.GITHUB_CLIENT_ID,
        "client_secret": client_secret or settings.GITHUB_CLIENT_SECRET,
        "code": code,
        "redirect_uri": redirect_uri,
    }
    # A code works once: only a request that never reached GitHub (a failed connect) is sent again.
    with new_session(resend=False) as session:
        response, _ = send(
            session,
            "POST",
            f"{settings.GITHUB_WEB_URL}/login/oauth/access_token",
            timeout=(10, 10),
            headers={"Accept": "application/json"},
            data=form,
        )
    if response.status >= 500:
        raise GitHubUnavailable(f"HTTP {response.status}")
    if response.status != 200:
        raise OAuthError(f"http_{response.status}")
    # GitHub answers a bad or expired code with 200 and an "error" field.
    answer = schemas.parse(schemas.TokenAnswer, response.body, "the access token answer")
    if answer.error is not None:
        raise OAuthError(answer.error)
    if not answer.access_token:
        raise MalformedResponse("the access token answer: access_token: missing")
    scopes = scope_list(answer.scope)
    if required_scope is not None and not grants(scopes, required_scope):
        raise ScopeMissing(required_scope)
    return OAuthToken(access_token=answer.access_token, token_type=answer.token_type or "bearer", scopes=scopes)


def revoke_token(access_token: str, *, client_id: str | None = None, client_secret: str | None = None) -> None:
    """Revoke a token GitHub issued to the OAuth App (by default this server's), as its client: basic
    authentication with the client's id and secret, the token in the body. GitHub answers 204; an
    error is raised as the others are (the caller decides whether it matters).

    https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-token
    """
    client_id = client_id or settings.GITHUB_CLIENT_ID
    url = f"{settings.GITHUB_API_URL}/applications/{quote(client_id, safe='')}/token"
    with new_session(retries=1, resend=False) as session:
        response, _ = send(
            session,
            "DELETE",
            url,
            timeout=(10, 10),
            auth=(client_id, client_secret or settings.GITHUB_CLIENT_SECRET),
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
            json={"access_token": access_token},
        )
    error = errors.for_status(response.status, response.headers, response.body, web_url=settings.GITHUB_WEB_URL)
    if error is not None:
        raise error
    if response.status != 204:
        raise errors.GitHubError(f"HTTP {response.status}")
