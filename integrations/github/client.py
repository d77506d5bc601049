"""A thin client for the part of GitHub the member sync uses (SPEC §6).

It knows nothing of Django models: it takes a token and returns typed records. Everything GitHub
sends is validated into pydantic models before anything else looks at it, and every failure a
user can act on is raised as one of the exceptions in ``errors.py``. The token lives only in the
session's headers: it is never logged and never put in an exception.

Rate limits are not slept through: ``RateLimited`` carries ``reset_at`` and the caller (a Dramatiq
actor) retries then. 5xx answers and connection failures are retried here, with backoff.
"""

import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import quote, urlencode, urlsplit

import requests
import urllib3
from django.conf import settings
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links
from urllib3.util.retry import Retry

from integrations.github import queries
from integrations.github.errors import (
    SAML_SSO_DOC,
    AccessRestricted,
    BadCredentials,
    GitHubError,
    GitHubUnavailable,
    MalformedResponse,
    OAuthError,
    OrganizationNotFound,
    RateLimited,
    ScopeMissing,
    SSORequired,
)

logger = logging.getLogger(__name__)

USER_AGENT = "member-sync"
API_VERSION = "2022-11-28"
READ_ORG = "read:org"
# GitHub serves at most 100 items a page; when it reports exhausted resources the page size is
# halved, but not below MIN_PAGE_SIZE: past that the query is not the problem.
MAX_PAGE_SIZE = 100
MIN_PAGE_SIZE = 5
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_PAGES = 10_000
# "Otherwise, wait for at least one minute before retrying" (secondary rate limits, no headers).
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=1)
# Primary windows are an hour long: a reset further away than that is not to be believed.
MAX_RATE_LIMIT_WAIT = timedelta(hours=1)
RETRIED_STATUSES = (500, 502, 503, 504)

# A scope grants the scopes listed with it ("Normalized scopes" in GitHub's scope documentation):
# asking for read:org from a user who already granted admin:org yields a token with admin:org.
_IMPLIED_SCOPES = {
    "admin:org": ("write:org", "read:org"),
    "write:org": ("read:org",),
    "user": ("read:user", "user:email", "user:follow"),
}


def _now() -> datetime:
    return datetime.now(UTC)


# Values GitHub sends are untrusted. Text is stripped of control characters and lone surrogates,
# which PostgreSQL and UTF-8 cannot store and which have no business in a name; HTML is left as
# it is, since it is plain text to be escaped where it is shown.
_MAX_TEXT = 1024
_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


def _clean(value: str) -> str:
    return "".join(char for char in value if unicodedata.category(char) not in ("Cc", "Cs"))[:_MAX_TEXT]


def _null_to_empty(value):
    return "" if value is None else value


def _login(value: str) -> str:
    if not _LOGIN.fullmatch(value):
        raise ValueError("not a GitHub login")
    return value


def _node_id(value: str) -> str:
    if not 0 < len(value) <= 255 or _clean(value) != value:
        raise ValueError("not a node id")
    return value


def _email(value: str) -> str:
    plausible = "@" in value and len(value) <= 254 and not any(char.isspace() for char in value)
    return value if plausible else ""


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    plausible = (
        parts.scheme in ("https", "http")
        and bool(parts.netloc)
        and len(value) <= 2048
        and not any(char.isspace() or unicodedata.category(char) == "Cc" for char in value)
    )
    return value if plausible else ""


GitHubId = Annotated[int, Field(gt=0, lt=2**63)]
Login = Annotated[str, AfterValidator(_login)]
NodeId = Annotated[str, AfterValidator(_node_id)]
Text = Annotated[str, BeforeValidator(_null_to_empty), AfterValidator(_clean)]
Email = Annotated[str, BeforeValidator(_null_to_empty), AfterValidator(_clean), AfterValidator(_email)]
WebUrl = Annotated[str, BeforeValidator(_null_to_empty), AfterValidator(_web_url)]


class _Model(BaseModel):
    # strict: a number where a string belongs (or the other way round) is an error, not a conversion.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class OrganizationMember(_Model):
    github_id: GitHubId
    node_id: NodeId
    login: Login
    name: Text = ""
    email: Email = ""
    avatar_url: WebUrl = ""
    role: Literal["admin", "member"]


class MembersPage(_Model):
    members: list[OrganizationMember]
    total: int | None
    end_cursor: str | None
    has_next_page: bool
    # Records GitHub sent in a form that cannot be used: the read is then incomplete, and the sync
    # must not deactivate anyone.
    skipped: int = 0


class Organization(_Model):
    id: GitHubId
    login: Login
    name: Text = ""
    avatar_url: WebUrl = ""


class Viewer(_Model):
    id: GitHubId
    login: Login
    name: Text = ""


class OAuthToken(_Model):
    access_token: str = Field(repr=False, min_length=1)
    token_type: str
    scopes: list[str]


# The shapes GitHub answers with, before they become the records above.


class _RestMember(_Model):
    id: GitHubId
    node_id: NodeId
    login: Login
    # GitHub's simple-user schema allows name and email, though the member list seldom fills them.
    name: Text = ""
    email: Email = ""
    avatar_url: WebUrl = ""

    def member(self, role) -> OrganizationMember:
        return OrganizationMember(
            github_id=self.id,
            node_id=self.node_id,
            login=self.login,
            name=self.name,
            email=self.email,
            avatar_url=self.avatar_url,
            role=role,
        )


class _GraphQLUser(_Model):
    id: NodeId
    databaseId: GitHubId
    login: Login
    name: Text = ""
    email: Email = ""
    avatarUrl: WebUrl = ""


class _MemberEdge(_Model):
    role: Literal["ADMIN", "MEMBER"]
    node: _GraphQLUser

    def member(self) -> OrganizationMember:
        return OrganizationMember(
            github_id=self.node.databaseId,
            node_id=self.node.id,
            login=self.node.login,
            name=self.node.name,
            email=self.node.email,
            avatar_url=self.node.avatarUrl,
            role=self.role.lower(),
        )


class _PageInfo(_Model):
    hasNextPage: bool
    endCursor: str | None = None


class _MembersConnection(_Model):
    totalCount: Annotated[int, Field(ge=0)]
    pageInfo: _PageInfo
    # Each edge is validated on its own, so that one unusable record does not sink the page.
    edges: list[Any]


class _GraphQLOrganization(_Model):
    login: Login
    membersWithRole: _MembersConnection


class _RateLimit(_Model):
    remaining: int
    resetAt: Annotated[datetime, Field(strict=False)]


class _MembersData(_Model):
    organization: _GraphQLOrganization | None
    rateLimit: _RateLimit | None = None


class _ErrorExtensions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    saml_failure: bool = False
    code: str | None = None


class _GraphQLError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str | None = None
    code: str | None = None
    message: str = ""
    path: list[str | int] | None = None
    extensions: _ErrorExtensions | None = None


class _GraphQLAnswer(_Model):
    data: dict[str, Any] | None = None
    errors: list[_GraphQLError] = []


class _RestErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = ""


class _TokenAnswer(_Model):
    access_token: str | None = None
    token_type: str | None = None
    scope: str = ""
    error: str | None = None


_ITEMS = TypeAdapter(list[Any], config=ConfigDict(strict=True))
_ORGANIZATIONS = TypeAdapter(list[Organization])


class _Response(NamedTuple):
    status: int
    headers: CaseInsensitiveDict
    body: bytes


class _GraphQLMissing(Exception):
    """The server has no GraphQL endpoint (404 on its URL, e.g. an old GitHub Enterprise Server)."""


class _ResourceLimitsExceeded(Exception):
    """GitHub stopped the query for the resources it used: a smaller page may go through."""


def _validation_detail(error: ValidationError, what: str) -> str:
    # Only locations and error kinds: the offending values may be anything, tokens included.
    if any(problem["type"] == "json_invalid" for problem in error.errors(include_input=False, include_url=False)):
        return f"{what}: not valid JSON"
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['type']}"
        for problem in error.errors(include_input=False, include_url=False)[:3]
    ]
    return f"{what}: {'; '.join(problems)}"


def _parse(model, body: bytes, what: str):
    """Validate a JSON body into ``model`` (a model class or a TypeAdapter)."""
    validate = model.validate_json if isinstance(model, TypeAdapter) else model.model_validate_json
    try:
        return validate(body)
    except ValidationError as error:
        raise MalformedResponse(_validation_detail(error, what)) from None


def _validate(model, data, what: str):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise MalformedResponse(_validation_detail(error, what)) from None


def _int_header(headers, name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else None


def _scope_list(value: str) -> list[str]:
    return [scope.strip() for scope in value.split(",") if scope.strip()]


def _grants(granted: Sequence[str], scope: str) -> bool:
    return any(scope == held or scope in _IMPLIED_SCOPES.get(held, ()) for held in granted)


def _wait_until(seconds: int, now: datetime) -> datetime:
    return now + min(timedelta(seconds=max(seconds, 1)), MAX_RATE_LIMIT_WAIT)


def _reset_at(epoch: int, now: datetime) -> datetime:
    try:
        reset = datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return now + DEFAULT_RATE_LIMIT_WAIT
    return min(max(reset, now + timedelta(seconds=1)), now + MAX_RATE_LIMIT_WAIT)


def _members(items: list, to_member: Callable[[Any], OrganizationMember], org_login: str):
    """The members among ``items``, and how many were unusable."""
    members, problems = [], []
    for index, item in enumerate(items):
        try:
            members.append(to_member(item))
        except ValidationError as error:
            problems.append(_validation_detail(error, f"record {index}"))
    if problems:
        logger.warning("Skipped %d unusable member records of %s; %s", len(problems), org_login, problems[0])
    return members, len(problems)


def _read_body(response: requests.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise MalformedResponse(f"an answer larger than {MAX_BODY_BYTES // 2**20} MB")
    return bytes(body)


class _CountingRetry(Retry):
    """urllib3's Retry, reporting each retry so that ``api_calls`` counts every attempt."""

    def __init__(self, *args, on_retry: Callable[[], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_retry = on_retry

    def new(self, **kwargs):
        retry = super().new(**kwargs)
        retry.on_retry = self.on_retry
        return retry

    def increment(self, *args, **kwargs):
        retry = super().increment(*args, **kwargs)
        if self.on_retry is not None:
            self.on_retry()
        return retry


def _session(*, retries: int, backoff_factor: float, resend: bool, on_retry=None) -> requests.Session:
    """A session that retries failed connections and, if ``resend``, requests that reached GitHub but
    failed there (5xx, broken or timed-out answers), with backoff.

    https://urllib3.readthedocs.io/en/stable/reference/urllib3.util.html#urllib3.util.Retry
    """
    retry = _CountingRetry(
        total=retries,
        connect=retries,
        read=retries if resend else 0,
        status=retries if resend else 0,
        other=0,
        allowed_methods=frozenset({"GET", "POST"}),
        status_forcelist=RETRIED_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=10,
        # The last 5xx answer comes back as an answer, mapped to GitHubUnavailable like any other.
        raise_on_status=False,
        # A Retry-After on a 5xx must not park the worker: retry with the backoff, or give up.
        respect_retry_after_header=False,
        on_retry=on_retry,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def _timed_out(error: requests.RequestException) -> bool:
    # Once retries are used up, requests reports a read timeout as a ConnectionError around urllib3's.
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.Timeout) or isinstance(reason, urllib3.exceptions.TimeoutError)


def _send(session, method, url, *, timeout, **kwargs) -> tuple[_Response, int]:
    """One request, its body read (to a limit); returns the answer and the number of redirects followed."""
    try:
        with session.request(method, url, timeout=timeout, stream=True, **kwargs) as response:
            body = _read_body(response)
            return _Response(response.status_code, response.headers, body), len(response.history)
    except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        # The exception holds the request and its Authorization header: it is not chained.
        logger.warning("GitHub request %s %s failed: %s", method, urlsplit(url).path, type(error).__name__)
        raise GitHubUnavailable("no answer in time" if _timed_out(error) else "the connection failed") from None
    except requests.exceptions.RetryError:
        raise GitHubUnavailable("it kept failing") from None
    except requests.exceptions.ContentDecodingError:
        raise MalformedResponse("an answer that could not be decoded") from None


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
    session = session or _session(retries=3, backoff_factor=0.5, resend=False)
    try:
        response, _ = _send(
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
    answer = _parse(_TokenAnswer, response.body, "the access token answer")
    if answer.error is not None:
        raise OAuthError(answer.error)
    if not answer.access_token:
        raise MalformedResponse("the access token answer: access_token: missing")
    token = OAuthToken(
        access_token=answer.access_token, token_type=answer.token_type or "bearer", scopes=_scope_list(answer.scope)
    )
    for scope in required_scopes:
        if not _grants(token.scopes, scope):
            raise ScopeMissing(scope)
    return token


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
        self.session = _session(
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
        return _parse(Viewer, response.body, "the authenticated user")

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
            self._require_scope(response.headers, READ_ORG)
            organizations.extend(_parse(_ORGANIZATIONS, response.body, "the organization list"))
            url, params = self._next_page(response, seen), None
        return organizations

    def organization(self, login: str) -> Organization:
        """https://docs.github.com/en/rest/orgs/orgs#get-an-organization"""
        response = self._get(f"{self.api_url}/orgs/{quote(login, safe='')}", org_login=login)
        return _parse(Organization, response.body, "the organization")

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
                self._check_status(response, org_login=org_login)
                self._require_scope(response.headers, READ_ORG)
                members, skipped = _members(
                    _parse(_ITEMS, response.body, "the member list"),
                    lambda item, role=role: _RestMember.model_validate(item).member(role),
                    org_login,
                )
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
            except _ResourceLimitsExceeded:
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
        self._check_status(response, org_login=login)
        answer = _parse(_GraphQLAnswer, response.body, "the GraphQL answer")
        broken_edges = self._check_graphql_errors(answer.errors, response.headers, login)
        data = _validate(_MembersData, answer.data, "the member page")
        if data.rateLimit is not None:
            self._graphql_reset_at = data.rateLimit.resetAt
        if data.organization is None:
            raise OrganizationNotFound(login)
        connection = data.organization.membersWithRole
        usable = [edge for index, edge in enumerate(connection.edges) if index not in broken_edges]
        members, skipped = _members(usable, lambda edge: _MemberEdge.model_validate(edge).member(), login)
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

    def _check_graphql_errors(self, errors: list[_GraphQLError], headers, login: str) -> set[int]:
        """Raise for the errors GitHub reported; return the member edges an error made unusable.

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
            message = kinds["rate_limited"].message
            raise self._rate_limit(headers, message, force=True, fallback=self._graphql_reset_at)
        if "resource_limits" in kinds:
            raise _ResourceLimitsExceeded
        if "scopes" in kinds:
            raise ScopeMissing(_scope_in_message(kinds["scopes"].message))
        self._require_scope(headers, READ_ORG)
        if "sso" in kinds:
            raise SSORequired(self._sso_url(headers.get("x-github-sso"), login))
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

    # HTTP

    def _request(self, method: str, url: str, **kwargs) -> _Response:
        # Counted before sending: a request that fails still went out (retries count themselves).
        self.api_calls += 1
        response, redirects = _send(self.session, method, url, timeout=self.timeout, **kwargs)
        self.api_calls += redirects
        self.rate_limit_remaining = _int_header(response.headers, "x-ratelimit-remaining")
        return response

    def _get(self, url: str, *, params=None, org_login: str | None = None) -> _Response:
        response = self._request("GET", url, params=params)
        self._check_status(response, org_login=org_login)
        return response

    def _check_status(self, response: _Response, *, org_login: str | None = None):
        """Map an HTTP error status to the exception a user can act on.

        https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
        """
        status, headers = response.status, response.headers
        if status < 300:
            return
        if status == 401:
            raise BadCredentials
        if status in (403, 429):
            message = _error_message(response.body)
            if (rate_limited := self._rate_limit(headers, message, force=status == 429)) is not None:
                raise rate_limited
            if _sso_required(headers.get("x-github-sso")) or "saml enforcement" in message.lower():
                raise SSORequired(self._sso_url(headers.get("x-github-sso"), org_login))
            if "oauth app access restrictions" in message.lower():
                raise AccessRestricted(org_login or "")
            if (scope := _missing_accepted_scope(headers)) is not None:
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

    def _rate_limit(self, headers, message: str, *, force=False, fallback=None) -> RateLimited | None:
        """The wait GitHub asks for, if this answer is a rate limit.

        https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit
        """
        now = _now()
        if (retry_after := _int_header(headers, "retry-after")) is not None:
            return RateLimited(_wait_until(retry_after, now))
        if _int_header(headers, "x-ratelimit-remaining") == 0:
            reset = _int_header(headers, "x-ratelimit-reset")
            return RateLimited(_reset_at(reset, now) if reset is not None else now + DEFAULT_RATE_LIMIT_WAIT)
        lowered = message.lower()
        if force or "rate limit" in lowered or "abuse detection" in lowered:
            if fallback is not None and now < fallback <= now + MAX_RATE_LIMIT_WAIT:
                return RateLimited(fallback)
            return RateLimited(now + DEFAULT_RATE_LIMIT_WAIT)
        return None

    def _require_scope(self, headers, scope: str):
        """GitHub lists the token's scopes in X-OAuth-Scopes (OAuth and classic tokens only; others
        send no such header). Without read:org GitHub quietly leaves private members out.

        https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps
        """
        granted = headers.get("x-oauth-scopes")
        if granted is not None and not _grants(_scope_list(granted), scope):
            raise ScopeMissing(scope)

    def _sso_url(self, header: str | None, login: str | None) -> str:
        """The URL to authorize the token at, from ``X-GitHub-SSO: required; url=…``, if it points to
        GitHub itself; otherwise the organization's single sign-on page, or GitHub's documentation.

        https://docs.github.com/en/rest/overview/other-authentication-methods#authenticating-for-saml-sso
        """
        for part in (header or "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name == "url" and _web_url(value) and urlsplit(value).netloc == urlsplit(self.web_url).netloc:
                return value
        if login:
            return f"{self.web_url}/orgs/{quote(login, safe='')}/sso"
        return SAML_SSO_DOC

    def _next_page(self, response: _Response, seen: set[str]) -> str | None:
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


def _error_message(body: bytes) -> str:
    try:
        return _RestErrorBody.model_validate_json(body).message
    except ValidationError:
        return ""


def _sso_required(header: str | None) -> bool:
    # The same header says "partial-results; organizations=…" on lists that merely leave some out.
    return (header or "").split(";")[0].strip().lower() == "required"


def _missing_accepted_scope(headers) -> str | None:
    """The scope to ask for when X-Accepted-OAuth-Scopes names scopes the token has none of."""
    accepted = _scope_list(headers.get("x-accepted-oauth-scopes", ""))
    granted = headers.get("x-oauth-scopes")
    if not accepted or granted is None or any(_grants(_scope_list(granted), scope) for scope in accepted):
        return None
    return READ_ORG if READ_ORG in accepted else accepted[0]


def _scope_in_message(message: str) -> str:
    """INSUFFICIENT_SCOPES messages name the scopes the field needs: "… requires one of the
    following scopes: ['read:org'], …"."""
    match = re.search(r"following scopes: \[([^\]]*)\]", message)
    needed = re.findall(r"'([a-z_:]+)'", match.group(1)) if match else []
    return READ_ORG if READ_ORG in needed or not needed else needed[0]


def _graphql_error_kind(error: _GraphQLError) -> str:
    kind = (error.type or "").upper()
    message = error.message.lower()
    extensions = error.extensions or _ErrorExtensions()
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
