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
    damage_rest_users,
    sso_header,
)
from github_simulator.messages import Response, github_error, json_response, redirect
from github_simulator.organizations import ADMIN, MEMBER, VIEWER, Member, SimulatedOrg, avatar_url

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
_DOCS = "https://docs.github.com/rest"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern
    view: object  # (simulator, token, request, **path parameters) -> Response
    docs: str  # the operation's documentation_url in GitHub's error bodies
    accepted_scopes: str = ""  # the X-Accepted-OAuth-Scopes header
    charged: bool = True  # whether the call spends a point of the rate limit


def route(path: str) -> tuple[Route, dict] | None:
    for candidate in ROUTES:
        if match := candidate.pattern.fullmatch(path):
            return candidate, {name: value and unquote(value) for name, value in match.groupdict().items()}
    return None


def _user(simulator, token, request):
    body = {**_simple_user(VIEWER, request.api_url, simulator.url), **_profile(VIEWER)}
    # Private profile fields need the user scope; without it GitHub answers the public profile.
    if token.grants("user"):
        body.update(_OCTOCAT_PRIVATE_PROFILE)
    return json_response(200, body)


def _user_orgs(simulator, token, request):
    if not any(token.grants(scope) for scope in ("read:org", "user", "repo")):
        message = "You need at least read:org scope or user scope to list your organizations."
        return github_error(403, message, _docs(request))
    orgs = [org for org in simulator.orgs if org.viewer_is_member]
    headers = []
    # An organization with SAML SSO the token is not authorized for is left out, and named by id.
    if partial := simulator.faults.take(request.api_path, "sso_partial"):
        hidden = {login.lower() for login in partial.options["orgs"]}
        if ids := [str(org.id) for org in orgs if org.login.lower() in hidden]:
            headers.append(("X-GitHub-SSO", f"partial-results; organizations={','.join(ids)}"))
        orgs = [org for org in orgs if org.login.lower() not in hidden]
    page, per_page = _paging(request)
    body = [_simple_org(org, request.api_url) for org in orgs[(page - 1) * per_page : page * per_page]]
    link = _link(f"{request.api_url}/user/orgs", request, page, _pages(len(orgs), per_page))
    return json_response(200, body, headers + link)


def _organization(simulator, token, request, org=None, org_id=None):
    found, refusal = _find_org(simulator, request, login=org, org_id=org_id)
    return refusal or json_response(200, _full_org(found, request.api_url, simulator.url))


def _members(simulator, token, request, org=None, org_id=None, public=False):
    found, refusal = _find_org(simulator, request, login=org, org_id=org_id)
    if refusal:
        return refusal
    if not public and not found.viewer_is_member:
        # GitHub's answer to a token whose user is no member: the public members, by a redirect.
        location = re.sub(r"/members$", "/public_members", request.path)
        return redirect(f"{simulator.url}{location}" + (f"?{request.query_string}" if request.query_string else ""))
    role = request.query.get("role", "all")
    if role not in ("all", "admin", "member"):
        return _invalid_role(request)
    page, per_page = _paging(request)
    start = (page - 1) * per_page
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
    base = f"{request.api_url}/organizations/{found.id}/{'public_members' if public else 'members'}"
    return json_response(200, body, _link(base, request, page, _pages(count, per_page)))


def _public_members(simulator, token, request, org=None, org_id=None):
    return _members(simulator, token, request, org, org_id, public=True)


def _membership(simulator, token, request, org, username=None):
    found, refusal = _find_org(simulator, request, login=org)
    if refusal:
        return refusal
    member = found.member_by_login(username or VIEWER.login)
    # Outside the organization, a concealed membership is as good as none.
    if member is None or not (member.public or found.viewer_is_member):
        return github_error(404, "Not Found", _docs(request))
    body = {
        "url": f"{request.api_url}/orgs/{found.login}/memberships/{member.login}",
        "state": "active",
        "role": member.role.lower(),
        "direct_membership": True,
        "organization_url": f"{request.api_url}/orgs/{found.login}",
        "organization": _simple_org(found, request.api_url),
        "user": _simple_user(member, request.api_url, simulator.url),
    }
    return json_response(200, body)


def _viewer_membership(simulator, token, request, org):
    return _membership(simulator, token, request, org, VIEWER.login)


def _any_user(simulator, token, request, username):
    for org in simulator.orgs:
        if (member := org.member_by_login(username)) is not None:
            return json_response(200, {**_simple_user(member, request.api_url, simulator.url), **_profile(member)})
    if username.lower() == VIEWER.login:
        return json_response(200, {**_simple_user(VIEWER, request.api_url, simulator.url), **_profile(VIEWER)})
    return github_error(404, "Not Found", _docs(request))


def _rate_limit(simulator, token, request):
    resources = {
        name: {"limit": budget.limit, "used": budget.used, "remaining": budget.remaining, "reset": budget.reset_at}
        for name in ("core", "graphql", "search")
        for budget in [simulator.tokens.budget(token, name)]
    }
    return json_response(200, {"resources": resources, "rate": resources["core"]})


_ORG = r"(?:orgs/(?P<org>[^/]+)|organizations/(?P<org_id>\d+))"
ROUTES = (
    Route(re.compile(r"/user"), _user, f"{_DOCS}/users/users#get-the-authenticated-user"),
    Route(
        re.compile(r"/user/orgs"),
        _user_orgs,
        f"{_DOCS}/orgs/orgs#list-organizations-for-the-authenticated-user",
        "admin:org, read:org, repo, user, write:org",
    ),
    # /organizations/{id} is the route by id GitHub's own Link headers use.
    Route(re.compile(rf"/{_ORG}"), _organization, f"{_DOCS}/orgs/orgs#get-an-organization"),
    Route(re.compile(rf"/{_ORG}/members"), _members, f"{_DOCS}/orgs/members#list-organization-members"),
    Route(
        re.compile(rf"/{_ORG}/public_members"),
        _public_members,
        f"{_DOCS}/orgs/members#list-public-organization-members",
    ),
    Route(
        re.compile(r"/orgs/(?P<org>[^/]+)/memberships/(?P<username>[^/]+)"),
        _membership,
        f"{_DOCS}/orgs/members#get-organization-membership-for-a-user",
    ),
    Route(
        re.compile(r"/user/memberships/orgs/(?P<org>[^/]+)"),
        _viewer_membership,
        f"{_DOCS}/orgs/members#get-an-organization-membership-for-the-authenticated-user",
    ),
    Route(re.compile(r"/users/(?P<username>[^/]+)"), _any_user, f"{_DOCS}/users/users#get-a-user"),
    Route(re.compile(r"/rate_limit"), _rate_limit, f"{_DOCS}/rate-limit/rate-limit", charged=False),
)


def _docs(request) -> str:
    return route(request.api_path)[0].docs


def _find_org(simulator, request, *, login=None, org_id=None) -> tuple[SimulatedOrg | None, Response | None]:
    """Return the organization, or GitHub's refusal: 404 when there is none, or an injected organization fault."""
    found = simulator.orgs.find(login) if login is not None else simulator.orgs.find_by_id(int(org_id))
    fault = simulator.faults.take(request.api_path, *ORGANIZATION_FAULTS) if found else None
    if found is None or (fault and fault.name == "org_not_found"):
        return None, github_error(404, "Not Found", _docs(request))
    if fault and fault.name == "sso_required":
        return None, github_error(403, SSO_MESSAGE, SAML_DOCS, [sso_header(simulator.url, found.login)])
    if fault:
        return None, github_error(403, access_restricted_message(found.login), _docs(request))
    return found, None


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
        "avatar_url": member.avatar_url,
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
    octocat = member.login == VIEWER.login
    return {
        "name": member.name,
        "company": "@github" if octocat else None,
        "blog": "https://github.blog" if octocat else "",
        "location": "San Francisco" if octocat else None,
        "email": member.email or None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 8 if octocat else 0,
        "public_gists": 8 if octocat else 0,
        "followers": 20000 if octocat else 0,
        "following": 9 if octocat else 0,
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


def _simple_org(org: SimulatedOrg, api_url: str) -> dict:
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
        "avatar_url": avatar_url(org.id),
        "description": f"{org.name}, simulated",
    }


def _full_org(org: SimulatedOrg, api_url: str, web_url: str) -> dict:
    # Spread creation dates over 2010-2019, stable for an organization.
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1262304000 + org.created_seed % 315_360_000))
    return {
        **_simple_org(org, api_url),
        "name": org.name,
        "twitter_username": None,
        "is_verified": False,
        "has_organization_projects": True,
        "has_repository_projects": True,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "html_url": f"{web_url}/{org.login}",
        "type": "Organization",
        "created_at": created,
        "updated_at": created,
        "archived_at": None,
    }
