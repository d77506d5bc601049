"""GitHub's OAuth web flow: send the user to authorize the app, then exchange the code for a token.

https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#web-application-flow
"""

from collections.abc import Sequence
from urllib.parse import urlencode

from django.conf import settings

from integrations.github import schemas
from integrations.github.client import new_session, send
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


def authorize_url(*, state: str, redirect_uri: str, scopes: Sequence[str] = (READ_ORG,)) -> str:
    """Where to send the user to authorize the OAuth App.

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#1-request-a-users-github-identity
    """
    query = {
        "client_id": settings.GITHUB_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
    }
    return f"{settings.GITHUB_WEB_URL}/login/oauth/authorize?{urlencode(query)}"


def exchange_code(code: str, *, redirect_uri: str) -> OAuthToken:
    """Exchange the code GitHub handed to the callback for an access token, and check that the
    user granted read:org (users may grant fewer scopes than asked).

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#2-users-are-redirected-back-to-your-site-by-github
    https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
    """
    form = {
        "client_id": settings.GITHUB_CLIENT_ID,
        "client_secret": settings.GITHUB_CLIENT_SECRET,
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
    if not grants(scopes, READ_ORG):
        raise ScopeMissing(READ_ORG)
    return OAuthToken(access_token=answer.access_token, token_type=answer.token_type or "bearer", scopes=scopes)
