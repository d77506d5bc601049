"""A thin client for the part of GitHub the member sync uses (SPEC §6).

It knows nothing of Django models: it takes a token and returns the typed records of
``records.py``. Everything GitHub sends is validated (``answers.py``) before anything else looks
at it, and every failure a user can act on is raised as one of the exceptions in ``errors.py``
(``error_mapping.py``). The token lives only in the session's headers: it is never logged and
never put in an exception.

Rate limits are not slept through (``rate_limits.py``). 5xx answers and connection failures are
retried with backoff (``transport.py``).
"""

import logging
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote, urlsplit

from django.conf import settings
from requests.utils import parse_header_links

from integrations.github import answers, error_mapping, queries, rate_limits, transport
from integrations.github.errors import GitHubUnavailable, MalformedResponse, OrganizationNotFound
from integrations.github.records import MembersPage, Organization, Viewer
from integrations.github.scopes import READ_ORG, require

logger = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
# GitHub serves at most 100 items a page; when it reports exhausted resources the page size is
# halved, but not below MIN_PAGE_SIZE: past that the query is not the problem.
MAX_PAGE_SIZE = 100
MIN_PAGE_SIZE = 5
MAX_PAGES = 10_000


class _GraphQLMissing(Exception):
    """The server has no GraphQL endpoint (404 on its URL, e.g. an old GitHub Enterprise Server)."""


class GitHubClient:
    """GitHub's REST and GraphQL APIs on behalf of one token.

    Base URLs default to the GITHUB_* settings, so GitHub Enterprise Server works. ``session`` is a
    plain ``requests.Session``: tests may mount their own transport adapter on it.
    """

    def __init__(
        self,
        token: str,
        *,
        api_url=None,
        graphql_url=None,
        web_url=None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_factor: float = 0.5,
    ):
        self.api_url = (api_url or settings.GITHUB_API_URL).rstrip("/")
        self.graphql_url = graphql_url or settings.GITHUB_GRAPHQL_URL
        self.web_url = (web_url or settings.GITHUB_WEB_URL).rstrip("/")
        self.timeout = (timeout, timeout)
        self.api_calls = 0
        self.rate_limit_remaining: int | None = None
        self._graphql_reset_at: datetime | None = None
        self.session = transport.new_session(
            retries=retries,
            backoff_factor=backoff_factor,
            # Every request the client sends only reads, GraphQL queries (POSTs) included.
            resend=True,
            on_retry=self._count_retry,
        )
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            }
        )

    def __repr__(self):
        return f"<GitHubClient {self.api_url}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.session.close()

    def _count_retry(self):
        self.api_calls += 1

    # REST

    def viewer(self) -> Viewer:
        """The account the token belongs to.

        https://docs.github.com/en/rest/users/users#get-the-authenticated-user
        """
        response = self._get(f"{self.api_url}/user")
        return answers.parse(Viewer, response.body, "the authenticated user")

    def viewer_organizations(self) -> list[Organization]:
        """Every organization the token's account belongs to, following the Link header page by page.

        https://docs.github.com/en/rest/orgs/orgs#list-organizations-for-the-authenticated-user
        https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
        """
        organizations = []
        url, params, seen = f"{self.api_url}/user/orgs", {"per_page": MAX_PAGE_SIZE}, set()
        while url:
            response = self._get(url, params=params)
            # Without read:org GitHub lists only the organizations whose membership is public.
            require(response.headers, READ_ORG)
            organizations.extend(answers.parse(answers.ORGANIZATIONS, response.body, "the organization list"))
            url, params = self._next_page(response, seen), None
        return organizations

    def organization(self, login: str) -> Organization:
        """https://docs.github.com/en/rest/orgs/orgs#get-an-organization"""
        response = self._get(f"{self.api_url}/orgs/{quote(login, safe='')}", org_login=login)
        return answers.parse(Organization, response.body, "the organization")

    def iter_member_pages_rest(self, org_login: str, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[MembersPage]:
        """The organization's members over REST, admins first, then members, following the Link
        header. REST lists neither names nor emails (they come out empty) nor a total.

        https://docs.github.com/en/rest/orgs/members#list-organization-members
        """
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        seen = set()
        for role in ("admin", "member"):
            url, params = f"{self.api_url}/orgs/{quote(org_login, safe='')}/members", {"role": role, "per_page": size}
            while url:
                # GitHub redirects a non-member to the public members: that is no access, not a list.
                response = self._request("GET", url, params=params, allow_redirects=False)
                if 300 <= response.status < 400:
                    raise OrganizationNotFound(org_login)
                error_mapping.check_status(response, web_url=self.web_url, org_login=org_login)
                require(response.headers, READ_ORG)
                items = answers.parse(answers.ITEMS, response.body, "the member list")
                members, skipped = answers.rest_members(items, role, org_login)
                url, params = self._next_page(response, seen), None
                yield MembersPage(
                    members=members,
                    total=None,
                    end_cursor=None,
                    has_next_page=bool(url) or role == "admin",
                    skipped=skipped,
                )

    # GraphQL

    def iter_member_pages(self, org_login: str, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[MembersPage]:
        """The organization's members with their roles, one page after another by cursor, as
        GitHub asks. When GitHub stops a query for the resources it used, the same page is asked
        for again at half the size. A server without GraphQL is read over REST instead.

        https://docs.github.com/en/graphql/reference/objects#organization
        https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api
        https://docs.github.com/en/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api
        """
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        cursor = None
        first_request = True
        while True:
            try:
                page = self._member_page(org_login, size, cursor)
            except _GraphQLMissing:
                if not first_request:
                    raise GitHubUnavailable("its GraphQL API stopped answering") from None
                logger.info("No GraphQL API at %s: reading the members over REST", self.graphql_url)
                yield from self.iter_member_pages_rest(org_login, page_size=page_size)
                return
            except error_mapping.ResourceLimitsExceeded:
                if size // 2 < MIN_PAGE_SIZE:
                    raise GitHubUnavailable(f"its resource limits refused even {size} members a page") from None
                size //= 2
                logger.info("GitHub resource limits exceeded: asking for %d members a page", size)
                continue
            first_request = False
            yield page
            if not page.has_next_page:
                return
            cursor = page.end_cursor

    def _member_page(self, login: str, first: int, after: str | None) -> MembersPage:
        response = self._request(
            "POST",
            self.graphql_url,
            json={
                "query": queries.ORGANIZATION_MEMBERS,
                "variables": {"login": login, "first": first, "after": after},
            },
        )
        if response.status == 404:
            raise _GraphQLMissing
        error_mapping.check_status(response, web_url=self.web_url, org_login=login)
        answer = answers.parse(answers.GraphQLAnswer, response.body, "the GraphQL answer")
        broken_edges = error_mapping.check_graphql_errors(
            answer.errors, response.headers, login, web_url=self.web_url, reset_at=self._graphql_reset_at
        )
        data = answers.validate(answers.MembersData, answer.data, "the member page")
        if data.rateLimit is not None:
            self._graphql_reset_at = data.rateLimit.resetAt
        if data.organization is None:
            raise OrganizationNotFound(login)
        connection = data.organization.membersWithRole
        usable = [edge for index, edge in enumerate(connection.edges) if index not in broken_edges]
        members, skipped = answers.graphql_members(usable, login)
        skipped += len(connection.edges) - len(usable)
        page_info = connection.pageInfo
        if page_info.hasNextPage and (not page_info.endCursor or page_info.endCursor == after):
            raise MalformedResponse("the member list: pageInfo.endCursor: did not advance")
        return MembersPage(
            members=members,
            total=connection.totalCount,
            end_cursor=page_info.endCursor,
            has_next_page=page_info.hasNextPage,
            skipped=skipped,
        )

    # HTTP

    def _request(self, method: str, url: str, **kwargs) -> transport.Response:
        # Counted before sending: a request that fails still went out (retries count themselves).
        self.api_calls += 1
        response, redirects = transport.send(self.session, method, url, timeout=self.timeout, **kwargs)
        self.api_calls += redirects
        self.rate_limit_remaining = rate_limits.remaining(response.headers)
        return response

    def _get(self, url: str, *, params=None, org_login: str | None = None) -> transport.Response:
        response = self._request("GET", url, params=params)
        error_mapping.check_status(response, web_url=self.web_url, org_login=org_login)
        return response

    def _next_page(self, response: transport.Response, seen: set[str]) -> str | None:
        """The Link header's next page, only on the API's own origin: the token goes wherever it points.

        https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
        """
        for link in parse_header_links(response.headers.get("link", "")):
            if link.get("rel") != "next":
                continue
            url = link.get("url", "")
            api, target = urlsplit(self.api_url), urlsplit(url)
            if (target.scheme, target.netloc.lower()) != (api.scheme, api.netloc.lower()) or not (
                target.path.startswith(api.path)
            ):
                raise MalformedResponse("a page link that leads away from the API")
            if url in seen or len(seen) >= MAX_PAGES:
                raise MalformedResponse("page links that go round in circles")
            seen.add(url)
            return url
        return None
