"""How GitHub's answers map to errors, rate limits and scopes: pure functions of headers and bodies."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from requests.structures import CaseInsensitiveDict

from integrations.github import errors
from integrations.github.errors import (
    AccessRefused,
    AccessRestricted,
    AppCredentialsRejected,
    AppPermissionMissing,
    BadCredentials,
    GitHubError,
    GitHubUnavailable,
    InstallationNotFound,
    InstallationSuspended,
    MalformedResponse,
    OAuthError,
    OrganizationNotFound,
    RateLimited,
    ScopeMissing,
    SSORequired,
    ViewerNotMember,
)
from integrations.words import ErrorKind

WEB = "https://github.com"
RESTRICTED = (
    "Although you appear to have the correct authorization credentials, the `acme` organization has enabled "
    "OAuth App access restrictions, meaning that data access to third-parties is limited."
)


def refusal(status, message="", **headers):
    body = json.dumps({"message": message}).encode()
    return errors.for_status(status, CaseInsensitiveDict(headers), body, web_url=WEB, org_login="acme")


def seconds_from_now(moment):
    return (moment - datetime.now(UTC)).total_seconds()


def test_a_success_is_no_error():
    assert refusal(200) is None


def test_401_means_the_token_was_revoked():
    assert isinstance(refusal(401, "Bad credentials"), BadCredentials)


def test_403_with_no_requests_left_waits_for_the_reset():
    reset = int((datetime.now(UTC) + timedelta(minutes=10)).timestamp())

    error = refusal(403, "API rate limit exceeded", **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})

    assert isinstance(error, RateLimited)
    assert 590 <= seconds_from_now(error.reset_at) <= 600
    assert not error.secondary


def test_a_reset_further_than_an_hour_is_not_believed():
    reset = int((datetime.now(UTC) + timedelta(days=3)).timestamp())

    error = refusal(403, **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})

    assert seconds_from_now(error.reset_at) <= 3600


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_honours_retry_after(status):
    error = refusal(status, "You have exceeded a secondary rate limit.", **{"Retry-After": "30"})

    assert isinstance(error, RateLimited)
    assert 28 <= seconds_from_now(error.reset_at) <= 30


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_without_headers_waits_a_minute_and_says_it_is_secondary(status):
    error = refusal(status, "You have exceeded a secondary rate limit. Please wait a few minutes.")

    assert isinstance(error, RateLimited)
    assert error.secondary
    assert 58 <= seconds_from_now(error.reset_at) <= 60


def test_a_429_with_requests_left_and_no_retry_after_is_a_secondary_limit():
    reset = int((datetime.now(UTC) + timedelta(minutes=50)).timestamp())

    error = refusal(429, "", **{"X-RateLimit-Remaining": "4000", "X-RateLimit-Reset": str(reset)})

    assert isinstance(error, RateLimited)
    assert error.secondary
    assert 58 <= seconds_from_now(error.reset_at) <= 60


def test_a_repeated_secondary_rate_limit_waits_longer_each_time_up_to_a_cap():
    waits = [errors.secondary_wait(previous).total_seconds() / 60 for previous in range(8)]

    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


def test_403_with_sso_required_gives_githubs_authorization_url():
    url = "https://github.com/orgs/acme/sso?authorization_request=abc"

    error = refusal(403, "Resource protected by SAML enforcement.", **{"X-GitHub-SSO": f"required; url={url}"})

    assert isinstance(error, SSORequired)
    assert error.url == url
    assert str(error).endswith(f"Authorize it for the organization at {url}, then sync again.")


@pytest.mark.parametrize(
    "header",
    [
        "required; url=https://evil.example/orgs/acme/sso",
        "required; url=http://github.com/orgs/acme/sso",
        "required; url=http://[",
        "required; url=https://github.com/a b",
        "required",
    ],
)
def test_an_sso_url_away_from_github_is_replaced_by_the_organizations_sso_page(header):
    error = refusal(403, **{"X-GitHub-SSO": header})

    assert error.url == "https://github.com/orgs/acme/sso"


def test_403_for_oauth_app_access_restrictions_asks_an_owner_to_approve_the_app():
    error = refusal(403, RESTRICTED)

    assert isinstance(error, AccessRestricted)
    assert str(error).startswith("The organization acme has OAuth App access restrictions")


def test_403_naming_accepted_scopes_the_token_lacks_asks_for_the_scope():
    error = refusal(403, "Forbidden", **{"X-Accepted-OAuth-Scopes": "read:org, admin:org", "X-OAuth-Scopes": "repo"})

    assert isinstance(error, ScopeMissing)
    assert error.scope == "read:org"


def test_an_unexplained_403_asks_for_an_account_that_can_read_the_members():
    error = refusal(403, "Forbidden")

    assert type(error) is AccessRefused
    assert error.kind == ErrorKind.CREDENTIALS
    assert "HTTP 403" in str(error)


def test_403_resource_not_accessible_by_integration_asks_an_owner_to_grant_or_accept_the_members_permission():
    error = refusal(
        403, "Resource not accessible by integration", **{"X-OAuth-Scopes": "", "X-Accepted-OAuth-Scopes": "read:org"}
    )

    assert type(error) is AppPermissionMissing
    assert error.kind == ErrorKind.PERMISSIONS
    assert "accepts them in the organization's settings" in str(error)


def test_a_suspended_installation_refused_on_any_call_asks_an_owner_to_unsuspend_it():
    error = refusal(403, "This installation has been suspended")

    assert type(error) is InstallationSuspended
    assert error.kind == ErrorKind.SUSPENDED


def test_a_graphql_answer_the_app_may_not_read_is_a_missing_permission():
    message = "Resource not accessible by integration"
    kind = errors.graphql_error_kind("FORBIDDEN", message, ["organization", "membersWithRole"], {})

    error = errors.for_graphql_kind(kind, error_type="FORBIDDEN", message=message, headers={}, login="acme",
                                    web_url=WEB, reset_at=None)  # fmt: skip

    assert kind == "permissions"
    assert type(error) is AppPermissionMissing


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (BadCredentials(), ErrorKind.CREDENTIALS),
        (AppPermissionMissing(), ErrorKind.PERMISSIONS),
        (ScopeMissing(), ErrorKind.CREDENTIALS),
        (InstallationNotFound(), ErrorKind.INSTALLATION),
        (InstallationSuspended(), ErrorKind.SUSPENDED),
        (AppCredentialsRejected(), ErrorKind.INSTALLATION),
        (SSORequired("https://github.com/orgs/acme/sso"), ErrorKind.ORGANIZATION),
        (AccessRestricted("acme"), ErrorKind.ORGANIZATION),
        (OrganizationNotFound("acme"), ErrorKind.ORGANIZATION),
        (ViewerNotMember("acme"), ErrorKind.ORGANIZATION),
        (GitHubUnavailable(), ErrorKind.GITHUB),
        (MalformedResponse("a page"), ErrorKind.GITHUB),
        (RateLimited(datetime.now(UTC)), ErrorKind.GITHUB),
        (GitHubError("GitHub answered HTTP 418"), ErrorKind.GITHUB),
    ],
)
def test_each_error_says_who_can_fix_it(error, kind):
    assert error.kind == kind


def test_404_means_the_organization_is_gone_or_out_of_reach():
    assert isinstance(refusal(404, "Not Found"), OrganizationNotFound)


def test_422_endpoint_spammed_is_retried_later():
    error = refusal(422, "Validation Failed")

    assert isinstance(error, GitHubUnavailable)
    assert error.transient


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(status):
    error = refusal(status)

    assert isinstance(error, GitHubUnavailable)
    assert str(error) == f"GitHub is unavailable (HTTP {status}). The sync will be retried; nothing to do for now."


@pytest.mark.parametrize(
    ("error_type", "message", "path", "extensions", "kind"),
    [
        ("RATE_LIMITED", "API rate limit exceeded", [], {}, "rate_limited"),
        ("RATE_LIMIT", "API rate limit already exceeded", [], {"code": "graphql_rate_limit"}, "rate_limited"),
        ("RESOURCE_LIMITS_EXCEEDED", "Resource limits for this query exceeded.", [], {}, "too_large"),
        (None, "Something went wrong while executing your query. This may be the result of a timeout", [], {},
         "too_large"),
        ("INSUFFICIENT_SCOPES", "requires one of the following scopes: ['read:org']", [], {}, "scopes"),
        ("FORBIDDEN", "SAML enforcement", ["organization"], {"saml_failure": True}, "sso"),
        ("FORBIDDEN", RESTRICTED, ["organization"], {}, "restricted"),
        ("NOT_FOUND", "Could not resolve to an Organization", ["organization"], {}, "not_found"),
        (None, "x", ["organization", "membersWithRole", "edges", 3, "node", "email"], {}, "edge"),
        ("FORBIDDEN", "x", ["organization", "membersWithRole", "edges", 3, "node", "organizationVerifiedDomainEmails"],
         {}, "verified_emails"),
        ("SOMETHING_NEW", "x", [], {}, "other"),
    ],
)  # fmt: skip
def test_each_kind_of_graphql_error_is_told_apart(error_type, message, path, extensions, kind):
    assert errors.graphql_error_kind(error_type, message, path, extensions) == kind


def graphql_rate_limited(message="", reset_at=None, **headers):
    return errors.for_graphql_kind(
        "rate_limited",
        error_type="RATE_LIMITED",
        message=message,
        headers=CaseInsensitiveDict(headers),
        login="acme",
        web_url=WEB,
        reset_at=reset_at,
    )


def test_a_graphql_rate_limit_without_headers_naming_the_primary_limit_waits_for_the_reset_an_earlier_answer_gave():
    reset = datetime.now(UTC) + timedelta(minutes=20)

    error = graphql_rate_limited("API rate limit exceeded for user ID 1.", reset_at=reset)

    assert error.reset_at == reset
    assert not error.secondary


@pytest.mark.parametrize("message", ["", "You have exceeded a secondary rate limit. Please wait a few minutes."])
def test_a_graphql_rate_limit_without_headers_or_a_word_of_the_primary_limit_is_secondary(message):
    error = graphql_rate_limited(message, reset_at=datetime.now(UTC) + timedelta(minutes=50))

    assert error.secondary
    assert 58 <= seconds_from_now(error.reset_at) <= 60


def test_a_graphql_rate_limit_with_requests_left_is_secondary_and_never_waits_for_the_primary_reset():
    window_reset = datetime.now(UTC) + timedelta(minutes=50)
    headers = {"X-RateLimit-Remaining": "4990", "X-RateLimit-Reset": str(int(window_reset.timestamp()))}

    error = graphql_rate_limited("API rate limit exceeded for user ID 1.", reset_at=window_reset, **headers)

    assert error.secondary
    assert 58 <= seconds_from_now(error.reset_at) <= 60


def test_a_graphql_rate_limit_with_no_requests_left_waits_for_the_reset_header():
    reset = int((datetime.now(UTC) + timedelta(minutes=10)).timestamp())
    earlier = datetime.now(UTC) + timedelta(minutes=50)

    error = graphql_rate_limited(
        "", reset_at=earlier, **{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    )

    assert not error.secondary
    assert 590 <= seconds_from_now(error.reset_at) <= 600


def test_a_graphql_secondary_rate_limit_with_retry_after_waits_exactly_that():
    headers = {"Retry-After": "45", "X-RateLimit-Remaining": "4990"}

    error = graphql_rate_limited("You have exceeded a secondary rate limit.", **headers)

    assert not error.secondary  # the wait GitHub named, not one that grows
    assert 43 <= seconds_from_now(error.reset_at) <= 45


def test_an_unknown_graphql_error_type_is_named_only_if_it_looks_like_one():
    def message(error_type):
        return str(errors.for_graphql_kind("other", error_type=error_type, message="", headers={}, login="a",
                                           web_url=WEB, reset_at=None))  # fmt: skip

    assert "(SOMETHING_NEW)" in message("SOMETHING_NEW")
    assert "(unknown)" in message("<script>")


@pytest.mark.parametrize(
    ("granted", "ok"),
    [("read:org", True), ("admin:org", True), ("write:org, repo", True), ("repo, gist", False), ("", False)],
)
def test_read_org_or_a_scope_that_implies_it_is_enough(granted, ok):
    headers = {"x-oauth-scopes": granted}

    if ok:
        errors.require_scope(headers)
    else:
        with pytest.raises(ScopeMissing):
            errors.require_scope(headers)


def test_tokens_that_list_no_scopes_are_not_checked():
    errors.require_scope({})


def test_the_scope_an_insufficient_scopes_message_names_is_asked_for():
    assert errors.scope_named_in("requires one of the following scopes: ['user:email'], but") == "user:email"
    assert errors.scope_named_in("requires one of the following scopes: ['admin:org', 'read:org']") == "read:org"
    assert errors.scope_named_in("garbled") == "read:org"


def test_organizations_hidden_by_sso_are_read_from_the_partial_results_header():
    headers = CaseInsensitiveDict({"X-GitHub-SSO": "partial-results; organizations=21955855,20582480,x"})

    assert errors.sso_hidden_organizations(headers) == [21955855, 20582480]
    assert errors.sso_hidden_organizations(CaseInsensitiveDict()) == []


def test_an_oauth_error_code_from_github_is_not_echoed_unchecked():
    assert OAuthError("<script>").code == "unknown_error"
    assert str(OAuthError("bad_verification_code")) == (
        "The GitHub authorization code is invalid or has expired. Connect GitHub again."
    )


def test_only_rate_limits_and_outages_are_transient():
    every = [BadCredentials(), SSORequired(WEB), AccessRestricted("acme"), OrganizationNotFound("acme"),
             ViewerNotMember("acme"), ScopeMissing(), RateLimited(datetime.now(UTC)), GitHubUnavailable(),
             MalformedResponse("x"), OAuthError("x")]  # fmt: skip

    assert {type(error).__name__ for error in every if error.transient} == {"RateLimited", "GitHubUnavailable"}


def test_the_rate_limit_message_tells_the_time_in_utc():
    assert str(RateLimited(datetime(2030, 1, 1, 16, 5, tzinfo=UTC))).startswith(
        "GitHub rate limit reached; waiting until 16:05 UTC"
    )
