"""GitHub's refusals mapped to the exceptions of ``errors.py``: HTTP error statuses, and the errors a
GraphQL answer lists under a 200.

Each exception says what a user can do about it; text from GitHub goes into one only once checked
to be harmless.
"""

import re
from urllib.parse import quote, urlsplit

from integrations.github import answers, rate_limits, scopes
from integrations.github.errors import (
    SAML_SSO_DOC,
    AccessRestricted,
    BadCredentials,
    GitHubError,
    GitHubUnavailable,
    OrganizationNotFound,
    ScopeMissing,
    SSORequired,
)
from integrations.github.records import is_web_url
from integrations.github.transport import Response


class ResourceLimitsExceeded(Exception):
    """GitHub stopped the query for the resources it used: a smaller page may go through."""


def check_status(response: Response, *, web_url: str, org_login: str | None = None):
    """Map an HTTP error status to the exception a user can act on.

    https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
    """
    status, headers = response.status, response.headers
    if status < 300:
        return
    if status == 401:
        raise BadCredentials
    if status in (403, 429):
        message = answers.error_message(response.body)
        if (rate_limited := rate_limits.rate_limited(headers, message, force=status == 429)) is not None:
            raise rate_limited
        if _sso_required(headers.get("x-github-sso")) or "saml enforcement" in message.lower():
            raise SSORequired(sso_url(headers.get("x-github-sso"), org_login, web_url=web_url))
        if "oauth app access restrictions" in message.lower():
            raise AccessRestricted(org_login or "")
        if (scope := scopes.missing_accepted(headers)) is not None:
            raise ScopeMissing(scope)
        raise GitHubError(
            "GitHub refused access (HTTP 403). Reconnect GitHub with an account that can read the "
            "organization's members."
        )
    if status == 404 and org_login is not None:
        raise OrganizationNotFound(org_login)
    if status >= 500:
        raise GitHubUnavailable(f"HTTP {status}")
    raise GitHubError(f"GitHub answered HTTP {status}, which this app did not expect. Try again later.")


def check_graphql_errors(
    errors: list[answers.GraphQLError], headers, login: str, *, web_url: str, reset_at
) -> set[int]:
    """Raise for the errors GitHub reported; return the member edges an error made unusable.
    ``reset_at`` is when the rate limit window resets, if an earlier answer said.

    GraphQL answers 200 with an ``errors`` list, each with a ``type``:
    https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api#exceeding-the-rate-limit
    https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api#other-resource-limits
    """
    kinds = {}
    broken_edges = set()
    for error in errors:
        kind = _graphql_error_kind(error)
        if kind == "edge":
            broken_edges.add(error.path[3])
        kinds.setdefault(kind, error)
    if "rate_limited" in kinds:
        raise rate_limits.rate_limited(headers, kinds["rate_limited"].message, force=True, fallback=reset_at)
    if "resource_limits" in kinds:
        raise ResourceLimitsExceeded
    if "scopes" in kinds:
        raise ScopeMissing(scopes.named_in_message(kinds["scopes"].message))
    scopes.require(headers, scopes.READ_ORG)
    if "sso" in kinds:
        raise SSORequired(sso_url(headers.get("x-github-sso"), login, web_url=web_url))
    if "restricted" in kinds:
        raise AccessRestricted(login)
    if "not_found" in kinds:
        raise OrganizationNotFound(login)
    if "unavailable" in kinds:
        raise GitHubUnavailable("it could not finish the query")
    if "other" in kinds:
        kind = kinds["other"].type or ""
        code = kind if re.fullmatch(r"[A-Z_]{1,40}", kind) else "unknown"
        raise GitHubError(
            f"GitHub refused the member query ({code}). Try again later, and report it if it keeps happening."
        )
    return broken_edges


def sso_url(header: str | None, login: str | None, *, web_url: str) -> str:
    """The URL to authorize the token at, from ``X-GitHub-SSO: required; url=…``, if it points to
    GitHub itself; otherwise the organization's single sign-on page, or GitHub's documentation.

    https://docs.github.com/en/rest/overview/other-authentication-methods#authenticating-for-saml-sso
    """
    for part in (header or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name == "url" and is_web_url(value) and urlsplit(value).netloc == urlsplit(web_url).netloc:
            return value
    if login:
        return f"{web_url}/orgs/{quote(login, safe='')}/sso"
    return SAML_SSO_DOC


def _sso_required(header: str | None) -> bool:
    # The same header says "partial-results; organizations=…" on lists that merely leave some out.
    return (header or "").split(";")[0].strip().lower() == "required"


def _graphql_error_kind(error: answers.GraphQLError) -> str:
    kind = (error.type or "").upper()
    message = error.message.lower()
    extensions = error.extensions or answers.ErrorExtensions()
    path = error.path or []
    # RATE_LIMITED for years; since late 2025 also RATE_LIMIT with code graphql_rate_limit.
    if kind in ("RATE_LIMITED", "RATE_LIMIT") or "graphql_rate_limit" in (error.code, extensions.code):
        return "rate_limited"
    if kind == "RESOURCE_LIMITS_EXCEEDED" or "resource limits" in message:
        return "resource_limits"
    if kind == "INSUFFICIENT_SCOPES":
        return "scopes"
    # An error inside one member's record (organization.membersWithRole.edges.N…) spoils that record only.
    if path[:3] == ["organization", "membersWithRole", "edges"] and len(path) > 3 and type(path[3]) is int:
        return "edge"
    if extensions.saml_failure or "saml enforcement" in message:
        return "sso"
    if "oauth app access restrictions" in message:
        return "restricted"
    if kind == "NOT_FOUND":
        return "not_found"
    if "rate limit" in message:
        return "rate_limited"
    # "Something went wrong while executing your query. This may be the result of a timeout, …"
    if "something went wrong" in message or "timeout" in message:
        return "unavailable"
    return "other"
