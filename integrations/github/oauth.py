"""GitHub's OAuth web flow: send the user to authorize the app, then exchange the code for a token.

https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#web-application-flow
"""

from collections.abc import Sequence
from urllib.parse import urlencode

import requests
from django.conf import settings

from integrations.github import answers, transport
from integrations.github.errors import GitHubUnavailable, MalformedResponse, OAuthError, ScopeMissing
from integrations.github.records import OAuthToken
from integrations.github.scopes import READ_ORG, grants, scope_list


def authorize_url(
    *, state: str, redirect_uri: str, scopes: Sequence[str] = (READ_ORG,), web_url=None, client_id=None
) -> str:
    """Where to send the user to authorize the OAuth App.

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#1-request-a-users-github-identity
    """
    web_url = (web_url or settings.GITHUB_WEB_URL).rstrip("/")
    query = urlencode(
        {
            "client_id": client_id or settings.GITHUB_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
        }
    )
    return f"{web_url}/login/oauth/authorize?{query}"


def exchange_code(
    code: str,
    *,
    redirect_uri: str,
    required_scopes: Sequence[str] = (READ_ORG,),
    web_url=None,
    client_id=None,
    client_secret=None,
    timeout: float = 10.0,
    session: requests.Session | None = None,
) -> OAuthToken:
    """Exchange the code GitHub handed to the callback for an access token, and check that the
    user granted the scopes the app needs (users may grant fewer than asked).

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#2-users-are-redirected-back-to-your-site-by-github
    https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps#requested-scopes-and-granted-scopes
    """
    web_url = (web_url or settings.GITHUB_WEB_URL).rstrip("/")
    # A code works once: only a request that never reached GitHub (a failed connect) is sent again.
    own_session = session is None
    session = session or transport.new_session(retries=3, backoff_factor=0.5, resend=False)
    try:
        response, _ = transport.send(
            session,
            "POST",
            f"{web_url}/login/oauth/access_token",
            timeout=(timeout, timeout),
            headers={"Accept": "application/json"},
            data={
                "client_id": client_id or settings.GITHUB_CLIENT_ID,
                "client_secret": client_secret or settings.GITHUB_CLIENT_SECRET,
                "code": code,
                "redirect_uri": redirect_uri,
            },
        )
    finally:
        if own_session:
            session.close()
    if response.status >= 500:
        raise GitHubUnavailable(f"HTTP {response.status}")
    if response.status != 200:
        raise OAuthError(f"http_{response.status}")
    # GitHub answers a bad or expired code with 200 and an "error" field.
    answer = answers.parse(answers.TokenAnswer, response.body, "the access token answer")
    if answer.error is not None:
        raise OAuthError(answer.error)
    if not answer.access_token:
        raise MalformedResponse("the access token answer: access_token: missing")
    token = OAuthToken(
        access_token=answer.access_token, token_type=answer.token_type or "bearer", scopes=scope_list(answer.scope)
    )
    for scope in required_scopes:
        if not grants(token.scopes, scope):
            raise ScopeMissing(scope)
    return token
