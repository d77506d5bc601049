"""The product as a GitHub App (docs/architecture.md#the-github-app): the App's JWT, the installation
access tokens minted with it, the installations a user can reach, the App's user authorization, and
what the App reads with its JWT: its webhook's deliveries (and redelivers them), an installation.

An installation token is kept in this process until shortly before it expires, then minted again;
it is never logged, stored or put in an exception.

https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/about-authentication-with-a-github-app
"""

import functools
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from integrations.github import errors, oauth, schemas
from integrations.github.client import API_VERSION, GitHubClient, Response, new_session, next_page, send
from integrations.github.errors import AppCredentialsRejected, AppNotConfigured
from integrations.github.schemas import HookDelivery, Installation, InstallationToken, OAuthToken

logger = logging.getLogger(__name__)

# "Set this 60 seconds in the past to allow for clock drift"; "no more than 10 minutes into the future".
# https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
JWT_BACKDATE_SECONDS = 60
JWT_LIFETIME_SECONDS = 9 * 60
# Tokens last an hour: one within this of its end is minted again, so that no request, nor the next
# page of a run, goes out with a token about to expire.
RENEW_BEFORE_EXPIRY = timedelta(minutes=5)

_tokens: dict[tuple[str, int], InstallationToken] = {}
_locks: dict[tuple[str, int], threading.Lock] = {}
_locks_lock = threading.Lock()


def configured() -> bool:
    """Whether this server has a GitHub App: all five settings (config/settings.py refuses half of them)."""
    return all(
        (
            settings.GITHUB_APP_ID,
            settings.GITHUB_APP_SLUG,
            settings.GITHUB_APP_PRIVATE_KEY,
            settings.GITHUB_APP_CLIENT_ID,
            settings.GITHUB_APP_CLIENT_SECRET,
        )
    )


def _require_configured() -> None:
    if not configured():
        raise AppNotConfigured


def install_url(*, state: str) -> str:
    """The App's install page; GitHub hands ``state`` back to the setup URL. github.com serves it at
    /apps/{slug}/, GitHub Enterprise Server at /github-apps/{slug}/ (its /apps/… is a 404).

    https://docs.github.com/en/apps/using-github-apps/installing-your-own-github-app
    https://docs.github.com/en/enterprise-server@latest/apps/using-github-apps/installing-your-own-github-app
    """
    _require_configured()
    slug = quote(settings.GITHUB_APP_SLUG, safe="")
    folder = "apps" if urlsplit(settings.GITHUB_WEB_URL).hostname == "github.com" else "github-apps"
    return f"{settings.GITHUB_WEB_URL}/{folder}/{slug}/installations/new?{urlencode({'state': state})}"


def app_jwt(*, now: float | None = None) -> str:
    """The App's JSON Web Token (RS256), which authenticates the App itself, e.g. to mint tokens.
    ``iss`` is a string: PyJWT refuses a number there (docs/architecture.md#library-pitfalls).

    https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
    """
    _require_configured()
    now = int(time.time() if now is None else now)
    claims = {"iat": now - JWT_BACKDATE_SECONDS, "exp": now + JWT_LIFETIME_SECONDS, "iss": str(settings.GITHUB_APP_ID)}
    return jwt.encode(claims, _signing_key(settings.GITHUB_APP_PRIVATE_KEY), algorithm="RS256")


@functools.lru_cache(maxsize=2)
def _signing_key(pem: str) -> RSAPrivateKey:
    # Loading the PEM checks the RSA key, some 40 ms: once per key, not once per JWT (a healing pass
    # signs one per redelivery).
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise AppNotConfigured
    return key


def installation_token(installation_id: int) -> str:
    """A token of the installation, minted with the App's JWT and kept until RENEW_BEFORE_EXPIRY
    before it expires. Safe from several threads: one mints, the others wait and take its token.

    https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app
    """
    key = (settings.GITHUB_API_URL, int(installation_id))
    with _lock_for(key):
        token = _tokens.get(key)
        if token is None or token.expires_at - RENEW_BEFORE_EXPIRY <= datetime.now(UTC):
            token = _tokens[key] = _mint(int(installation_id))
        return token.token


def forget_installation_token(installation_id: int) -> None:
    """Drop the installation's kept token (GitHub no longer takes it: the App was uninstalled, or
    GitHub revoked the token): the next installation_token() mints a new one."""
    with _locks_lock:
        _tokens.pop((settings.GITHUB_API_URL, int(installation_id)), None)


def revoke_installation_token(installation_id: int) -> bool:
    """Revoke at GitHub the installation's token this process keeps, and drop it: the connection that
    used it was replaced or removed, and the token must not outlive it for its hour. False when none
    was kept (nothing to revoke); a 401 means GitHub had already revoked it.

    https://docs.github.com/en/rest/apps/installations#revoke-an-installation-access-token
    """
    with _locks_lock:
        kept = _tokens.pop((settings.GITHUB_API_URL, int(installation_id)), None)
    if kept is None or kept.expires_at <= datetime.now(UTC):
        return False
    with GitHubClient(kept.token, retries=1, installation=True) as client:
        client.revoke_own_token()
    return True


def forget_installation_tokens() -> None:
    with _locks_lock:
        _tokens.clear()


def _lock_for(key) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(key, threading.Lock())


def _mint(installation_id: int) -> InstallationToken:
    """POST /app/installations/{installation_id}/access_tokens, as the App.

    https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
    """
    url = f"{settings.GITHUB_API_URL}/app/installations/{installation_id}/access_tokens"
    with new_session() as session:
        response, _ = send(session, "POST", url, timeout=(10, 10), headers=_app_headers())
    error = errors.for_installation_token_status(
        response.status, response.headers, response.body, web_url=settings.GITHUB_WEB_URL
    )
    if error is not None:
        logger.warning("Minting a token of installation %s failed: %s", installation_id, type(error).__name__)
        raise error
    token = schemas.parse(InstallationToken, response.body, "the installation token")
    logger.info("Minted a token of installation %s, expiring at %s", installation_id, token.expires_at)
    return token


# The App itself, with its JWT: its webhook's deliveries and its installations.

# GitHub's largest page of deliveries.
HOOK_DELIVERIES_PAGE_SIZE = 100


def hook_deliveries(*, since: datetime) -> Iterator[HookDelivery]:
    """Every attempt at delivering the App's webhooks newer than ``since``, newest first, page after
    page by the cursor of the Link header; older pages are not asked for. GitHub never redelivers a
    failed delivery by itself: these say which to ask for again (``succeeded``, grouped by ``guid``).

    https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook
    https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries
    """
    url: str | None = f"{settings.GITHUB_API_URL}/app/hook/deliveries"
    params: dict | None = {"per_page": HOOK_DELIVERIES_PAGE_SIZE}
    seen: set[str] = set()
    with new_session() as session:
        while url:
            response = _as_app(session, "GET", url, params=params)
            for delivery in schemas.parse(schemas.HOOK_DELIVERIES, response.body, "the webhook deliveries"):
                if delivery.delivered_at <= since:
                    return
                yield delivery
            url, params = next_page(response, seen, api_url=settings.GITHUB_API_URL), None


def redeliver(delivery_id: int) -> None:
    """Ask GitHub to send a delivery again: the same body under the same GUID, as a new attempt.

    https://docs.github.com/en/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook
    """
    url = f"{settings.GITHUB_API_URL}/app/hook/deliveries/{int(delivery_id)}/attempts"
    # Not resent on a 5xx by itself: the caller asks again on its next pass if it still failed.
    with new_session(resend=False) as session:
        _as_app(session, "POST", url)


def installation(installation_id: int) -> Installation | None:
    """The App's installation as GitHub has it now (``suspended_at`` set while suspended); None once
    it is uninstalled (404): what a lost installation webhook would have said.

    https://docs.github.com/en/rest/apps/apps#get-an-installation-for-the-authenticated-app
    """
    url = f"{settings.GITHUB_API_URL}/app/installations/{int(installation_id)}"
    with new_session() as session:
        response = _as_app(session, "GET", url, allowed=(404,))
    return None if response.status == 404 else schemas.installation(response.body)


def _as_app(session, method: str, url: str, *, params=None, allowed=()) -> Response:
    """A request as the App, with a fresh JWT; an answer other than a success (or an ``allowed``
    status) raised as its error, the JWT refused as the App's credentials."""
    response, _ = send(session, method, url, timeout=(10, 10), headers=_app_headers(), params=params)
    if response.status in allowed:
        return response
    if response.status == 401:
        raise AppCredentialsRejected()
    error = errors.for_status(response.status, response.headers, response.body, web_url=settings.GITHUB_WEB_URL)
    if error is not None:
        logger.warning("GitHub refused the App's %s %s: %s", method, urlsplit(url).path, type(error).__name__)
        raise error
    return response


@sensitive_variables("app_token")
def _app_headers() -> dict[str, str]:
    app_token = app_jwt()
    return {
        "Authorization": f"Bearer {app_token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
    }


@sensitive_variables("user_token")
def user_installations(user_token: str) -> list[Installation]:
    """The App's installations the user of ``user_token`` (from the App's user authorization) can
    reach: only these may be connected by them, whatever installation_id a URL names."""
    with GitHubClient(user_token, retries=1) as client:
        return client.user_installations()


@sensitive_variables("user_token")
def owns_organization(user_token: str, org_login: str) -> bool:
    """Whether the user of ``user_token`` is an owner of the organization: an active membership
    with the role admin. Only an owner may bind the organization's installation to a team, whose
    members would then read what its token reads (concealed members, verified-domain emails)."""
    with GitHubClient(user_token, retries=1) as client:
        membership = client.own_membership(org_login)
    return membership is not None and membership.member is not None and membership.member.role == "admin"


def authorize_url(*, state: str, redirect_uri: str) -> str:
    """The App's user authorization: GitHub's OAuth web flow with the App's client id.

    https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app#using-the-web-application-flow-to-generate-a-user-access-token
    """
    _require_configured()
    return oauth.authorize_url(
        state=state, redirect_uri=redirect_uri, scopes=(), client_id=settings.GITHUB_APP_CLIENT_ID
    )


def exchange_code(code: str, *, redirect_uri: str) -> OAuthToken:
    """The user access token for the code GitHub handed to the setup URL. It has no scopes: what it
    may do is the App's permissions and the user's own."""
    _require_configured()
    return oauth.exchange_code(
        code,
        redirect_uri=redirect_uri,
        client_id=settings.GITHUB_APP_CLIENT_ID,
        client_secret=settings.GITHUB_APP_CLIENT_SECRET,
        required_scope=None,
    )
