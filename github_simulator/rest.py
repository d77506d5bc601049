"""The REST endpoints the product uses. Every body follows the response schema of its operation in
GitHub's OpenAPI description (../shared/github/rest-openapi-subset.json)."""

import re
import time
from dataclasses import dataclass
from itertools import islice
from urllib.parse import unquote, urlencode

from github_simulator.faults import (
    ORGANIZATION_FAULTS,
    SAML_DOCS,
    SSO_MESSAGE,
    access_restricted_message,
    damage_rest_user,
    sso_header,
)
from github_simulator.organizations import ADMIN, MEMBER, VIEWER, Member, SimulatedOrg, avatar_url
from github_simulator.responses import Response, github_error, json_response

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
_ORGS_SCOPES = "admin:org, read:org, repo, user, write:org"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern
    view: object
    docs: str  # the operation's documentation_url in GitHub's error bodies
    accepted_scopes: str = ""  # the X-Accepted-OAuth-Scopes header


def route(path: str) -> tuple[Route, dict] | None:
    for candidate in ROUTES:
        if match := candidate.pattern.match(path):
            return candidate, {name: value and unquote(value) for name, value in match.groupdict().items()}
    return None


# Views: (state, token, request, **path parameters) -> Response.


def _user(state, token, request):
    body = {**_simple_user(VIEWER, state.url), **_OCTOCAT_PROFILE}
    # Private profile fields need the user scope; without it GitHub answers the public profile.
    if token.grants("user"):
        body.update(_OCTOCAT_PRIVATE_PROFILE)
    return json_response(200, body)


def _user_orgs(state, token, request):
    if not any(token.grants(scope) for scope in ("read:org", "user", "repo")):
        message = "You need at least read:org scope or user scope to list your organizations."
        return github_error(403, message, _docs(request))
    orgs = list(state.orgs)
    page, per_page = _paging(request)
    body = [_simple_org(org, state.url) for org in orgs[(page - 1) * per_page : page * per_page]]
    return json_response(200, body, _link(f"{state.url}/user/orgs", request, page, _pages(len(orgs), per_page)))


def _organization(state, token, request, org):
    found, refusal = _find_org(state, request, login=org)
    if refusal:
        return refusal
    return json_response(200, _full_org(found, state.url))


def _members(state, token, request, org=None, org_id=None):
    found, refusal = _find_org(state, request, login=org, org_id=org_id)
    if refusal:
        return refusal
    role = request.query.get("role", "all")
    if role not in ("all", "admin", "member"):
        return _invalid_role(request)
    page, per_page = _paging(request)
    damaged = state.faults.take(("null_fields",), request.path) is not None
    indices, count = _page_of_members(found, role, page, per_page)
    body = []
    for index in indices:
        user = _simple_user(found.member(index), state.url)
        body.append(damage_rest_user(user, index) if damaged else user)
    # GitHub's Link header points at the organization by id, which survives a rename mid-paging.
    base = f"{state.url}/organizations/{found.id}/members"
    return json_response(200, body, _link(base, request, page, _pages(count, per_page)))


def _membership(state, token, request, org, username):
    found, refusal = _find_org(state, request, login=org)
    if refusal:
        return refusal
    member = found.member_by_login(username)
    if member is None:
        return github_error(404, "Not Found", _docs(request))
    body = {
        "url": f"{state.url}/orgs/{found.login}/memberships/{member.login}",
        "state": "active",
        "role": member.role.lower(),
        "direct_membership": True,
        "organization_url": f"{state.url}/orgs/{found.login}",
        "organization": _simple_org(found, state.url),
        "user": _simple_user(member, state.url),
    }
    return json_response(200, body)


ROUTES = (
    Route(re.compile(r"^/user$"), _user, "https://docs.github.com/rest/users/users#get-the-authenticated-user"),
    Route(
        re.compile(r"^/user/orgs$"),
        _user_orgs,
        "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user",
        _ORGS_SCOPES,
    ),
    Route(
        re.compile(r"^/orgs/(?P<org>[^/]+)$"),
        _organization,
        "https://docs.github.com/rest/orgs/orgs#get-an-organization",
    ),
    Route(
        re.compile(r"^/(?:orgs/(?P<org>[^/]+)|organizations/(?P<org_id>\d+))/members$"),
        _members,
        "https://docs.github.com/rest/orgs/members#list-organization-members",
    ),
    Route(
        re.compile(r"^/orgs/(?P<org>[^/]+)/memberships/(?P<username>[^/]+)$"),
        _membership,
        "https://docs.github.com/rest/orgs/members#get-organization-membership-for-a-user",
    ),
)


def _docs(request) -> str:
    return route(request.path)[0].docs


def _find_org(state, request, *, login=None, org_id=None) -> tuple[SimulatedOrg | None, Response | None]:
    """The organization, or GitHub's refusal: 404 when there is none, or an injected organization fault."""
    found = state.orgs.find(login) if login is not None else state.orgs.find_by_id(int(org_id))
    fault = state.faults.take(ORGANIZATION_FAULTS, request.path) if found else None
    if found is None or (fault and fault.name == "org_not_found"):
        return None, github_error(404, "Not Found", _docs(request))
    if fault and fault.name == "sso_required":
        return None, github_error(403, SSO_MESSAGE, SAML_DOCS, [sso_header(state.url, found.login)])
    if fault:
        return None, github_error(403, access_restricted_message(found.login), _docs(request))
    return found, None


def _page_of_members(org: SimulatedOrg, role: str, page: int, per_page: int) -> tuple[list[int], int]:
    """The member indices on the page, and how many members have the role."""
    start = (page - 1) * per_page
    if role == "all":
        return list(islice(org.indices(), start, start + per_page)), org.size
    wanted = ADMIN if role == "admin" else MEMBER
    matching = [index for index in org.indices() if org.role_of(index) == wanted]
    return matching[start : start + per_page], len(matching)


def _invalid_role(request) -> Response:
    body = {
        "message": "Validation Failed",
        "errors": [{"resource": "OrganizationMember", "field": "role", "code": "invalid"}],
        "documentation_url": _docs(request),
        "status": "422",
    }
    return json_response(422, body)


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
    """GitHub's Link header: prev, next, last and first, as far as they exist."""
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


# Bodies.


def _simple_user(member: Member, url: str) -> dict:
    api = f"{url}/users/{member.login}"
    return {
        "login": member.login,
        "id": member.database_id,
        "node_id": member.node_id,
        "avatar_url": member.avatar_url,
        "gravatar_id": "",
        "url": api,
        "html_url": f"{url}/{member.login}",
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


_OCTOCAT_PROFILE = {
    "name": VIEWER.name,
    "company": "@github",
    "blog": "https://github.blog",
    "location": "San Francisco",
    "email": VIEWER.email,
    "hireable": None,
    "bio": None,
    "twitter_username": None,
    "public_repos": 8,
    "public_gists": 8,
    "followers": 20000,
    "following": 9,
    "created_at": "2011-01-25T18:44:36Z",
    "updated_at": "2025-01-22T12:00:00Z",
}
_OCTOCAT_PRIVATE_PROFILE = {
    "user_view_type": "private",
    "private_gists": 0,
    "total_private_repos": 0,
    "owned_private_repos": 0,
    "disk_usage": 0,
    "collaborators": 0,
    "two_factor_authentication": True,
    "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
}


def _simple_org(org: SimulatedOrg, url: str) -> dict:
    api = f"{url}/orgs/{org.login}"
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
        "avatar_url": avatar_url(org.id),
        "description": f"{org.name}, simulated",
    }


def _full_org(org: SimulatedOrg, url: str) -> dict:
    # Spread creation dates over 2010-2019, stable for an organization.
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1262304000 + org.created_seed % 315_360_000))
    return {
        **_simple_org(org, url),
        "name": org.name,
        "twitter_username": None,
        "is_verified": False,
        "has_organization_projects": True,
        "has_repository_projects": True,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "html_url": f"{url}/{org.login}",
        "type": "Organization",
        "created_at": created,
        "updated_at": created,
        "archived_at": None,
    }
