"""The shapes of GitHub's answers, and the typed records the client hands out.

Everything GitHub sends is untrusted: an answer is validated against its wire shape (strict: a number
where a string belongs is an error, not a conversion), and each value is cleaned once, as the record
is built. Text loses control characters and lone surrogates, which PostgreSQL cannot store; HTML is
left as it is, plain text to be escaped where it is shown. An implausible email or URL becomes empty;
an implausible id or login makes the record unusable, and it is skipped and counted. A body that does
not fit raises ``MalformedResponse``, whose detail names where and what, never a value (which might
be anything, a token included).
"""

import logging
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from integrations.github.errors import MalformedResponse

logger = logging.getLogger(__name__)

_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
# GitHub makes a slug of the name: lower-case letters, digits, "-", "_" and "." (a name it cannot
# make one of gets its own; https://docs.github.com/en/rest/teams/teams#create-a-team).
_SLUG = re.compile(r"[a-z0-9_.-]{1,255}")
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_WEB_URL = re.compile(r"https?://[A-Za-z0-9.:-]+(?:[/?#][!-~]*)?")


def _clean_text(value: str) -> str:
    return _CONTROL_OR_SURROGATE.sub("", value)[:1024]


def _login(value: str) -> str:
    if not _LOGIN.fullmatch(value):
        raise ValueError("not a GitHub login")
    return value


def _node_id(value: str) -> str:
    if not 0 < len(value) <= 255 or _CONTROL_OR_SURROGATE.search(value):
        raise ValueError("not a node id")
    return value


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError("not a team slug")
    return value


def _email(value: str) -> str:
    return value if "@" in value and len(value) <= 254 and not re.search(r"\s", value) else ""


def _web_url(value) -> str:
    return value if isinstance(value, str) and len(value) <= 2048 and _WEB_URL.fullmatch(value) else ""


GitHubId = Annotated[int, Field(gt=0, lt=2**63)]
Login = Annotated[str, AfterValidator(_login)]
Text = Annotated[str, AfterValidator(_clean_text)]
Email = Annotated[str, AfterValidator(_clean_text), AfterValidator(_email)]
WebUrl = Annotated[str, BeforeValidator(_web_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


# Records: what leaves the client.


class OrganizationMember(_Strict):
    github_id: GitHubId
    node_id: Annotated[str, AfterValidator(_node_id)]
    login: Login
    # None: GitHub did not say (the REST member list carries no names or emails); "" means empty.
    name: Text | None = None
    email: Email | None = None
    avatar_url: WebUrl = ""
    # "unknown": GitHub answered no role (null) for a member it lists all the same.
    role: Literal["admin", "member", "unknown"]


class OrganizationMembership(_Strict):
    """One person's membership of an organization as GitHub says it now. ``member`` is None while
    they are not a member (an invitation not yet accepted, a billing manager's role). ``user_id``: whose
    membership it is, None when GitHub did not say."""

    user_id: int | None
    member: OrganizationMember | None


class MembersPage(_Strict):
    members: list[OrganizationMember]
    total: int | None
    has_next_page: bool
    # Records GitHub sent in a form that cannot be used: the read is then incomplete, and the sync
    # must not deactivate anyone.
    skipped: int = 0


class Team(_Strict):
    """One of the organization's GitHub teams. ``privacy`` as REST names it: "closed" (GraphQL's
    VISIBLE, seen by every member) or "secret". ``parent_id``: the parent team's id, None at the root."""

    github_id: GitHubId
    node_id: Annotated[str, AfterValidator(_node_id)]
    slug: Annotated[str, AfterValidator(_slug)]
    name: Text
    description: Text = ""
    privacy: Literal["closed", "secret"]
    parent_id: GitHubId | None = None


class TeamMembership(_Strict):
    """A member's own place in a team (GraphQL ``membership: IMMEDIATE``): not through a child team."""

    team_id: GitHubId
    github_id: GitHubId
    login: Login
    role: Literal["member", "maintainer"]


class TeamsPage(_Strict):
    """One page of the organization's teams with every immediate membership of each of them."""

    teams: list[Team]
    memberships: list[TeamMembership]
    total: int | None
    has_next_page: bool
    # Teams and memberships GitHub sent in a form that cannot be used, or could not finish listing:
    # the read is then incomplete (as MembersPage.skipped).
    skipped: int = 0


class Organization(_Strict):
    id: GitHubId
    login: Login
    name: Annotated[Text, BeforeValidator(lambda value: value or "")] = ""
    avatar_url: WebUrl = ""


class OAuthToken(_Strict):
    access_token: str = Field(repr=False, min_length=1)
    token_type: str
    scopes: list[str]


class Account(_Strict):
    """A user as GET /user/{account_id} answers: the login it has now."""

    id: GitHubId
    login: Login


class InstallationAccount(Account):
    type: Text  # "Organization" or "User"


class Installation(_Strict):
    """A GitHub App installation as a user may reach it. ``account`` is None when it is not a
    user or organization (an enterprise), which this app cannot connect."""

    id: GitHubId
    account: InstallationAccount | None
    suspended_at: datetime | None = None

    @property
    def on_organization(self) -> bool:
        return self.account is not None and self.account.type == "Organization"


class HookDelivery(_Strict):
    """One attempt at delivering a webhook of the App: a redelivery shares the ``guid`` and has an
    ``id`` of its own. ``status_code`` is 0 when no HTTP answer came (the receiver unreachable).

    https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook
    """

    id: GitHubId
    guid: Annotated[str, Field(min_length=1, max_length=64)]
    delivered_at: Annotated[datetime, Field(strict=False)]
    redelivery: bool
    status: Text
    status_code: int
    event: Text
    action: Text | None = None
    installation_id: GitHubId | None = None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


HOOK_DELIVERIES = TypeAdapter(list[HookDelivery])


class InstallationToken(_Strict):
    """https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app"""

    token: str = Field(repr=False, min_length=1)
    expires_at: Annotated[datetime, Field(strict=False)]


# Wire shapes: GitHub's answers as they come.


class RestMember(_Strict):
    """https://docs.github.com/en/rest/orgs/members#list-organization-members (simple-user)"""

    id: int
    node_id: str
    login: str
    name: str | None = None
    email: str | None = None
    avatar_url: str | None = None

    def fields(self, role: str) -> dict:
        return {
            "github_id": self.id,
            "node_id": self.node_id,
            "login": self.login,
            "name": self.name,
            "email": self.email,
            "avatar_url": self.avatar_url,
            "role": role,
        }


class _WireMembership(_Strict):
    """https://docs.github.com/en/rest/orgs/members#get-organization-membership-for-a-user"""

    state: str
    role: str | None = None
    user: RestMember | None = None

    def fields(self) -> dict | None:
        """The member's fields, or None when the membership does not make them a member."""
        if self.state != "active" or self.user is None or self.role == "billing_manager":
            return None
        role = self.role if self.role in ("admin", "member") else "unknown"
        return self.user.fields(role)


def organization_membership(body: bytes) -> OrganizationMembership:
    wire = parse(_WireMembership, body, "the membership")
    fields = wire.fields()
    member = None if fields is None else validate(OrganizationMember, fields, "the member")
    return OrganizationMembership(user_id=wire.user.id if wire.user else None, member=member)


class _GraphQLUser(_Strict):
    id: str
    databaseId: int
    login: str
    name: str | None = None
    email: str | None = None
    avatarUrl: str | None = None
    organizationVerifiedDomainEmails: list[str] = []


class MemberEdge(_Strict):
    """https://docs.github.com/en/graphql/reference/objects#organizationmemberedge"""

    role: Literal["ADMIN", "MEMBER"] | None
    node: _GraphQLUser

    def fields(self) -> dict:
        node = self.node
        # The public email, else one on the organization's verified domains, where GitHub shows them.
        verified = next((email for email in node.organizationVerifiedDomainEmails if _email(email)), "")
        return {
            "github_id": node.databaseId,
            "node_id": node.id,
            "login": node.login,
            "name": node.name or "",
            "email": node.email or verified,
            "avatar_url": node.avatarUrl,
            "role": self.role.lower() if self.role else "unknown",
        }


class _PageInfo(_Strict):
    hasNextPage: bool
    endCursor: str | None = None


class MembersConnection(_Strict):
    totalCount: Annotated[int, Field(ge=0)]
    pageInfo: _PageInfo
    edges: list[Any]  # validated one by one, so that one unusable record does not sink the page


class _GraphQLOrganization(_Strict):
    login: Login
    viewerIsAMember: bool
    membersWithRole: MembersConnection


class _RateLimit(_Strict):
    resetAt: Annotated[datetime, Field(strict=False)]


class MembersData(_Strict):
    organization: _GraphQLOrganization | None
    rateLimit: _RateLimit | None = None


class GraphQLError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str | None = None
    message: str = ""
    path: list[str | int] = []
    extensions: dict[str, Any] = {}


class GraphQLAnswer(_Strict):
    data: dict[str, Any] | None = None
    errors: list[GraphQLError] = []


class _TeamMemberUser(_Strict):
    databaseId: int
    login: str


class TeamMemberEdge(_Strict):
    """https://docs.github.com/en/graphql/reference/objects#teammemberedge"""

    role: Literal["MAINTAINER", "MEMBER"]
    node: _TeamMemberUser

    def fields(self, team_id: int) -> dict:
        node = self.node
        return {"team_id": team_id, "github_id": node.databaseId, "login": node.login, "role": self.role.lower()}


class _ParentTeam(_Strict):
    databaseId: int | None = None


class TeamNode(_Strict):
    """https://docs.github.com/en/graphql/reference/objects#team, as the teams query asks for it."""

    databaseId: int | None
    id: str
    slug: str
    name: str
    description: str | None = None
    privacy: Literal["SECRET", "VISIBLE"]
    parentTeam: _ParentTeam | None = None
    members: MembersConnection

    def fields(self) -> dict:
        return {
            "github_id": self.databaseId,
            "node_id": self.id,
            "slug": self.slug,
            "name": self.name,
            "description": self.description or "",
            "privacy": "secret" if self.privacy == "SECRET" else "closed",
            "parent_id": self.parentTeam.databaseId if self.parentTeam else None,
        }


class TeamsConnection(_Strict):
    totalCount: Annotated[int, Field(ge=0)]
    pageInfo: _PageInfo
    edges: list[Any]  # validated one by one, as MembersConnection's


class _GraphQLTeamsOrganization(_Strict):
    login: Login
    viewerIsAMember: bool
    teams: TeamsConnection


class TeamsData(_Strict):
    organization: _GraphQLTeamsOrganization | None
    rateLimit: _RateLimit | None = None


class _GraphQLTeamMembers(_Strict):
    databaseId: int | None
    members: MembersConnection


class _GraphQLTeamOrganization(_Strict):
    team: _GraphQLTeamMembers | None


class TeamMembersData(_Strict):
    organization: _GraphQLTeamOrganization | None
    rateLimit: _RateLimit | None = None


def team(edge) -> tuple[Team, TeamNode] | None:
    """The team of one edge of organization.teams and its wire node, or None when it is unusable
    (logged; the caller counts it)."""
    try:
        node = TeamNode.model_validate(edge.get("node") if isinstance(edge, dict) else None)
        return Team.model_validate(node.fields()), node
    except ValidationError as error:
        logger.warning("Skipped an unusable team record; %s", problem_detail(error, "a team"))
        return None


def team_memberships(edges: list, team_id: int, slug: str) -> tuple[list[TeamMembership], int]:
    """The usable memberships among a team's member edges, and how many were not."""
    usable, problems = [], []
    for index, edge in enumerate(edges):
        try:
            usable.append(TeamMembership.model_validate(TeamMemberEdge.model_validate(edge).fields(team_id)))
        except ValidationError as error:
            problems.append(problem_detail(error, f"record {index}"))
    if problems:
        logger.warning("Skipped %d unusable membership records of team %s; %s", len(problems), slug, problems[0])
    return usable, len(problems)


class TokenAnswer(_Strict):
    """https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps"""

    access_token: str | None = None
    token_type: str | None = None
    scope: str = ""
    error: str | None = None


class _WireInstallation(_Strict):
    """https://docs.github.com/en/rest/apps/installations#list-app-installations-accessible-to-the-user-access-token"""

    id: int
    account: dict[str, Any] | None = None
    suspended_at: Annotated[datetime | None, Field(strict=False)] = None


class InstallationsPage(_Strict):
    total_count: int
    installations: list[Any]  # validated one by one: one odd installation does not hide the others


def installations(items: list) -> list[Installation]:
    """The usable installations among a page's items; an account that is no user or organization
    (an enterprise's has no login) is kept as None."""
    usable = []
    for index, item in enumerate(items):
        try:
            usable.append(_installation(_WireInstallation.model_validate(item)))
        except ValidationError as error:
            logger.warning("Skipped an unusable installation record; %s", problem_detail(error, f"record {index}"))
    return usable


def installation(body: bytes) -> Installation:
    """An installation as GET /app/installations/{installation_id} answers it."""
    return _installation(parse(_WireInstallation, body, "the installation"))


def _installation(wire: _WireInstallation) -> Installation:
    try:
        account = InstallationAccount.model_validate(wire.account) if wire.account else None
    except ValidationError:
        account = None
    return Installation(id=wire.id, account=account, suspended_at=wire.suspended_at)


ITEMS = TypeAdapter(list[Any], config=ConfigDict(strict=True))
ORGANIZATIONS = TypeAdapter(list[Organization])
_MEMBERS = TypeAdapter(list[OrganizationMember])
_WIRE_LISTS: dict[type, TypeAdapter[list[Any]]] = {
    RestMember: TypeAdapter(list[RestMember]),
    MemberEdge: TypeAdapter(list[MemberEdge]),
}


def parse(model, body: bytes, what: str):
    """Validate a JSON body into ``model`` (a model class or a TypeAdapter)."""
    validate = model.validate_json if isinstance(model, TypeAdapter) else model.model_validate_json
    try:
        return validate(body)
    except ValidationError as error:
        raise MalformedResponse(problem_detail(error, what)) from None


def validate(model, data, what: str):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise MalformedResponse(problem_detail(error, what)) from None


def members(items: list, wire: type[RestMember | MemberEdge], org_login: str, **fields) -> tuple[list, int]:
    """The usable members among a page's items (REST users or GraphQL edges), and how many were not.
    ``fields`` are passed to the wire shape's ``fields()``."""
    # The whole page in two calls first (a third cheaper than a record at a time); one by one only
    # when some record is unusable, to skip and count it.
    try:
        return _MEMBERS.validate_python([item.fields(**fields) for item in _WIRE_LISTS[wire].validate_python(items)]), 0
    except ValidationError:
        pass
    usable, problems = [], []
    for index, item in enumerate(items):
        try:
            usable.append(OrganizationMember.model_validate(wire.model_validate(item).fields(**fields)))
        except ValidationError as error:
            problems.append(problem_detail(error, f"record {index}"))
    logger.warning("Skipped %d unusable member records of %s; %s", len(problems), org_login, problems[0])
    return usable, len(problems)


def problem_detail(error: ValidationError, what: str) -> str:
    # Only locations and error kinds: the offending values may be anything, tokens included.
    problems = error.errors(include_input=False, include_url=False)
    if any(problem["type"] == "json_invalid" for problem in problems):
        return f"{what}: not valid JSON"
    listed = [f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['type']}" for problem in problems]
    return f"{what}: {'; '.join(listed[:3])}"
