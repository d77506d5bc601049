"""Fault injection, and what GitHub really answers in each case: status, headers and body.

Sources: docs.github.com ("Troubleshooting the REST API", "Rate limits and query limits for the GraphQL
API", SAML SSO and OAuth App access restrictions) and responses recorded in public issue threads.
"""

import hashlib
import time
from dataclasses import dataclass

from github_simulator.messages import JSON, Response, github_error, json_response
from github_simulator.organizations import VIEWER
from github_simulator.tokens import RATE_LIMIT, WINDOW_SECONDS, Budget

# Every fault and its options with their defaults ("path" is common to all).
FAULTS = {
    "server_error": {"status": 502},
    "connection_reset": {},
    # GitHub's GraphQL error type was RATE_LIMITED for years; since late 2025 some answers say RATE_LIMIT.
    "rate_limit_exhausted": {"reset_in": 60, "graphql_type": "RATE_LIMITED"},
    # retry_after None: no Retry-After header, and GitHub expects a minute's wait, then longer ones.
    # REST answers 403 or 429; GraphQL a 200 with a RATE_LIMITED error, or a 403 ("a 200 or 403
    # response", GitHub's GraphQL rate-limit docs). Both keep the budget's headers, remaining above 0.
    "secondary_rate_limit": {"retry_after": 30, "status": 403, "graphql_status": 200},
    "spammed": {},
    "bad_credentials": {},
    "sso_required": {},
    "sso_partial": {"orgs": []},
    "access_restricted": {},
    "org_not_found": {},
    "resource_limits": {"max_first": 50},
    "query_timeout": {"max_first": 50, "status": 502},
    "malformed_json": {},
    "null_fields": {},
    # GitHub's schema lets an OrganizationMemberEdge's role be null; logins [] means every member.
    "null_roles": {"logins": []},
    "verified_emails_forbidden": {},
}
# Options that take one of a few values only: the statuses GitHub answers with.
CHOICES = {("secondary_rate_limit", "status"): (403, 429), ("secondary_rate_limit", "graphql_status"): (200, 403)}
# Faults that replace the whole answer, before the request reaches an endpoint.
TRANSPORT_FAULTS = (
    "server_error",
    "connection_reset",
    "malformed_json",
    "rate_limit_exhausted",
    "secondary_rate_limit",
    "spammed",
    "bad_credentials",
)
ORGANIZATION_FAULTS = ("org_not_found", "sso_required", "access_restricted")
# Without a path option a fault hits the API only, not the OAuth pages.
API_PATHS = ("/user", "/orgs/", "/organizations/", "/graphql", "/rate_limit", "/app/")

REST_DOCS = "https://docs.github.com/rest"
GRAPHQL_DOCS = "https://docs.github.com/graphql"
RATE_LIMIT_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
SAML_DOCS = "https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/"
RESTRICTIONS_DOCS = "https://docs.github.com/articles/restricting-access-to-your-organization-s-data/"
SSO_MESSAGE = (
    "Resource protected by organization SAML enforcement. You must grant your OAuth token access to this organization."
)


@dataclass
class Fault:
    name: str
    times: int | None  # None: until cleared
    path: str | None
    options: dict

    def applies_to(self, path: str) -> bool:
        return path.startswith(self.path) if self.path else path.startswith(API_PATHS)


class FaultBook:
    def __init__(self, lock):
        self._lock = lock
        self._faults: list[Fault] = []

    def inject(self, name: str, *, times: int | None = 1, path: str | None = None, **options) -> Fault:
        if name not in FAULTS:
            raise ValueError(f"Unknown fault {name!r}; the simulator knows {', '.join(FAULTS)}.")
        if unknown := set(options) - set(FAULTS[name]):
            raise ValueError(f"The {name} fault takes no option {', '.join(sorted(unknown))}.")
        for option, value in options.items():
            if value not in CHOICES.get((name, option), (value,)):
                raise ValueError(f"The {name} fault's {option} is one of {CHOICES[name, option]}.")
        fault = Fault(name, times, path, {**FAULTS[name], **options})
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str, *names: str, when=lambda fault: True) -> Fault | None:
        """Use up once, and return, the earliest injected fault among names that applies to path and
        for which when(fault) holds."""
        with self._lock:
            for fault in self._faults:
                if fault.name in names and fault.applies_to(path) and when(fault):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None


def transport_response(fault: Fault, *, graphql: bool, budget_headers, request_id: str) -> Response:
    """Return the answer a transport fault gives in place of the endpoint's."""
    options = fault.options
    if fault.name == "connection_reset":
        return Response(0, reset_connection=True)
    if fault.name == "server_error":
        return server_error(options["status"], graphql=graphql, request_id=request_id)
    if fault.name == "malformed_json":
        body = b'{"data":{"organization":{"membersWithRole":{"totalCount":' if graphql else b'[{"login":"octocat","id":'
        return Response(200, body, [("Content-Type", JSON)])
    if fault.name == "rate_limit_exhausted":
        reset_at = int(time.time()) + options["reset_in"]
        return rate_limited(
            graphql=graphql, reset_at=reset_at, request_id=request_id, error_type=options["graphql_type"]
        )
    if fault.name == "secondary_rate_limit":
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
            f"out to GitHub Support for help, please include the request ID {request_id}."
        )
        headers = budget_headers + (
            [] if options["retry_after"] is None else [("Retry-After", str(options["retry_after"]))]
        )
        if graphql and options["graphql_status"] == 200:
            return json_response(200, {"errors": [{"type": "RATE_LIMITED", "message": message}]}, headers)
        status = options["graphql_status"] if graphql else options["status"]
        return github_error(status, message, f"{RATE_LIMIT_DOCS}#about-secondary-rate-limits", headers)
    if fault.name == "spammed":
        body = {
            "message": "Validation Failed",
            "errors": [{"code": "custom", "message": "Sorry, this endpoint has been spammed."}],
            "documentation_url": REST_DOCS,
            "status": "422",
        }
        return json_response(422, body, budget_headers)
    return bad_credentials(graphql=graphql)


def rate_limited(
    *, graphql: bool, reset_at: int, request_id: str, limit: int = RATE_LIMIT, error_type: str = "RATE_LIMITED"
) -> Response:
    """Answer an exhausted primary rate limit: REST with 403, GraphQL with 200 and an error; both with
    remaining 0."""
    headers = Budget(limit, reset_at, used=limit).headers("graphql" if graphql else "core")
    if graphql:
        if error_type == "RATE_LIMIT":
            error = {
                "type": "RATE_LIMIT",
                "code": "graphql_rate_limit",
                "message": f"API rate limit already exceeded for user ID {VIEWER.database_id}.",
            }
        else:
            error = {"type": "RATE_LIMITED", "message": f"API rate limit exceeded for user ID {VIEWER.database_id}."}
        return json_response(200, {"errors": [error]}, headers)
    timestamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    message = (
        f"API rate limit exceeded for user ID {VIEWER.database_id}. If you reach out to GitHub Support for help, "
        f"please include the request ID {request_id} and timestamp {timestamp}."
    )
    return github_error(403, message, f"{RATE_LIMIT_DOCS}#about-rate-limits", headers)


def bad_credentials(*, graphql: bool) -> Response:
    if graphql:
        # What GitHub sends with a GraphQL 401: a zero budget, which is not a rate limit.
        headers = Budget(0, int(time.time()) + WINDOW_SECONDS).headers("graphql")
        return github_error(401, "Bad credentials", GRAPHQL_DOCS, headers)
    return github_error(401, "Bad credentials", REST_DOCS)


def server_error(status: int, *, graphql: bool, request_id: str) -> Response:
    """Answer as GitHub does when a request takes too long (502 on GraphQL, 504) or fails."""
    if status == 504:
        message = (
            "We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request "
            "and contact us if the problem persists."
        )
        return json_response(504, {"message": message})
    if graphql and status == 502:
        message = (
            "Something went wrong while executing your query. This may be the result of a timeout, or it could be "
            f"a GitHub bug. Please include `{request_id}` when reporting this issue."
        )
        return json_response(502, {"data": None, "errors": [{"message": message}]})
    return json_response(status, {"message": "Server Error"})


def sso_header(web_url: str, org_login: str) -> tuple[str, str]:
    # GitHub's authorization_request is an opaque token; this one is stable for an organization.
    request = hashlib.blake2b(org_login.lower().encode(), digest_size=20).hexdigest()
    return "X-GitHub-SSO", f"required; url={web_url}/orgs/{org_login}/sso?authorization_request={request}"


def access_restricted_message(org_login: str) -> str:
    return (
        f"Although you appear to have the correct authorization credentials, the `{org_login}` organization has "
        "enabled OAuth App access restrictions, meaning that data access to third-parties is limited. For more "
        f"information on these restrictions, including how to approve this app, visit {RESTRICTIONS_DOCS}"
    )


# null_fields: every eighth member is intact; the others each lack something, or carry hostile text.
# None is a null; _MISSING leaves the field out altogether.
_MISSING = object()
_GRAPHQL_DAMAGE = (
    {"name": None},
    {"email": _MISSING},
    {"avatarUrl": None},
    {"login": None},
    {"databaseId": None},
    {"email": None, "name": _MISSING},
    {"name": "<script>alert('member')</script>"},
    {},
)
_REST_DAMAGE = ({}, {"avatar_url": None}, {}, {"login": None}, {"id": None}, {"node_id": None}, {}, {})


def role_withheld(fault: Fault, login: str) -> bool:
    """Whether the null_roles fault answers this member's role as null."""
    logins = {name.lower() for name in fault.options["logins"]}
    return not logins or login.lower() in logins


def damage_rest_users(users: list[dict]) -> list[dict]:
    return [_damaged(user, _REST_DAMAGE[position % 8]) for position, user in enumerate(users)]


def damage_graphql_members(data: dict) -> dict:
    """Give the members of an answer to the members query holes, after execution: GitHub's schema would
    not let such members through."""
    edges = ((data.get("organization") or {}).get("membersWithRole") or {}).get("edges") or []
    for position, edge in enumerate(edges):
        if edge and edge.get("node"):
            edge["node"] = _damaged(edge["node"], _GRAPHQL_DAMAGE[position % 8])
    return data


def _damaged(fields: dict, damage: dict) -> dict:
    changed = {**fields, **{key: value for key, value in damage.items() if key in fields}}
    return {key: value for key, value in changed.items() if value is not _MISSING}
