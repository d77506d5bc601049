"""The REST endpoints the product uses. Every body follows the response schema of its operation in
GitHub's OpenAPI descriptions (tests/vendor/github/rest.*.json: github.com's and Enterprise Server's)."""

import re
import time
from dataclasses import dataclass
from itertools import islice
from urllib.parse import unquote, urlencode

from github_simulator.avatars import avatar_url
from github_simulator.faults import (
    ORGANIZATION_FAULTS,
    REST_DOCS,
    SAML_DOCS,
    SSO_MESSAGE,
    access_restricted_message,
    damage_rest_users,
    role_withheld,
    sso_header,
)
from github_simulator.messages import Response, github_error, json_response, redirect
from github_simulator.organizations import ADMIN, MEMBER, VIEWER, Member, SimulatedOrg
from github_simulator.teams import MAINTAINER, Team

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern
    view: object  # (simulator, token, request, **path parameters) -> Response
    accepted_scopes: str = ""  # the X-Accepted-OAuth-Scopes header
    charged: bool = True  # whether the call spends a point of the rate limit
    for_users: bool = False  # about the token's user, whom an installation token has not


def route(path: str) -> tuple[Route, dict] | None:
    for candidate in ROUTES:
        if match := candidate.pattern.fullmatch(path):
            return candidate, {name: value and unquote(value) for name, value in match.groupdict().items()}
    return None


def _user(simulator, token, request):
    body = {**_simple_user(VIEWER, request.api_url, simulator.url), **_profile(VIEWER)}
    # Private profile fields need the user scope; without it GitHub answers the public profile.
    if token.grants("user"):
        body.update(_PRIVATE_PROFILE)
    return json_response(200, body)


def _user_orgs(simulator, token, request):
    if not any(token.grants(scope) for scope in ("read:org", "user", "repo")):
        message = "You need at least read:org scope or user scope to list your organizations."
        return github_error(403, message, REST_DOCS)
    orgs = [org for org in simulator.orgs if org.viewer_is_member]
    headers = []
    # An organization with SAML SSO the token is not authorized for is left out, and named by id.
    if partial := simulator.faults.take(request.api_path, "sso_partial"):
        hidden = {login.lower() for login in partial.options["orgs"]}
        if ids := [str(org.id) for org in orgs if org.login.lower() in hidden]:
            headers.append(("X-GitHub-SSO", f"partial-results; organizations={','.join(ids)}"))
        orgs = [org for org in orgs if org.login.lower() not in hidden]
    page, per_page = _paging(request)
    body = [_simple_org(org, request.api_url, simulator.url) for org in orgs[(page - 1) * per_page : page * per_page]]
    link = _link(f"{request.api_url}/user/orgs", request, page, _pages(len(orgs), per_page))
    return json_response(200, body, headers + link)


def _organization(simulator, token, request, org=None, org_id=None):
    found, refusal = _find_org(simulator, request, login=org, org_id=org_id)
    return refusal or json_response(200, _full_org(found, request.api_url, simulator.url))


def _members(simulator, token, request, org=None, org_id=None, public=False):
    found, refusal = _find_org(simulator, request, login=org, org_id=org_id)
    if refusal:
        return refusal
    base = f"{request.api_url}/organizations/{found.id}/{'public_members' if public else 'members'}"
    # A token whose user is no member gets the public members only, with 200 and no word of it.
    public = public or not token.sees_every_member(found)
    role = request.query.get("role", "all")
    if role not in ("all", "admin", "member"):
        errors = [{"resource": "OrganizationMember", "field": "role", "code": "invalid"}]
        body = {"message": "Validation Failed", "errors": errors, "documentation_url": REST_DOCS, "status": "422"}
        return json_response(422, body)
    page, per_page = _paging(request)
    start = (page - 1) * per_page
    found.wait_while_held(start)
    if role == "all":
        indices = list(islice(found.indices(public_only=public), start, start + per_page))
        count = found.count(public_only=public)
    else:
        wanted = ADMIN if role == "admin" else MEMBER
        matching = [index for index in found.indices(public_only=public) if found.role_of(index) == wanted]
        indices, count = matching[start : start + per_page], len(matching)
    body = [_simple_user(found.member(index), request.api_url, simulator.url) for index in indices]
    if simulator.faults.take(request.api_path, "null_fields"):
        body = damage_rest_users(body)
    # GitHub's Link header points at the organization by id, which survives a rename mid-paging.
    return json_response(200, body, _link(base, request, page, _pages(count, per_page)))


def _public_members(simulator, token, request, org=None, org_id=None):
    return _members(simulator, token, request, org, org_id, public=True)


def _is_member(simulator, token, request, org, username):
    """GitHub's "Check organization membership for a user": 204 or 404 to the organization's members;
    to anyone else a redirect to the public-membership check."""
    found, refusal = _find_org(simulator, request, login=org)
    if refusal:
        return refusal
    if not token.sees_every_member(found):
        return redirect(f"{request.api_url}/orgs/{found.login}/public_members/{username}")
    if found.member_by_login(username) is None:
        return github_error(404, "User does not exist or is not a member of the organization", REST_DOCS)
    return Response(204)


def _is_public_member(simulator, token, request, org, username):
    found, refusal = _find_org(simulator, request, login=org)
    if refusal:
        return refusal
    member = found.member_by_login(username)
    if member is None or not member.public:
        return github_error(404, "User does not exist or is not a public member of the organization", REST_DOCS)
    return Response(204)


def _membership(simulator, token, request, org, username=None):
    found, refusal = _find_org(simulator, request, login=org)
    if refusal:
        return refusal
    member = found.member_by_login(username or VIEWER.login)
    # Outside the organization, a concealed membership is as good as none.
    if member is None or not (member.public or token.sees_every_member(found)):
        return github_error(404, "Not Found", REST_DOCS)
    null_roles = simulator.faults.take(request.api_path, "null_roles")
    # Beyond GitHub's REST description, whose role is never null: GraphQL's may be, and the product
    # must read either the same way.
    role = None if null_roles and role_withheld(null_roles, member.login) else member.role.lower()
    body = {
        "url": f"{request.api_url}/orgs/{found.login}/memberships/{member.login}",
        "state": "active",
        "role": role,
        "direct_membership": True,
        "organization_url": f"{request.api_url}/orgs/{found.login}",
        "organization": _simple_org(found, request.api_url, simulator.url),
        "user": _simple_user(member, request.api_url, simulator.url),
    }
    return json_response(200, body)


def _viewer_membership(simulator, token, request, org):
    return _membership(simulator, token, request, org, VIEWER.login)


def _any_user(simulator, token, request, username):
    found = [member for org in simulator.orgs if (member := org.member_by_login(username))]
    member = found[0] if found else VIEWER if username.lower() == VIEWER.login else None
    if member is None:
        return github_error(404, "Not Found", REST_DOCS)
    return json_response(200, {**_simple_user(member, request.api_url, simulator.url), **_profile(member)})


def _user_by_id(simulator, token, request, account_id):
    database_id = int(account_id)
    found = [member for org in simulator.orgs if (member := org.user_by_id(database_id))]
    member = found[0] if found else VIEWER if database_id == VIEWER.database_id else None
    if member is None:
        return github_error(404, "Not Found", REST_DOCS)
    return json_response(200, {**_simple_user(member, request.api_url, simulator.url), **_profile(member)})


def _rate_limit(simulator, token, request):
    if simulator.tokens.rate_limit is None:
        # What an Enterprise Server with rate limiting off answers.
        return github_error(404, "Rate limiting is not enabled.", REST_DOCS)
    resources = {
        name: {"limit": budget.limit, "used": budget.used, "remaining": budget.remaining, "reset": budget.reset_at}
        for name in ("core", "graphql", "search")
        for budget in [simulator.tokens.budget(token, name)]
    }
    return json_response(200, {"resources": resources, "rate": resources["core"]})


# Teams. GitHub lists to a token the teams visible to it (Teams.visible_to); any other team is a 404.


def _teams(simulator, token, request, org=None, org_id=None):
    found, refusal = _find_org(simulator, request, login=org, org_id=org_id)
    if refusal:
        return refusal
    teams = found.teams.visible_to(token)
    return _team_page(simulator, request, found, teams, f"{request.api_url}/organizations/{found.id}/teams")


def _team(simulator, token, request, org=None, org_id=None, team_slug=None, team_id=None):
    found, team, refusal = _find_team(simulator, token, request, org, org_id, team_slug, team_id)
    return refusal or json_response(200, _full_team(found, team, request.api_url, simulator.url))


def _child_teams(simulator, token, request, org=None, org_id=None, team_slug=None, team_id=None):
    found, team, refusal = _find_team(simulator, token, request, org, org_id, team_slug, team_id)
    if refusal:
        return refusal
    visible = {id(visible) for visible in found.teams.visible_to(token)}
    children = [child for child in found.teams.children(team) if id(child) in visible]
    base = f"{request.api_url}/organizations/{found.id}/team/{team.id}/teams"
    return _team_page(simulator, request, found, children, base)


def _team_members(simulator, token, request, org=None, org_id=None, team_slug=None, team_id=None):
    """GitHub's "List team members": the team's members and its child teams', each with its `role` on
    the team and whether it is `inherited` from a child team, in the order of their accounts' ids."""
    found, team, refusal = _find_team(simulator, token, request, org, org_id, team_slug, team_id)
    if refusal:
        return refusal
    role = request.query.get("role", "all")
    if role not in ("all", "member", "maintainer"):
        errors = [{"resource": "TeamMember", "field": "role", "code": "invalid"}]
        return json_response(422, {"message": "Validation Failed", "errors": errors, "documentation_url": REST_DOCS})
    immediate = found.teams.memberships(team, "IMMEDIATE")
    everyone = found.teams.memberships(team, "ALL")
    listed = [(index, member_role) for index, member_role in everyone.items() if role in ("all", member_role)]
    page, per_page = _paging(request)
    body = [
        {
            **_simple_user(found.member(index), request.api_url, simulator.url),
            "role": member_role,
            "inherited": index not in immediate,
        }
        for index, member_role in listed[(page - 1) * per_page : page * per_page]
    ]
    base = f"{request.api_url}/organizations/{found.id}/team/{team.id}/members"
    return json_response(200, body, _link(base, request, page, _pages(len(listed), per_page)))


def _team_membership(simulator, token, request, username, org=None, org_id=None, team_slug=None, team_id=None):
    """GitHub's "Get team membership for a user": active, with the role; a member of a child team is
    a member of the team; an owner of the organization is its maintainer, as GitHub's description says."""
    found, team, refusal = _find_team(simulator, token, request, org, org_id, team_slug, team_id)
    if refusal:
        return refusal
    member = found.member_by_login(username)
    everyone = found.teams.memberships(team, "ALL")
    if member is None or member.index not in everyone:
        return github_error(404, "Not Found", REST_DOCS)
    role = MAINTAINER if member.role == ADMIN else everyone[member.index]
    url = f"{request.api_url}/organizations/{found.id}/team/{team.id}/memberships/{member.login}"
    return json_response(200, {"url": url, "role": role, "state": "active"})


def _find_team(simulator, token, request, org, org_id, team_slug, team_id):
    found, refusal = _find_org(simulator, request, login=org, org_id=org_id)
    if refusal:
        return None, None, refusal
    team = found.teams.find(team_slug) if team_slug is not None else found.teams.get(int(team_id))
    if team is None or team not in found.teams.visible_to(token):
        return None, None, github_error(404, "Not Found", REST_DOCS)
    return found, team, None


def _team_page(simulator, request, org: SimulatedOrg, teams: list[Team], base: str) -> Response:
    page, per_page = _paging(request)
    body = [
        _simple_team(org, team, request.api_url, simulator.url)
        for team in teams[(page - 1) * per_page : page * per_page]
    ]
    return json_response(200, body, _link(base, request, page, _pages(len(teams), per_page)))


_ORG = r"(?:orgs/(?P<org>[^/]+)|organizations/(?P<org_id>\d+))"
# A team by its slug, or by the organization's id and its own (the route GitHub's own URLs use).
_TEAM = r"(?:orgs/(?P<org>[^/]+)/teams/(?P<team_slug>[^/]+)|organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+))"
ROUTES = (
    Route(re.compile(r"/user"), _user, for_users=True),
    Route(re.compile(r"/user/orgs"), _user_orgs, "admin:org, read:org, repo, user, write:org", for_users=True),
    # /organizations/{id} is the route by id GitHub's own Link headers use.
    Route(re.compile(rf"/{_ORG}"), _organization),
    Route(re.compile(rf"/{_ORG}/members"), _members),
    Route(re.compile(rf"/{_ORG}/public_members"), _public_members),
    Route(re.compile(r"/orgs/(?P<org>[^/]+)/members/(?P<username>[^/]+)"), _is_member),
    Route(re.compile(r"/orgs/(?P<org>[^/]+)/public_members/(?P<username>[^/]+)"), _is_public_member),
    Route(re.compile(r"/user/(?P<account_id>[0-9]{1,18})"), _user_by_id),
    Route(re.compile(r"/orgs/(?P<org>[^/]+)/memberships/(?P<username>[^/]+)"), _membership),
    Route(re.compile(r"/user/memberships/orgs/(?P<org>[^/]+)"), _viewer_membership, for_users=True),
    Route(re.compile(r"/users/(?P<username>[^/]+)"), _any_user),
    Route(re.compile(r"/rate_limit"), _rate_limit, charged=False),
    Route(re.compile(rf"/{_ORG}/teams"), _teams),
    Route(re.compile(rf"/{_TEAM}"), _team),
    Route(re.compile(rf"/{_TEAM}/teams"), _child_teams),
    Route(re.compile(rf"/{_TEAM}/members"), _team_members),
    Route(re.compile(rf"/{_TEAM}/memberships/(?P<username>[^/]+)"), _team_membership),
)


def _find_org(simulator, request, *, login=None, org_id=None) -> tuple[SimulatedOrg | None, Response | None]:
    """Return the organization, or GitHub's refusal: 404 when there is none, or an injected organization fault."""
    found = simulator.orgs.find(login) if login is not None else simulator.orgs.find_by_id(int(org_id))
    fault = simulator.faults.take(request.api_path, *ORGANIZATION_FAULTS) if found else None
    if found is None or (fault and fault.name == "org_not_found"):
        return None, github_error(404, "Not Found", REST_DOCS)
    if fault and fault.name == "sso_required":
        return None, github_error(403, SSO_MESSAGE, SAML_DOCS, [sso_header(simulator.url, found.login)])
    if fault:
        return None, github_error(403, access_restricted_message(found.login), REST_DOCS)
    return found, None


def _paging(request) -> tuple[int, int]:
    def number(name, default):
        try:
            return int(request.query.get(name, default))
        except ValueError:
            return default

    return max(1, number("page", 1)), min(MAX_PER_PAGE, max(1, number("per_page", DEFAULT_PER_PAGE)))


def _pages(count: int, per_page: int) -> int:
    return -(-count // per_page)


def _link(base: str, request, page: int, last_page: int) -> list[tuple[str, str]]:
    """Return GitHub's Link header: prev, next, last and first, as far as they exist."""
    parameters = {name: value for name, value in request.query.items() if name != "page"}

    def link(number, rel):
        return f'<{base}?{urlencode({**parameters, "page": number})}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(min(page - 1, max(last_page, 1)), "prev"))
    if page < last_page:
        links += [link(page + 1, "next"), link(last_page, "last")]
    if page > 1:
        links.append(link(1, "first"))
    return [("Link", ", ".join(links))] if links else []


def _simple_user(member: Member, api_url: str, web_url: str) -> dict:
    api = f"{api_url}/users/{member.login}"
    return {
        "login": member.login,
        "id": member.database_id,
        "node_id": member.node_id,
        "avatar_url": avatar_url(web_url, member.database_id),
        "gravatar_id": "",
        "url": api,
        "html_url": f"{web_url}/{member.login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "user_view_type": "public",
        "site_admin": False,
    }


def _profile(member: Member) -> dict:
    """Return the public profile fields of GitHub's "public-user"."""
    profile = dict.fromkeys(("company", "location", "hireable", "bio"))
    counts = dict.fromkeys(("public_repos", "public_gists", "followers", "following"), 0)
    dates = {"created_at": "2011-01-25T18:44:36Z", "updated_at": "2025-01-22T12:00:00Z"}
    return {"name": member.name, "email": member.email or None, "blog": "", **profile, **counts, **dates}


# What the user scope adds to the viewer's own profile.
_PRIVATE_PROFILE = {
    "user_view_type": "private",
    **dict.fromkeys(("private_gists", "total_private_repos", "owned_private_repos", "disk_usage", "collaborators"), 0),
    "two_factor_authentication": True,
}


def _simple_org(org: SimulatedOrg, api_url: str, web_url: str) -> dict:
    api = f"{api_url}/orgs/{org.login}"
    return {
        "login": org.login,
        "id": org.id,
        "node_id": org.node_id,
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": avatar_url(web_url, org.id),
        "description": f"{org.name}, simulated",
    }


def _full_org(org: SimulatedOrg, api_url: str, web_url: str) -> dict:
    counts = dict.fromkeys(("public_repos", "public_gists", "followers", "following"), 0)
    return {
        **_simple_org(org, api_url, web_url),
        "name": org.name,
        "html_url": f"{web_url}/{org.login}",
        "type": "Organization",
        "has_organization_projects": True,
        "has_repository_projects": True,
        **counts,
        "created_at": "2015-06-01T12:00:00Z",
        "updated_at": "2025-01-22T12:00:00Z",
        "archived_at": None,
    }


def _simple_team(org: SimulatedOrg, team: Team, api_url: str, web_url: str, *, with_parent=True) -> dict:
    """GitHub's "team" (a listing's item, with its parent) or, with_parent=False, "team-simple"."""
    api = f"{api_url}/organizations/{org.id}/team/{team.id}"
    body = {
        "id": team.id,
        "node_id": team.node_id,
        "url": api,
        "html_url": f"{web_url}/orgs/{org.login}/teams/{team.slug}",
        "name": team.name,
        "slug": team.slug,
        "description": team.description,
        "privacy": team.privacy,
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": f"{api}/members{{/member}}",
        "repositories_url": f"{api}/repos",
        "type": "organization",
        "organization_id": org.id,
    }
    if with_parent:
        parent = org.teams.parent(team)
        body["parent"] = None if parent is None else _simple_team(org, parent, api_url, web_url, with_parent=False)
    return body


def _full_team(org: SimulatedOrg, team: Team, api_url: str, web_url: str) -> dict:
    """GitHub's "team-full"."""
    return {
        **_simple_team(org, team, api_url, web_url),
        "members_count": len(org.teams.memberships(team, "ALL")),
        "repos_count": 0,
        "created_at": _timestamp(team.created_at),
        "updated_at": _timestamp(team.updated_at),
        "organization": _full_org(org, api_url, web_url),
    }


def _timestamp(seconds: float) -> str:
    # Generated teams were made when the organization was (its created_at).
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds)) if seconds else "2015-06-01T12:00:00Z"
