"""What can go wrong when talking to GitHub, and how an answer maps to it: HTTP refusals, the errors
a GraphQL answer lists under a 200, rate limits and OAuth scopes. Pure functions of headers and
bodies, so that each rule is tested without a server.

Each exception's ``str()`` is the message the UI shows: what happened and what to do. No message
ever holds a token, and text from GitHub goes into one only once checked to be harmless (a URL on
GitHub's own host, a scope name, an error code).
"""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from integrations.words import ErrorKind

APPROVE_OAUTH_APP_DOC = (
    "https://docs.github.com/en/organizations/managing-oauth-access-to-your-organizations-data/"
    "approving-oauth-apps-for-your-organization"
)
SAML_SSO_DOC = (
    "https://docs.github.com/en/authentication/authenticating-with-single-sign-on/"
    "authorizing-a-personal-access-token-for-use-with-single-sign-on"
)
READ_ORG = "read:org"

# "Otherwise, wait for at least one minute before retrying. If your request continues to fail due to
# a secondary rate limit, wait for an exponentially increasing amount of time between retries."
# https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#rate-limit-errors
DEFAULT_WAIT = timedelta(minutes=1)
MAX_SECONDARY_WAIT = timedelta(minutes=30)
# Primary windows are an hour long: a reset further away than that is not to be believed.
MAX_WAIT = timedelta(hours=1)

_CODE = re.compile(r"[a-z0-9_]{1,64}")
_SCOPE = re.compile(r"[a-z_]{1,40}(:[a-z_]{1,40})?")
# A scope grants the scopes listed with it: asking for read:org from a user who already granted
# admin:org yields a token with admin:org.
# https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps#normalized-scopes
_IMPLIED_SCOPES = {
    "admin:org": ("write:org", "read:org"),
    "write:org": ("read:org",),
    "user": ("read:user", "user:email", "user:follow"),
}


class GitHubError(Exception):
    """``transient``: the same request may succeed later by itself. ``kind``: who can fix it (ErrorKind)."""

    transient = False
    kind = ErrorKind.GITHUB
    message = "GitHub answered in a way this app did not expect. Try again later."

    def __init__(self, message: str | None = None):
        self.message = message or self.message
        super().__init__(self.message)


class BadCredentials(GitHubError):
    kind = ErrorKind.CREDENTIALS
    message = (
        "GitHub no longer accepts the connection's access token: it was revoked or has expired. "
        "Reconnect GitHub to resume syncing."
    )


class SSORequired(GitHubError):
    kind = ErrorKind.ORGANIZATION

    def __init__(self, url: str):
        self.url = url
        super().__init__(
            "The organization uses SAML single sign-on and the GitHub token is not authorized for it. "
            f"Authorize it for the organization at {url}, then sync again."
        )


class AccessRestricted(GitHubError):
    kind = ErrorKind.ORGANIZATION

    def __init__(self, login: str):
        super().__init__(
            f"The organization {login} has OAuth App access restrictions and has not approved this app. "
            f"An organization owner must approve it ({APPROVE_OAUTH_APP_DOC}), then sync again."
        )


class OrganizationNotFound(GitHubError):
    kind = ErrorKind.ORGANIZATION

    def __init__(self, login: str):
        super().__init__(
            f"GitHub has no organization {login} that the connected account can see: it was renamed or "
            "deleted, or the account lost access to it. Reconnect GitHub with an account that belongs to "
            "the organization."
        )


class ViewerNotMember(GitHubError):
    """GitHub shows an account outside the organization only its public members, with no error:
    reading on would deactivate every concealed member."""

    kind = ErrorKind.ORGANIZATION

    def __init__(self, login: str):
        super().__init__(
            f"The GitHub account connected to this team is not a member of {login}, so GitHub shows it only "
            "the organization's public members. Nothing was changed. Reconnect GitHub with an account that "
            "belongs to the organization."
        )


class ScopeMissing(GitHubError):
    kind = ErrorKind.CREDENTIALS

    def __init__(self, scope: str = READ_ORG):
        self.scope = scope if _SCOPE.fullmatch(scope) else READ_ORG
        super().__init__(
            f"GitHub did not grant the {self.scope} permission this app needs to read the organization's "
            "members. Reconnect GitHub and grant it."
        )


class RateLimited(GitHubError):
    """``secondary``: a secondary limit that named no time, which the caller waits out longer each time."""

    transient = True

    def __init__(self, reset_at: datetime, *, secondary: bool = False):
        self.reset_at = reset_at.astimezone(UTC)
        self.secondary = secondary
        super().__init__(
            f"GitHub rate limit reached; waiting until {self.reset_at:%H:%M} UTC, then the sync resumes by itself."
        )


class GitHubUnavailable(GitHubError):
    transient = True

    def __init__(self, reason: str = "it did not answer"):
        super().__init__(f"GitHub is unavailable ({reason}). The sync will be retried; nothing to do for now.")


class AccessRefused(GitHubError):
    """A 403 that names no reason GitHub documents: the account may not read the members."""

    kind = ErrorKind.CREDENTIALS
    message = (
        "GitHub refused access (HTTP 403). Reconnect GitHub with an account that can read the organization's members."
    )


class MalformedResponse(GitHubError):
    def __init__(self, detail: str):
        super().__init__(
            f"GitHub sent an answer this app could not use ({detail}). Nothing was changed; "
            "try again later, and report it if it keeps happening."
        )


class OAuthError(GitHubError):
    kind = ErrorKind.CREDENTIALS
    _MESSAGES = {
        "bad_verification_code": "The GitHub authorization code is invalid or has expired. Connect GitHub again.",
        "incorrect_client_credentials": (
            "GitHub rejected this app's OAuth credentials. An operator must check GITHUB_CLIENT_ID and "
            "GITHUB_CLIENT_SECRET."
        ),
        "redirect_uri_mismatch": (
            "GitHub rejected the callback URL: it must match the OAuth App's registered callback URL. "
            "An operator must fix the OAuth App's settings."
        ),
        "access_denied": "GitHub access was not granted. Connect GitHub again and authorize the app.",
    }

    def __init__(self, code: str):
        self.code = code if _CODE.fullmatch(code) else "unknown_error"
        default = f"GitHub could not complete the sign-in ({self.code}). Connect GitHub again."
        super().__init__(self._MESSAGES.get(self.code, default))


# The GitHub App: https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app


class AppNotConfigured(GitHubError):
    kind = ErrorKind.INSTALLATION
    message = (
        "The GitHub App is not configured on this server. An operator must set GITHUB_APP_ID, GITHUB_APP_SLUG, "
        "GITHUB_APP_PRIVATE_KEY (or GITHUB_APP_PRIVATE_KEY_FILE), GITHUB_APP_CLIENT_ID and GITHUB_APP_CLIENT_SECRET."
    )


class AppCredentialsRejected(GitHubError):
    kind = ErrorKind.INSTALLATION
    message = (
        "GitHub rejected the GitHub App's credentials. An operator must check GITHUB_APP_ID and the App's "
        "private key (GITHUB_APP_PRIVATE_KEY), and that the server's clock is right."
    )


class InstallationNotFound(GitHubError):
    kind = ErrorKind.INSTALLATION
    message = (
        "The GitHub App is no longer installed on the organization (or never was). "
        "Install the GitHub App again to resume syncing."
    )


class InstallationSuspended(GitHubError):
    kind = ErrorKind.SUSPENDED
    message = (
        "The App's installation is suspended on GitHub, so it cannot read the organization. "
        "An organization owner must unsuspend it in the organization's settings (Installed GitHub Apps)."
    )


class AppPermissionMissing(GitHubError):
    """403 "Resource not accessible by integration": the installation lacks the Members permission,
    or an owner has not accepted the permissions the App asked for since."""

    kind = ErrorKind.PERMISSIONS
    message = (
        "GitHub refused the GitHub App access to the organization's members (Resource not accessible by "
        "integration): the App lacks the Members permission, or an organization owner has not accepted its new "
        "permissions. An owner accepts them in the organization's settings (GitHub Apps); syncing resumes by itself."
    )


# GitHub's words for a GitHub App's token that its installation's permissions do not cover, and for an
# installation an owner suspended; a refusal says so on any call, not only when a token is minted.
# https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api#resource-not-accessible
NOT_ACCESSIBLE_BY_INTEGRATION = "resource not accessible by integration"
INSTALLATION_SUSPENDED = "this installation has been suspended"


class QueryTooLarge(Exception):
    """GitHub stopped the query for the resources or the time it took: a smaller page may go through."""


# HTTP refusals: https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = ""


def error_message(body: bytes) -> str:
    try:
        return _ErrorBody.model_validate_json(body).message
    except ValidationError:
        return ""


def for_installation_token_status(status: int, headers, body: bytes, *, web_url: str) -> GitHubError | None:
    """The error an answer to minting an installation token stands for: the App's JWT refused, the
    installation gone or suspended; else as any answer.

    https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
    """
    if status == 401:
        return AppCredentialsRejected()
    if status == 404:
        return InstallationNotFound()
    if status == 403 and rate_limited(headers, error_message(body)) is None:
        return InstallationSuspended()
    return for_status(status, headers, body, web_url=web_url)


def for_status(status: int, headers, body: bytes, *, web_url: str, org_login: str | None = None) -> GitHubError | None:
    """The error an HTTP answer stands for, or None for a success."""
    if status < 300:
        return None
    if status == 401:
        return BadCredentials()
    if status in (403, 429):
        message = error_message(body).lower()
        if (limited := rate_limited(headers, message, force=status == 429)) is not None:
            return limited
        if _sso_header_kind(headers) == "required" or "saml enforcement" in message:
            return SSORequired(sso_url(headers.get("x-github-sso"), org_login, web_url=web_url))
        if "oauth app access restrictions" in message:
            return AccessRestricted(org_login or "the organization")
        # Before the scopes: an App's token has none, so every accepted scope looks missing.
        if NOT_ACCESSIBLE_BY_INTEGRATION in message:
            return AppPermissionMissing()
        if INSTALLATION_SUSPENDED in message:
            return InstallationSuspended()
        if (scope := missing_accepted_scope(headers)) is not None:
            return ScopeMissing(scope)
        return AccessRefused()
    if status == 404 and org_login is not None:
        return OrganizationNotFound(org_login)
    # "Validation failed, or the endpoint has been spammed": the client sends nothing a read could
    # fail to validate, so it is GitHub asking to be asked again later.
    if status == 422:
        return GitHubUnavailable("it asked to be asked again later, HTTP 422")
    if status >= 500:
        return GitHubUnavailable(f"HTTP {status}")
    return GitHubError(f"GitHub answered HTTP {status}, which this app did not expect. Try again later.")


def sso_url(header: str | None, login: str | None, *, web_url: str) -> str:
    """Where to authorize the token: the URL of ``X-GitHub-SSO: required; url=…`` if it is on GitHub
    itself, else the organization's single sign-on page, else GitHub's documentation.

    https://docs.github.com/en/rest/authentication/authenticating-to-the-rest-api#authenticating-for-saml-sso
    """
    for part in (header or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name == "url" and _is_url_on(value, web_url):
            return value
    return organization_sso_url(login, web_url=web_url) if login else SAML_SSO_DOC


def organization_sso_url(login: str, *, web_url: str) -> str:
    return f"{web_url}/orgs/{quote(login, safe='')}/sso"


def sso_hidden_organizations(headers) -> list[int]:
    """The ids a list left out for want of a SAML session: ``X-GitHub-SSO: partial-results; organizations=1,2``."""
    if _sso_header_kind(headers) != "partial-results":
        return []
    for part in headers.get("x-github-sso", "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name == "organizations":
            return [int(item) for item in value.split(",") if item.strip().isdigit() and len(item.strip()) < 19]
    return []


def _sso_header_kind(headers) -> str:
    return headers.get("x-github-sso", "").split(";")[0].strip().lower()


def _is_url_on(value: str, web_url: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    web = urlsplit(web_url)
    return (
        (parts.scheme, parts.netloc) == (web.scheme, web.netloc)
        and len(value) <= 2048
        and not re.search(r"[\s\x00-\x1f\x7f]", value)
    )


# GraphQL errors: a 200 with an ``errors`` list.
# https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api


def graphql_error_kind(error_type: str | None, message: str, path: list, extensions: dict) -> str:
    """What one entry of a GraphQL ``errors`` list means for the member query."""
    kind, message = (error_type or "").upper(), message.lower()
    if path and path[-1] == "organizationVerifiedDomainEmails":
        return "verified_emails"
    # RATE_LIMITED for years; since late 2025 also RATE_LIMIT with code graphql_rate_limit.
    if kind in ("RATE_LIMITED", "RATE_LIMIT") or extensions.get("code") == "graphql_rate_limit":
        return "rate_limited"
    if kind == "RESOURCE_LIMITS_EXCEEDED" or "resource limits" in message:
        return "too_large"
    if kind == "INSUFFICIENT_SCOPES":
        return "scopes"
    # An error inside one member's record (organization.membersWithRole.edges.N…) spoils that record only.
    if path[:3] == ["organization", "membersWithRole", "edges"] and len(path) > 3 and type(path[3]) is int:
        return "edge"
    if extensions.get("saml_failure") is True or "saml enforcement" in message:
        return "sso"
    if "oauth app access restrictions" in message:
        return "restricted"
    if NOT_ACCESSIBLE_BY_INTEGRATION in message:
        return "permissions"
    if kind == "NOT_FOUND":
        return "not_found"
    if "rate limit" in message:
        return "rate_limited"
    # "Something went wrong while executing your query. This may be the result of a timeout, …"
    if "something went wrong" in message or "timeout" in message:
        return "too_large"
    return "other"


def for_graphql_kind(kind: str, *, error_type: str | None, message: str, headers, login: str, web_url: str, reset_at):
    """The exception for a kind of GraphQL error that sinks the whole answer."""
    if kind == "rate_limited":
        return rate_limited(headers, message, force=True, fallback=reset_at)
    if kind == "too_large":
        return QueryTooLarge()
    if kind == "scopes":
        return ScopeMissing(scope_named_in(message))
    if kind == "sso":
        return SSORequired(sso_url(headers.get("x-github-sso"), login, web_url=web_url))
    if kind == "restricted":
        return AccessRestricted(login)
    if kind == "permissions":
        return AppPermissionMissing()
    if kind == "not_found":
        return OrganizationNotFound(login)
    code = error_type if error_type and re.fullmatch(r"[A-Z_]{1,40}", error_type) else "unknown"
    return GitHubError(
        f"GitHub refused the member query ({code}). Try again later, and report it if it keeps happening."
    )


# Rate limits: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api


def rate_limited(headers, message: str, *, force=False, fallback: datetime | None = None) -> RateLimited | None:
    """The wait GitHub asks for, if this answer is a rate limit (or, with ``force``, in any case).
    ``fallback`` is when the primary window resets, if known from an earlier answer.

    https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
    https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api
    """
    now = datetime.now(UTC)
    if (retry_after := int_header(headers, "retry-after")) is not None:
        return RateLimited(now + min(timedelta(seconds=max(retry_after, 1)), MAX_WAIT))
    remaining = int_header(headers, "x-ratelimit-remaining")
    if remaining == 0:
        return RateLimited(_reset_at(int_header(headers, "x-ratelimit-reset"), now))
    message = message.lower()
    if not (force or "rate limit" in message or "abuse detection" in message):
        return None
    # Only a spent primary budget lasts until the window's reset. With requests left, or without
    # headers and without GitHub's words for the primary limit, it is a secondary limit: waiting for
    # the reset instead could park the sync for most of an hour, and GitHub asks for a minute, then
    # longer each time it comes back.
    primary_named = "api rate limit" in message and "secondary" not in message
    if remaining is None and primary_named and fallback is not None and now < fallback <= now + MAX_WAIT:
        return RateLimited(fallback)
    return RateLimited(now + DEFAULT_WAIT, secondary=True)


def secondary_wait(previous_waits: int) -> timedelta:
    """A secondary rate limit's wait when it named none: a minute, doubling each time it comes back, capped."""
    return min(DEFAULT_WAIT * 2 ** min(previous_waits, 10), MAX_SECONDARY_WAIT)


def int_header(headers, name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else None


def _reset_at(epoch: int | None, now: datetime) -> datetime:
    try:
        reset = datetime.fromtimestamp(epoch, UTC) if epoch is not None else now + DEFAULT_WAIT
    except (OverflowError, OSError, ValueError):
        return now + DEFAULT_WAIT
    return min(max(reset, now + timedelta(seconds=1)), now + MAX_WAIT)


# OAuth scopes: https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps


def scope_list(value: str) -> list[str]:
    """The scopes of a comma-separated list, as X-OAuth-Scopes and the token answer give them."""
    return [scope.strip() for scope in value.split(",") if scope.strip()]


def grants(granted, scope: str) -> bool:
    return any(scope == held or scope in _IMPLIED_SCOPES.get(held, ()) for held in granted)


def require_scope(headers, scope: str = READ_ORG) -> None:
    """Without read:org GitHub quietly leaves private members out. Only OAuth and classic tokens
    send X-OAuth-Scopes; others are not checked here."""
    granted = headers.get("x-oauth-scopes")
    if granted is not None and not grants(scope_list(granted), scope):
        raise ScopeMissing(scope)


def missing_accepted_scope(headers) -> str | None:
    """The scope to ask for when X-Accepted-OAuth-Scopes names scopes the token has none of."""
    accepted = scope_list(headers.get("x-accepted-oauth-scopes", ""))
    granted = headers.get("x-oauth-scopes")
    if not accepted or granted is None or any(grants(scope_list(granted), scope) for scope in accepted):
        return None
    return READ_ORG if READ_ORG in accepted else accepted[0]


def scope_named_in(message: str) -> str:
    """INSUFFICIENT_SCOPES messages name the scopes the field needs: "… requires one of the
    following scopes: ['read:org'], …"."""
    match = re.search(r"following scopes: \[([^\]]*)\]", message)
    needed = re.findall(r"'([a-z_:]+)'", match.group(1)) if match else []
    return READ_ORG if READ_ORG in needed or not needed else needed[0]
