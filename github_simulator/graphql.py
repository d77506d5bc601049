"""POST /graphql: a subset of GitHub's schema, with GitHub's own type, field and argument names, executed
with graphql-core, so that aliases, fragments, variables and validation behave as they do on GitHub.

GitHub checks pagination bounds and token scopes before it executes a query, and answers those errors
without data; the simulator finds them while it executes, and then drops the data.
"""

import base64
import binascii
import functools
import json
import time
from dataclasses import dataclass, field

from graphql import GraphQLError, build_schema, execute, parse, validate

from github_simulator import faults
from github_simulator.avatars import avatar_url
from github_simulator.messages import Response, github_error, json_response
from github_simulator.organizations import ADMIN, VIEWER, Member, SimulatedOrg
from github_simulator.teams import SECRET, Team

# Every type, field and argument here is GitHub's (tests/github/test_simulator_conformance.py checks each
# against tests/vendor/github/schema.graphql); the fields are a subset.
SDL = """
scalar DateTime
scalar URI

type Query {
  organization(login: String!): Organization
  rateLimit(dryRun: Boolean = false): RateLimit
  viewer: User!
}

type Organization {
  databaseId: Int
  id: ID!
  login: String!
  membersWithRole(after: String, first: Int): OrganizationMemberConnection!
  team(slug: String!): Team
  teams(
    after: String
    first: Int
    privacy: TeamPrivacy
    rootTeamsOnly: Boolean = false
    userLogins: [String!]
  ): TeamConnection!
  viewerIsAMember: Boolean!
}

type OrganizationMemberConnection {
  edges: [OrganizationMemberEdge]
  nodes: [User]
  pageInfo: PageInfo!
  totalCount: Int!
}

type OrganizationMemberEdge {
  cursor: String!
  node: User
  role: OrganizationMemberRole
}

enum OrganizationMemberRole {
  ADMIN
  MEMBER
}

type PageInfo {
  endCursor: String
  hasNextPage: Boolean!
}

type RateLimit {
  cost: Int!
  limit: Int!
  remaining: Int!
  resetAt: DateTime!
  used: Int!
}

type Team {
  childTeams(after: String, first: Int, immediateOnly: Boolean = true): TeamConnection!
  combinedSlug: String!
  databaseId: Int
  description: String
  id: ID!
  members(
    after: String
    first: Int
    membership: TeamMembershipType = ALL
    role: TeamMemberRole
  ): TeamMemberConnection!
  name: String!
  parentTeam: Team
  privacy: TeamPrivacy!
  slug: String!
}

type TeamConnection {
  edges: [TeamEdge]
  nodes: [Team]
  pageInfo: PageInfo!
  totalCount: Int!
}

type TeamEdge {
  cursor: String!
  node: Team
}

type TeamMemberConnection {
  edges: [TeamMemberEdge]
  nodes: [User]
  pageInfo: PageInfo!
  totalCount: Int!
}

type TeamMemberEdge {
  cursor: String!
  node: User!
  role: TeamMemberRole!
}

enum TeamMemberRole {
  MAINTAINER
  MEMBER
}

enum TeamMembershipType {
  ALL
  CHILD_TEAM
  IMMEDIATE
}

enum TeamPrivacy {
  SECRET
  VISIBLE
}

type User {
  avatarUrl(size: Int): URI!
  databaseId: Int
  email: String!
  id: ID!
  login: String!
  name: String
  organizationVerifiedDomainEmails(login: String!): [String!]!
}
"""
MAX_PAGE = 100
_CURSOR_PREFIX = b"cursor:v2:\x91\xce"
# Errors GitHub finds before it executes a query; it answers them without data.
_REFUSALS = ("INSUFFICIENT_SCOPES", "MISSING_PAGINATION_BOUNDARIES", "EXCESSIVE_PAGINATION")


class GitHubGraphQLError(Exception):
    """An error as GitHub reports it: with a "type" beside the message."""

    def __init__(self, error_type: str, message: str, extensions: dict | None = None):
        super().__init__(message)
        self.type = error_type
        self.message = message
        self.extensions = extensions


@dataclass
class Context:
    simulator: object
    token: object
    budget: object  # already charged for this request
    path: str
    timeout_status: int | None = None  # query_timeout: the whole answer is this status
    emails_forbidden: bool = False  # verified_emails_forbidden
    headers: list = field(default_factory=list)


def handle(simulator, token, budget, request, request_id: str) -> Response:
    body = request.json()
    if not isinstance(body, dict):
        return github_error(400, "Problems parsing JSON", faults.GRAPHQL_DOCS)
    query, variables = body.get("query"), body.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        message = "A query attribute must be specified and must be a string, and variables a JSON object."
        return json_response(200, {"errors": [{"message": message}]})
    document, errors = _document(query)
    if errors:
        return json_response(200, {"errors": list(errors)})
    book = simulator.faults
    context = Context(simulator, token, budget, request.api_path)
    if "organizationVerifiedDomainEmails" in query:
        context.emails_forbidden = bool(book.take(request.api_path, "verified_emails_forbidden"))
    damaged = "membersWithRole" in query and book.take(request.api_path, "null_fields") is not None
    result = execute(
        SCHEMA, document, context_value=context, variable_values=variables, operation_name=body.get("operationName")
    )
    if context.timeout_status:
        return faults.server_error(context.timeout_status, graphql=True, request_id=request_id)
    errors = [_error(error) for error in result.errors or ()]
    if refusals := [error for error in errors if error.get("type") in _REFUSALS]:
        return json_response(200, {"errors": refusals})
    payload = (
        {} if result.data is None else {"data": faults.damage_graphql_members(result.data) if damaged else result.data}
    )
    if errors:
        payload["errors"] = errors
    return json_response(200, payload, context.headers)


def encode_cursor(index: int) -> str:
    """Return an opaque cursor shaped like GitHub's (base64 of "cursor:v2:" and a msgpack'd key)."""
    return base64.b64encode(_CURSOR_PREFIX + index.to_bytes(4, "big")).decode()


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != len(_CURSOR_PREFIX) + 4 or not raw.startswith(_CURSOR_PREFIX):
        raise GitHubGraphQLError("INVALID_CURSOR_ARGUMENTS", f"`{cursor}` does not appear to be a valid cursor.")
    return int.from_bytes(raw[len(_CURSOR_PREFIX) :], "big")


# Resolvers. Objects are dicts, read by graphql-core's default resolver; "_org" and "_member" keep what
# the fields with arguments need.


def _organization(_root, info, login):
    context = info.context
    org = context.simulator.orgs.find(login)
    fault = context.simulator.faults.take(context.path, *faults.ORGANIZATION_FAULTS) if org else None
    if org is None or (fault and fault.name == "org_not_found"):
        raise GitHubGraphQLError("NOT_FOUND", f"Could not resolve to an Organization with the login of '{login}'.")
    if fault and fault.name == "sso_required":
        context.headers.append(faults.sso_header(context.simulator.url, org.login))
        raise GitHubGraphQLError("FORBIDDEN", faults.SSO_MESSAGE, {"saml_failure": True})
    if fault:
        raise GitHubGraphQLError("FORBIDDEN", faults.access_restricted_message(org.login))
    return {
        "_org": org,
        "databaseId": org.id,
        "id": org.node_id,
        "login": org.login,
        # An installation's bot is a member of no organization, though it sees every member of its own.
        "viewerIsAMember": org.viewer_is_member and context.token.installation is None,
    }


def _members(source, info, after=None, first=None):
    context = info.context
    org: SimulatedOrg = source["_org"]
    _check_page(info, first)
    book = context.simulator.faults

    def too_big(fault):
        return first > fault.options["max_first"]

    if timeout := book.take(context.path, "query_timeout", when=too_big):
        context.timeout_status = timeout.options["status"]
    if book.take(context.path, "resource_limits", when=too_big):
        raise GitHubGraphQLError("RESOURCE_LIMITS_EXCEEDED", "Resource limits for this query exceeded.")
    # GitHub shows a viewer outside the organization its public members only, without a word.
    public_only = not context.token.sees_every_member(org)
    cursor = _decode_cursor(after)
    org.wait_while_held(0 if cursor is None else cursor + 1)
    members, has_next = org.page(first, cursor, public_only=public_only)
    null_roles = book.take(context.path, "null_roles")
    edges = [
        {
            "cursor": encode_cursor(member.index),
            "node": _user(member, info.context.simulator.url),
            "role": None if null_roles and faults.role_withheld(null_roles, member.login) else member.role,
        }
        for member in members
    ]
    return {
        "totalCount": org.count(public_only=public_only),
        "pageInfo": {"hasNextPage": has_next, "endCursor": edges[-1]["cursor"] if edges else None},
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
    }


def _check_page(info, first, connection="membersWithRole") -> None:
    token = info.context.token
    if token.installation is not None and not token.grants("read:org"):
        # An App's token has permissions, not scopes: GitHub says FORBIDDEN, and the field is null.
        raise GitHubGraphQLError("FORBIDDEN", "Resource not accessible by integration")
    if not token.grants("read:org"):
        granted = "[" + ", ".join(f"'{scope}'" for scope in token.scopes) + "]"
        message = (
            f"Your token has not been granted the required scopes to execute this query. The '{connection}' field "
            f"requires one of the following scopes: ['read:org'], but your token has only been granted the: {granted} "
            f"scopes. Please modify your token's scopes at: {info.context.simulator.url}/settings/tokens."
        )
        raise GitHubGraphQLError("INSUFFICIENT_SCOPES", message)
    if first is None:
        message = f"You must provide a `first` or `last` value to properly paginate the `{connection}` connection."
        raise GitHubGraphQLError("MISSING_PAGINATION_BOUNDARIES", message)
    if not 1 <= first <= MAX_PAGE:
        message = (
            f"Requesting {first} records on the `{connection}` connection exceeds the `first` limit of 100 records."
        )
        raise GitHubGraphQLError("EXCESSIVE_PAGINATION", message)


# Teams: listed in GitHub's order (by slug), to each token the teams visible to it (Teams.visible_to).
# A team's cursor holds its place in that order (slug and id), so that paging survives a team deleted
# or created meanwhile; a team member's cursor is the member's, members being in the order of ids.


def _encode_team_cursor(team: Team) -> str:
    key = json.dumps([team.slug, team.id], separators=(",", ":")).encode()
    return base64.b64encode(_CURSOR_PREFIX[:-2] + b"\x92" + key).decode()


def _decode_team_cursor(cursor: str | None) -> tuple[str, int] | None:
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor, validate=True)
        prefix = _CURSOR_PREFIX[:-2] + b"\x92"
        if raw.startswith(prefix):
            slug, team_id = json.loads(raw[len(prefix) :])
            if isinstance(slug, str) and isinstance(team_id, int):
                return slug, team_id
    except (binascii.Error, ValueError, TypeError):
        pass
    raise GitHubGraphQLError("INVALID_CURSOR_ARGUMENTS", f"`{cursor}` does not appear to be a valid cursor.")


def _team_connection(org: SimulatedOrg, teams: list[Team], first: int, after: str | None) -> dict:
    key = _decode_team_cursor(after)
    following = [team for team in teams if key is None or (team.slug, team.id) > key]
    edges = [{"cursor": _encode_team_cursor(team), "node": _team_object(org, team)} for team in following[:first]]
    return {
        "totalCount": len(teams),
        "pageInfo": {"hasNextPage": len(following) > first, "endCursor": edges[-1]["cursor"] if edges else None},
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
    }


def _team_object(org: SimulatedOrg, team: Team) -> dict:
    return {
        "_org": org,
        "_team": team,
        "combinedSlug": f"{org.login}/{team.slug}",
        "databaseId": team.id,
        "description": team.description,
        "id": team.node_id,
        "name": team.name,
        "privacy": "SECRET" if team.privacy == SECRET else "VISIBLE",
        "slug": team.slug,
    }


def _org_teams(source, info, first=None, after=None, privacy=None, rootTeamsOnly=False, userLogins=None):  # noqa: N803
    org: SimulatedOrg = source["_org"]
    _check_page(info, first, "teams")
    teams = org.teams.visible_to(info.context.token)
    if privacy is not None:
        teams = [team for team in teams if (team.privacy == SECRET) == (privacy == "SECRET")]
    if rootTeamsOnly:
        teams = [team for team in teams if team.parent_id is None]
    if userLogins is not None:
        indices = {member.index for login in userLogins if (member := org.member_by_login(login))}
        teams = [team for team in teams if indices.intersection(team.members)]
    return _team_connection(org, teams, first, after)


def _org_team(source, info, slug):
    org: SimulatedOrg = source["_org"]
    team = org.teams.find(slug)
    return _team_object(org, team) if team is not None and team in org.teams.visible_to(info.context.token) else None


def _parent_team(source, info):
    parent = source["_org"].teams.parent(source["_team"])
    return None if parent is None else _team_object(source["_org"], parent)


def _child_teams(source, info, first=None, after=None, immediateOnly=True):  # noqa: N803
    org, team = source["_org"], source["_team"]
    _check_page(info, first, "childTeams")
    teams = org.teams.children(team) if immediateOnly else org.teams.descendants(team)
    return _team_connection(org, teams, first, after)


def _team_members(source, info, first=None, after=None, membership="ALL", role=None):
    """A team's members: its own (IMMEDIATE), its child teams' (CHILD_TEAM) or both (ALL, GitHub's
    default), each edge with the member's role on the team: MAINTAINER or MEMBER (a member through a
    child team only is a MEMBER)."""
    org, team = source["_org"], source["_team"]
    _check_page(info, first, "members")
    roles = org.teams.memberships(team, membership)
    listed = [(index, member_role) for index, member_role in roles.items() if role in (None, member_role.upper())]
    start = _decode_cursor(after)
    following = [(index, member_role) for index, member_role in listed if start is None or index > start]
    web_url = info.context.simulator.url
    edges = [
        {"cursor": encode_cursor(index), "node": _user(org.member(index), web_url), "role": member_role.upper()}
        for index, member_role in following[:first]
    ]
    return {
        "totalCount": len(listed),
        "pageInfo": {"hasNextPage": len(following) > first, "endCursor": edges[-1]["cursor"] if edges else None},
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
    }


def _user(member: Member, web_url: str) -> dict:
    return {
        "avatarUrl": avatar_url(web_url, member.database_id),
        "databaseId": member.database_id,
        "email": member.email,
        "id": member.node_id,
        "login": member.login,
        "name": member.name,
    }


def _verified_emails(user, info, login) -> list[str]:
    """Return the user's emails on the organization's verified domains, which GitHub shows an owner of
    the organization only."""
    context = info.context
    if context.emails_forbidden:
        message = f"You must be an owner of the organization {login} to read its members' verified domain emails."
        raise GitHubGraphQLError("FORBIDDEN", message)
    org = context.simulator.orgs.find(login)
    if org is None or not _reads_verified_emails(context.token, org):
        return []
    member = org.member_by_login(user["login"])
    if member is None or member.database_id != user["databaseId"] or not member.verified_email:
        return []
    return [f"{member.login.lower()}@{org.verified_domain}"]


def _reads_verified_emails(token, org) -> bool:
    """An owner of the organization may read them, and an App installed on it with the members permission."""
    if token.installation is not None:
        return token.installation.org_id == org.id
    return org.viewer_is_member and org.role_of(VIEWER.index) == ADMIN


def _rate_limit(_root, info, **_arguments):
    context = info.context
    budget = context.budget
    if budget.limit is None:
        return None  # rate limiting off: GitHub Enterprise Server answers no rateLimit
    return {
        "cost": 1,
        "limit": budget.limit,
        "remaining": budget.remaining,
        "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(budget.reset_at)),
        "used": budget.used,
    }


SCHEMA = build_schema(SDL)
SCHEMA.query_type.fields["organization"].resolve = _organization
SCHEMA.query_type.fields["rateLimit"].resolve = _rate_limit
SCHEMA.query_type.fields["viewer"].resolve = lambda _root, info: _user(VIEWER, info.context.simulator.url)
SCHEMA.type_map["Organization"].fields["membersWithRole"].resolve = _members
SCHEMA.type_map["User"].fields["organizationVerifiedDomainEmails"].resolve = _verified_emails
SCHEMA.type_map["Organization"].fields["teams"].resolve = _org_teams
SCHEMA.type_map["Organization"].fields["team"].resolve = _org_team
SCHEMA.type_map["Team"].fields["parentTeam"].resolve = _parent_team
SCHEMA.type_map["Team"].fields["childTeams"].resolve = _child_teams
SCHEMA.type_map["Team"].fields["members"].resolve = _team_members


@functools.lru_cache(maxsize=256)
def _document(query: str):
    """Return the parsed document and no errors, or None and the validation errors; cached because a
    client sends the same few documents over and over."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, (_error(error),)
    errors = validate(SCHEMA, document)
    return (None, tuple(_error(error) for error in errors)) if errors else (document, ())


def _error(error: GraphQLError) -> dict:
    """Return an error as GitHub words it: with its type when it is GitHub's own."""
    original = error.original_error
    if not isinstance(original, GitHubGraphQLError):
        return error.formatted
    extensions = {"extensions": original.extensions} if original.extensions else {}
    return {"type": original.type, **error.formatted, **extensions}
