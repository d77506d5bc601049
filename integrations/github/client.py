"""A thin client for the part of GitHub the member sync uses (docs/architecture.md#reading-members):
one small method per call, each naming the GitHub doc it implements, answers validated into the
records of ``schemas.py``.

The token lives only in the session's headers: never logged, never in an exception (none is chained
to a requests exception, which holds the request). Rate limits are raised, not slept through; 5xx
answers and failed connections are retried with backoff.
"""

import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import quote, urlsplit

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links
from urllib3.util.retry import Retry

from integrations.github import errors, schemas
from integrations.github.errors import (
    GitHubUnavailable,
    InstallationNotFound,
    MalformedResponse,
    OrganizationNotFound,
    QueryTooLarge,
    ViewerNotMember,
)
from integrations.github.schemas import Installation, MembersPage, Organization, Team, TeamMembership, TeamsPage

logger = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
# GitHub serves at most 100 items a page. When it gives up on a query (resource limits, or its 10 s
# timeout) the page size is halved, but not below MIN_PAGE_SIZE: past that the query is not the problem.
MAX_PAGE_SIZE = 100
MIN_PAGE_SIZE = 5
MAX_PAGES = 10_000
MAX_BODY_BYTES = 16 * 1024 * 1024

# https://docs.github.com/en/graphql/reference/objects#organization (membersWithRole, viewerIsAMember)
# https://docs.github.com/en/graphql/reference/objects#user (organizationVerifiedDomainEmails)
# rateLimit costs nothing extra and tells when the window resets, should the next page be refused.
MEMBERS_QUERY = """
query OrganizationMembers($login: String!, $first: Int!, $after: String) {
  organization(login: $login) {
    id databaseId login viewerIsAMember
    membersWithRole(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { role node { id databaseId login name email avatarUrl organizationVerifiedDomainEmails(login: $login) } }
    }
  }
  rateLimit { cost remaining resetAt }
}
"""
# For a token that may not read verified-domain emails: the rest of the page is still worth having.
MEMBERS_QUERY_WITHOUT_VERIFIED_EMAILS = MEMBERS_QUERY.replace(" organizationVerifiedDomainEmails(login: $login)", "")

# https://docs.github.com/en/graphql/reference/objects#organization (teams)
# https://docs.github.com/en/graphql/reference/objects#team (parentTeam; members with membership: IMMEDIATE,
# a member's own place in the team, not through a child team: the tree gives those)
# A page of teams carries the first TEAM_MEMBERS_FIRST members of each: GitHub charges a query by the
# nodes it may return (teams × members), and most teams are small; a larger one continues on its own
# cursor (TEAM_MEMBERS_QUERY), 100 a page.
TEAMS_QUERY = """
query OrganizationTeams($login: String!, $first: Int!, $after: String, $membersFirst: Int!) {
  organization(login: $login) {
    login viewerIsAMember
    teams(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          databaseId id slug name description privacy
          parentTeam { databaseId }
          members(membership: IMMEDIATE, first: $membersFirst) {
            totalCount
            pageInfo { hasNextPage endCursor }
            edges { role node { databaseId login } }
          }
        }
      }
    }
  }
  rateLimit { cost remaining resetAt }
}
"""
# https://docs.github.com/en/graphql/reference/objects#organization (team(slug:))
TEAM_MEMBERS_QUERY = """
query TeamMembers($login: String!, $slug: String!, $first: Int!, $after: String) {
  organization(login: $login) {
    team(slug: $slug) {
      databaseId
      members(membership: IMMEDIATE, first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { role node { databaseId login } }
      }
    }
  }
  rateLimit { cost remaining resetAt }
}
"""
TEAM_MEMBERS_FIRST = 25
_TEAM_EDGES = ["organization", "teams", "edges"]
_TEAM_MEMBER_EDGES = ["organization", "team", "members", "edges"]


class Response(NamedTuple):
    status: int
    headers: CaseInsensitiveDict
    body: bytes


class _MemberAnswer(NamedTuple):
    connection: schemas.MembersConnection
    broken_edges: set[int]  # edges an error inside the record spoiled


class _GraphQLMissing(Exception):
    """The server has no GraphQL endpoint (404 on its URL, e.g. an old GitHub Enterprise Server)."""


class _Retry(Retry):
    """urllib3's Retry, counting every attempt, and never resending a GraphQL query GitHub gave up
    on for taking too long: a smaller page goes through, the same one would not."""

    def __init__(self, *args, on_retry=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_retry = on_retry

    def new(self, **kwargs):
        retry = super().new(**kwargs)
        retry.on_retry = self.on_retry
        return retry

    def is_retry(self, method, status_code, has_retry_after=False):
        return not (method == "POST" and status_code in (502, 504)) and super().is_retry(
            method, status_code, has_retry_after
        )

    def increment(self, *args, **kwargs):
        retry = super().increment(*args, **kwargs)
        if self.on_retry is not None:
            self.on_retry()
        return retry


def new_session(*, retries: int = 3, backoff_factor: float = 0.5, resend: bool = True, on_retry=None):
    """A session that retries failed connections and, if ``resend``, requests that reached GitHub but
    failed there (5xx, broken answers), with backoff.

    https://urllib3.readthedocs.io/en/stable/reference/urllib3.util.html#urllib3.util.Retry
    """
    retry = _Retry(
        total=retries,
        connect=retries,
        read=retries if resend else 0,
        status=retries if resend else 0,
        other=0,
        allowed_methods=frozenset({"GET", "POST"}),
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=backoff_factor,
        backoff_max=10,
        # The last 5xx comes back as an answer, mapped to GitHubUnavailable like any other.
        raise_on_status=False,
        # A Retry-After on a 5xx must not park the worker: retry with the backoff, or give up.
        respect_retry_after_header=False,
        on_retry=on_retry,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "member-sync"
    # An auth hook of our own (it changes nothing) keeps requests from taking credentials out of a
    # ~/.netrc, which would replace the token's Authorization header.
    session.auth = lambda request: request
    return session


def send(session, method: str, url: str, *, timeout, **kwargs) -> tuple[Response, int]:
    """One request, its body read up to a limit; the answer and the number of redirects followed."""
    try:
        with session.request(method, url, timeout=timeout, stream=True, **kwargs) as response:
            body = bytearray()
            for chunk in response.iter_content(chunk_size=64 * 1024):
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise MalformedResponse(f"an answer larger than {MAX_BODY_BYTES // 2**20} MB")
            return Response(response.status_code, response.headers, bytes(body)), len(response.history)
    except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        logger.warning("GitHub request %s %s failed: %s", method, urlsplit(url).path, type(error).__name__)
        raise GitHubUnavailable("no answer in time" if _timed_out(error) else "the connection failed") from None
    except requests.exceptions.RetryError:
        raise GitHubUnavailable("it kept failing") from None
    except requests.exceptions.ContentDecodingError:
        raise MalformedResponse("an answer that could not be decoded") from None


def _timed_out(error: requests.RequestException) -> bool:
    # Once retries are used up, requests reports a read timeout as a ConnectionError around urllib3's.
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.Timeout) or isinstance(reason, urllib3.exceptions.TimeoutError)


class _BearerFrom(AuthBase):
    def __init__(self, token: Callable[[], str]):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


class OrganizationList(NamedTuple):
    organizations: list[Organization]
    # Ids of organizations GitHub left out until the user signs in to their SAML single sign-on.
    sso_hidden: list[int]


def _submit(executor, function, *args):
    # The next page is asked for in another thread: run it in this one's context, so that what it
    # logs carries the same context (the run and team of a sync).
    return executor.submit(contextvars.copy_context().run, function, *args)


def _result(future):
    """The future's result, waited for in slices: an exception sent to this thread (a worker's time
    limit, its shutdown) is raised only between them."""
    while True:
        try:
            return future.result(timeout=0.1)
        except TimeoutError:
            if future.done():  # the request's own TimeoutError, not the wait's
                raise


class GitHubClient:
    """GitHub's REST and GraphQL APIs on behalf of one token. Base URLs default to the GITHUB_*
    settings, so GitHub Enterprise Server works.

    ``token`` may be a function that returns it, asked before every request: an installation's
    tokens expire after an hour, and a long run then carries on with a new one. ``renew_token``,
    given with such a function: drops the token it returns, so that the next call mints another.
    GitHub may revoke an installation token before its hour is over; a 401 then renews it and sends
    the request once more, and a second 401 is the error (docs/architecture.md#the-github-app).
    ``installation``: the token is a GitHub App installation's, whose bot is no member of the
    organization yet sees every member, so the partial-sight rule (docs/architecture.md#who-may-deactivate)
    is for a person's token only.
    """

    def __init__(
        self,
        token: str | Callable[[], str],
        *,
        renew_token: Callable[[], None] | None = None,
        installation=False,
        api_url=None,
        graphql_url=None,
        web_url=None,
        timeout=10.0,
        retries=3,
        backoff_factor=0.5,
    ):
        self.api_url = (api_url or settings.GITHUB_API_URL).rstrip("/")
        self.graphql_url = graphql_url or settings.GITHUB_GRAPHQL_URL
        self.web_url = (web_url or settings.GITHUB_WEB_URL).rstrip("/")
        self.timeout = (timeout, timeout)
        self.api_calls = 0
        # The rate limit as GitHub's last answer gave it (X-RateLimit-*), for the operator's metrics.
        self.rate_limit_remaining: int | None = None
        self.rate_limit_reset_at: datetime | None = None
        self._reset_at: datetime | None = None
        self._members_query = MEMBERS_QUERY
        self.installation = installation
        self._renew_token = renew_token
        # Every request the client sends only reads, GraphQL queries (POSTs) included: safe to resend.
        self.session = new_session(retries=retries, backoff_factor=backoff_factor, on_retry=self._count_retry)
        self.session.headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION})
        if callable(token):
            self.session.auth = _BearerFrom(token)
        else:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self):
        return f"<GitHubClient {self.api_url}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.session.close()

    def _count_retry(self):
        self.api_calls += 1

    def viewer_organizations(self) -> OrganizationList:
        """Every organization the token's account belongs to, following the Link header; and those
        GitHub left out for want of a SAML session (``X-GitHub-SSO: partial-results``).

        https://docs.github.com/en/rest/orgs/orgs#list-organizations-for-the-authenticated-user
        https://docs.github.com/en/enterprise-cloud@latest/rest/authentication/authenticating-to-the-rest-api#authenticating-for-saml-sso
        """
        organizations: list[Organization] = []
        hidden: list[int] = []
        for response in self._pages(f"{self.api_url}/user/orgs"):
            # Without read:org GitHub lists only the organizations whose membership is public.
            errors.require_scope(response.headers)
            organizations += schemas.parse(schemas.ORGANIZATIONS, response.body, "the organization list")
            hidden += errors.sso_hidden_organizations(response.headers)
        return OrganizationList(organizations, list(dict.fromkeys(hidden)))

    def user_installations(self) -> list[Installation]:
        """The GitHub App's installations the token's user can reach (a user access token of the
        App: other tokens are refused), every page.

        https://docs.github.com/en/rest/apps/installations#list-app-installations-accessible-to-the-user-access-token
        """
        installations: list[Installation] = []
        for response in self._pages(f"{self.api_url}/user/installations"):
            page = schemas.parse(schemas.InstallationsPage, response.body, "the installation list")
            installations += schemas.installations(page.installations)
        return installations

    def organization(self, organization_id: int) -> Organization:
        """An organization by its id, which survives renames: GitHub's own Link headers use this route.

        https://docs.github.com/en/rest/orgs/orgs#get-an-organization
        """
        response = self._get(f"{self.api_url}/organizations/{int(organization_id)}", org_login=str(organization_id))
        return schemas.parse(Organization, response.body, "the organization")

    def organization_membership(self, org_login: str, username: str) -> schemas.OrganizationMembership | None:
        """One person's membership of the organization as GitHub says it now; None when GitHub knows
        no such membership (404: not a member, or no such user). A webhook names whom to look at; this
        says what is true (docs/architecture.md#webhooks).

        https://docs.github.com/en/rest/orgs/members#get-organization-membership-for-a-user
        """
        return self._membership(f"/orgs/{quote(org_login, safe='')}/memberships/{quote(username, safe='')}", org_login)

    def own_membership(self, org_login: str) -> schemas.OrganizationMembership | None:
        """The token's own user's membership of the organization, as organization_membership's
        (``member.role`` "admin" for an owner). Works with a GitHub App's user token: connecting an
        installation asks it, as an installation's token sees more than a plain member may
        (docs/architecture.md#the-github-app).

        https://docs.github.com/en/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user
        """
        return self._membership(f"/user/memberships/orgs/{quote(org_login, safe='')}", org_login)

    def _membership(self, path: str, org_login: str) -> schemas.OrganizationMembership | None:
        response = self._request("GET", f"{self.api_url}{path}")
        if response.status == 404:
            return None
        self._raise_for_status(response, org_login=org_login)
        return schemas.organization_membership(response.body)

    def revoke_own_token(self) -> None:
        """Revoke the client's own installation token (204); a 401 is a token GitHub no longer takes,
        as good as revoked.

        https://docs.github.com/en/rest/apps/installations#revoke-an-installation-access-token
        """
        response = self._send("DELETE", f"{self.api_url}/installation/token")
        if response.status in (204, 401):
            return
        self._raise_for_status(response, org_login=None)
        raise MalformedResponse(f"revoking the installation token: HTTP {response.status}")

    def user_login(self, account_id: int) -> str | None:
        """The current login of the account with this id, which survives renames; None when the
        account is gone (deleted).

        https://docs.github.com/en/rest/users/users#get-a-user-using-their-id
        """
        response = self._request("GET", f"{self.api_url}/user/{int(account_id)}")
        if response.status == 404:
            return None
        self._raise_for_status(response, org_login=None)
        return schemas.parse(schemas.Account, response.body, "the user").login

    def iter_member_pages(self, org_login: str, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[MembersPage]:
        """The organization's members with their roles, one page after another by cursor, as GitHub
        asks. The next page is asked for as soon as its cursor is known, while the caller works on
        this one: each page costs a round trip, and the caller's work then hides behind it. A page
        GitHub gives up on is asked for again at half the size. A server without GraphQL is read
        over REST instead.

        https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api
        https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api
        """
        size, cursor, first_request = max(1, min(page_size, MAX_PAGE_SIZE)), None, True
        # One thread, one request at a time: only it uses the session while it runs. Leaving the
        # block waits for a request in flight, which its timeout bounds.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="github-next-page") as ahead:
            asked = _submit(ahead, self._member_answer, org_login, size, cursor)
            while True:
                try:
                    answer = _result(asked)
                except _GraphQLMissing:
                    if not first_request:
                        raise GitHubUnavailable("its GraphQL API stopped answering") from None
                    logger.info("No GraphQL API at %s: reading the members over REST", self.graphql_url)
                    yield from self.iter_member_pages_rest(org_login)
                    return
                except QueryTooLarge:
                    if size // 2 < MIN_PAGE_SIZE:
                        raise GitHubUnavailable(f"it could not answer even {size} members a page") from None
                    size //= 2
                    logger.info("GitHub gave up on the member query: asking for %d members a page", size)
                    asked = _submit(ahead, self._member_answer, org_login, size, cursor)
                    continue
                first_request = False
                page_info = answer.connection.pageInfo
                if page_info.hasNextPage:
                    asked = _submit(ahead, self._member_answer, org_login, size, page_info.endCursor)
                    # Let the request go out before this thread validates the page: otherwise the
                    # asking thread waits for the GIL until this one pauses, up to 5 ms a page.
                    time.sleep(0)
                yield self._members_page(answer, org_login)
                if not page_info.hasNextPage:
                    return
                cursor = page_info.endCursor

    def _member_answer(self, login: str, first: int, after: str | None) -> "_MemberAnswer":
        """One page of the member query, checked for every error that sinks it; the members
        themselves are left for ``_members_page``, off the path from one request to the next."""
        variables = {"login": login, "first": first, "after": after}
        response = self._request("POST", self.graphql_url, json={"query": self._members_query, "variables": variables})
        if response.status == 404:
            raise _GraphQLMissing
        if response.status in (502, 504):  # GitHub's 10 s limit on a query
            raise QueryTooLarge
        self._raise_for_status(response, org_login=login)
        answer = schemas.parse(schemas.GraphQLAnswer, response.body, "the GraphQL answer")
        broken_edges = self._check_graphql_errors(answer.errors, response.headers, login)
        if broken_edges is None:  # verified-domain emails refused: the same page without them
            self._members_query = MEMBERS_QUERY_WITHOUT_VERIFIED_EMAILS
            return self._member_answer(login, first, after)
        data = schemas.validate(schemas.MembersData, answer.data, "the member page")
        connection = self._organization(data, login).membersWithRole
        _require_advance(connection.pageInfo, after, "the member list")
        return _MemberAnswer(connection, broken_edges)

    def _organization(self, data, login: str):
        """The organization of a member or team page, once GitHub's rate limit is noted from it: a
        person outside the organization is shown only what is public (SPEC §6), which is no answer."""
        if data.rateLimit is not None:
            self._reset_at = data.rateLimit.resetAt
        if data.organization is None:
            raise OrganizationNotFound(login)
        if not data.organization.viewerIsAMember and not self.installation:
            raise ViewerNotMember(login)
        return data.organization

    def _members_page(self, answer: "_MemberAnswer", login: str) -> MembersPage:
        edges = [edge for index, edge in enumerate(answer.connection.edges) if index not in answer.broken_edges]
        members, skipped = schemas.members(edges, schemas.MemberEdge, login)
        return MembersPage(
            members=members,
            total=answer.connection.totalCount,
            has_next_page=answer.connection.pageInfo.hasNextPage,
            skipped=skipped + len(answer.connection.edges) - len(edges),
        )

    def _check_graphql_errors(self, graphql_errors, headers, login: str) -> set[int] | None:
        """Raise for the errors that sink the answer; return the member edges an error spoiled, or
        None when the token may not read verified-domain emails."""
        kinds: dict[str, schemas.GraphQLError] = {}
        broken_edges: set[int] = set()
        for error in graphql_errors:
            kind = errors.graphql_error_kind(error.type, error.message, error.path, error.extensions)
            kinds.setdefault(kind, error)
            if kind == "edge":
                broken_edges.add(error.path[3])
        if "verified_emails" in kinds and self._members_query is MEMBERS_QUERY:
            return None
        self._raise_for_kinds(kinds, headers, login)
        return broken_edges

    def _raise_for_kinds(self, kinds: dict, headers, login: str) -> None:
        """Raise for the first GraphQL error, by kind, that sinks the whole answer."""
        self._raise_first(kinds, ("rate_limited", "too_large", "scopes", "permissions"), headers, login)
        # A token without read:org can cause the errors below: say what is missing instead.
        self._require_read_org(headers)
        self._raise_first(kinds, ("sso", "restricted", "not_found", "other"), headers, login)

    def _raise_first(self, kinds: dict, order: tuple[str, ...], headers, login: str) -> None:
        for kind in order:
            if (error := kinds.get(kind)) is not None:
                raise errors.for_graphql_kind(
                    kind,
                    error_type=error.type,
                    message=error.message,
                    headers=headers,
                    login=login,
                    web_url=self.web_url,
                    reset_at=self._reset_at,
                )

    def iter_team_pages(
        self, org_login: str, *, page_size: int = MAX_PAGE_SIZE, members_first: int = TEAM_MEMBERS_FIRST
    ) -> Iterator[TeamsPage]:
        """The organization's teams the token may see, one page after another by cursor, each with
        every one of its immediate members and their roles (a child team's members are not its
        parent's here). A team with more members than its page carries continues on its own cursor
        before the page is handed out. As iter_member_pages: the next page of teams is asked for
        while the caller works on this one, one request at a time, and a query GitHub gives up on
        is asked again at half the size.

        https://docs.github.com/en/graphql/reference/objects#organization
        https://docs.github.com/en/graphql/reference/objects#team
        https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api
        https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api
        """
        size, cursor = max(1, min(page_size, MAX_PAGE_SIZE)), None
        members_first = max(1, min(members_first, MAX_PAGE_SIZE))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="github-next-page") as ahead:
            asked = _submit(ahead, self._teams_answer, org_login, size, members_first, cursor)
            while True:
                try:
                    connection, broken = _result(asked)
                except QueryTooLarge:
                    size = _halved(size, "teams")
                    asked = _submit(ahead, self._teams_answer, org_login, size, members_first, cursor)
                    continue
                page_info = connection.pageInfo
                if page_info.hasNextPage:
                    asked = _submit(ahead, self._teams_answer, org_login, size, members_first, page_info.endCursor)
                    time.sleep(0)
                yield self._teams_page(connection, broken, org_login, ahead)
                if not page_info.hasNextPage:
                    return
                cursor = page_info.endCursor

    def _teams_answer(self, login: str, first: int, members_first: int, after: str | None):
        """One page of the teams query, checked for every error that sinks it, and the teams an
        error inside their record spoiled."""
        variables = {"login": login, "first": first, "after": after, "membersFirst": members_first}
        data, broken = self._graphql(TEAMS_QUERY, variables, login, _TEAM_EDGES)
        answer = schemas.validate(schemas.TeamsData, data, "the team page")
        connection = self._organization(answer, login).teams
        _require_advance(connection.pageInfo, after, "the team list")
        return connection, broken

    def _teams_page(self, connection, broken: set[int], login: str, ahead) -> TeamsPage:
        teams: list[Team] = []
        memberships: list[TeamMembership] = []
        skipped = len(broken)
        for index, edge in enumerate(connection.edges):
            if index in broken:
                continue
            if (found := schemas.team(edge)) is None:
                skipped += 1
                continue
            team, node = found
            teams.append(team)
            usable, unusable = schemas.team_memberships(node.members.edges, team.github_id, team.slug)
            memberships += usable
            skipped += unusable
            if node.members.pageInfo.hasNextPage:
                _require_advance(node.members.pageInfo, None, f"the members of team {team.slug}")
                unread = node.members.totalCount - len(node.members.edges)
                more, unusable = self._more_team_members(ahead, login, team, node.members.pageInfo.endCursor, unread)
                memberships += more
                skipped += unusable
        return TeamsPage(
            teams=teams,
            memberships=memberships,
            total=connection.totalCount,
            has_next_page=connection.pageInfo.hasNextPage,
            skipped=skipped,
        )

    def _more_team_members(
        self, ahead, login: str, team: Team, after: str | None, remaining: int
    ) -> tuple[list[TeamMembership], int]:
        """The rest of a team's immediate members, from its own cursor on, asked by the thread that
        asks for every page. A team gone (or renamed) since its page left them unread: they count
        as skipped, the read incomplete."""
        memberships: list[TeamMembership] = []
        skipped, size = 0, MAX_PAGE_SIZE
        while after is not None:
            try:
                connection = _result(_submit(ahead, self._team_members_answer, login, team, size, after))
            except QueryTooLarge:
                size = _halved(size, "team members")
                continue
            if connection is None:
                logger.warning("Team %s of %s went away while its members were read", team.slug, login)
                return memberships, skipped + max(1, remaining)
            usable, unusable = schemas.team_memberships(connection.edges, team.github_id, team.slug)
            memberships += usable
            skipped += unusable
            remaining -= len(connection.edges)
            after = connection.pageInfo.endCursor if connection.pageInfo.hasNextPage else None
        return memberships, skipped

    def _team_members_answer(self, login: str, team: Team, first: int, after: str):
        """One page of a team's immediate members on the team's own cursor; None when GitHub no
        longer has that team under that slug."""
        variables = {"login": login, "slug": team.slug, "first": first, "after": after}
        data, broken = self._graphql(TEAM_MEMBERS_QUERY, variables, login, _TEAM_MEMBER_EDGES)
        answer = schemas.validate(schemas.TeamMembersData, data, "the team's member page")
        if answer.rateLimit is not None:
            self._reset_at = answer.rateLimit.resetAt
        if answer.organization is None:
            raise OrganizationNotFound(login)
        found = answer.organization.team
        if found is None or found.databaseId != team.github_id:
            return None
        connection = found.members
        _require_advance(connection.pageInfo, after, f"the members of team {team.slug}")
        # An edge an error spoiled is left out here, and counted by team_memberships as unusable.
        edges = [None if index in broken else edge for index, edge in enumerate(connection.edges)]
        return connection.model_copy(update={"edges": edges})

    def _graphql(self, query: str, variables: dict, login: str, record_path: list[str]) -> tuple[dict | None, set[int]]:
        """POST a query and raise for the errors that sink its answer; its data, and the indices of
        the records (the edges at ``record_path``) an error spoiled, which are skipped and counted."""
        response = self._request("POST", self.graphql_url, json={"query": query, "variables": variables})
        if response.status == 404:
            # No GraphQL API (an old GitHub Enterprise Server): teams are read over GraphQL only.
            raise GitHubUnavailable("it has no GraphQL API, which reading teams needs")
        if response.status in (502, 504):  # GitHub's 10 s limit on a query
            raise QueryTooLarge
        self._raise_for_status(response, org_login=login)
        answer = schemas.parse(schemas.GraphQLAnswer, response.body, "the GraphQL answer")
        kinds: dict[str, schemas.GraphQLError] = {}
        broken: set[int] = set()
        depth = len(record_path)
        for error in answer.errors:
            path = error.path
            if path[:depth] == record_path and len(path) > depth and type(path[depth]) is int:
                broken.add(path[depth])
                continue
            kind = errors.graphql_error_kind(error.type, error.message, path, error.extensions)
            kinds.setdefault(kind, error)
        self._raise_for_kinds(kinds, response.headers, login)
        return answer.data, broken

    def iter_member_pages_rest(self, org_login: str) -> Iterator[MembersPage]:
        """The organization's members over REST: the admins first, then every member, the role taken
        from the admin list. Membership comes from the one full listing alone, so a member whose role
        changes between the two reads is still there. REST lists no names, emails or total.

        https://docs.github.com/en/rest/orgs/members#list-organization-members
        """
        if not self.installation:
            self._require_viewer_membership(org_login)
        admins = {member.github_id for page in self._rest_member_pages(org_login, "admin") for member in page.members}
        for page in self._rest_member_pages(org_login, "all"):
            members = [
                member.model_copy(update={"role": "admin" if member.github_id in admins else "member"})
                for member in page.members
            ]
            yield page.model_copy(update={"members": members})

    def _require_viewer_membership(self, org_login: str) -> None:
        """Raise ViewerNotMember unless the token's user is an active member of the organization. The
        REST listing has no viewerIsAMember: to an account outside it GitHub answers 200 with the
        public members only, and reading on would deactivate every concealed member.

        https://docs.github.com/en/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user
        """
        response = self._request("GET", f"{self.api_url}/user/memberships/orgs/{quote(org_login, safe='')}")
        error = errors.for_status(response.status, response.headers, response.body, web_url=self.web_url)
        if response.status == 404:
            # No membership, or no such organization: a renamed one is looked for by its id, so say which.
            self._get(f"{self.api_url}/orgs/{quote(org_login, safe='')}", org_login=org_login)
            raise ViewerNotMember(org_login)
        if isinstance(error, errors.AccessRefused):  # a 403 that is not a rate limit, SSO or scope
            raise ViewerNotMember(org_login)
        if error is not None:
            raise error
        if schemas.organization_membership(response.body).member is None:  # pending, or a billing manager
            raise ViewerNotMember(org_login)

    def _rest_member_pages(self, org_login: str, role: str) -> Iterator[MembersPage]:
        url: str | None = f"{self.api_url}/orgs/{quote(org_login, safe='')}/members"
        params: dict[str, object] | None = {"role": role, "per_page": MAX_PAGE_SIZE}
        seen: set[str] = set()
        while url:
            response = self._request("GET", url, params=params, allow_redirects=False)
            # Not GitHub's answer to an account outside the organization (that is a 200 with the
            # public members, caught above), but a redirect to them would mean the same.
            if 300 <= response.status < 400:
                raise ViewerNotMember(org_login)
            self._raise_for_status(response, org_login=org_login)
            self._require_read_org(response.headers)
            items = schemas.parse(schemas.ITEMS, response.body, "the member list")
            members, skipped = schemas.members(items, schemas.RestMember, org_login, role="member")
            url, params = self._next_page(response, seen), None
            yield MembersPage(members=members, total=None, has_next_page=bool(url), skipped=skipped)

    def _require_read_org(self, headers) -> None:
        # An installation's token has the App's permissions, not OAuth scopes: nothing to check.
        if not self.installation:
            errors.require_scope(headers)

    def _request(self, method: str, url: str, **kwargs) -> Response:
        response = self._send(method, url, **kwargs)
        if response.status == 401 and self._renew_token is not None:
            logger.warning("GitHub refused the installation token on %s: minting a new one", urlsplit(url).path)
            self._renew_token()
            response = self._send(method, url, **kwargs)
            if response.status == 401:
                # A token GitHub has just minted, refused: the installation is gone (uninstalled
                # meanwhile) or no longer the App's. Reconnecting, the remedy of a person's
                # token, cannot help; installing the App again can.
                raise InstallationNotFound()
        return response

    def _send(self, method: str, url: str, **kwargs) -> Response:
        # Counted before sending: a request that fails still went out (retries count themselves).
        self.api_calls += 1
        response, redirects = send(self.session, method, url, timeout=self.timeout, **kwargs)
        self.api_calls += redirects
        remaining = errors.int_header(response.headers, "x-ratelimit-remaining")
        reset = errors.int_header(response.headers, "x-ratelimit-reset")
        if remaining is not None and reset is not None:
            self.rate_limit_remaining = remaining
            self.rate_limit_reset_at = datetime.fromtimestamp(min(reset, 2**32), UTC)
        return response

    def _get(self, url: str, *, params=None, org_login: str | None = None) -> Response:
        response = self._request("GET", url, params=params)
        self._raise_for_status(response, org_login=org_login)
        return response

    def _raise_for_status(self, response: Response, *, org_login: str | None) -> None:
        error = errors.for_status(
            response.status, response.headers, response.body, web_url=self.web_url, org_login=org_login
        )
        if error is not None:
            raise error

    def _next_page(self, response: Response, seen: set[str]) -> str | None:
        return next_page(response, seen, api_url=self.api_url)

    def _pages(self, url: str) -> Iterator[Response]:
        """Every page of a REST list, the largest GitHub serves, following the Link header."""
        params: dict[str, object] | None = {"per_page": MAX_PAGE_SIZE}
        seen: set[str] = set()
        next_url: str | None = url
        while next_url:
            response = self._get(next_url, params=params)
            yield response
            next_url, params = self._next_page(response, seen), None


def _halved(size: int, what: str) -> int:
    """The page size after GitHub gave up on a query, not below MIN_PAGE_SIZE."""
    if size // 2 < MIN_PAGE_SIZE:
        raise GitHubUnavailable(f"it could not answer even {size} {what} a page")
    logger.info("GitHub gave up on the %s query: asking for %d a page", what, size // 2)
    return size // 2


def _require_advance(page_info, after: str | None, what: str) -> None:
    if page_info.hasNextPage and (not page_info.endCursor or page_info.endCursor == after):
        raise MalformedResponse(f"{what}: pageInfo.endCursor: did not advance")


def next_page(response: Response, seen: set[str], *, api_url: str) -> str | None:
    """The Link header's next page, only on the API's own origin: the token goes wherever it points.

    https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
    """
    for link in parse_header_links(response.headers.get("link", "")):
        if link.get("rel") != "next":
            continue
        url = link.get("url", "")
        api, target = urlsplit(api_url), urlsplit(url)
        same_origin = (target.scheme, target.netloc.lower()) == (api.scheme, api.netloc.lower())
        if not same_origin or not target.path.startswith(api.path):
            raise MalformedResponse("a page link that leads away from the API")
        if url in seen or len(seen) >= MAX_PAGES:
            raise MalformedResponse("page links that go round in circles")
        seen.add(url)
        return url
    return None
