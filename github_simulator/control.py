"""The control API under /_simulator/, for when the simulator runs in a process of its own (make run,
benchmarks, end-to-end tests). Each endpoint calls the Python API's method of the same purpose; one
that has nothing to tell answers 204."""

import json
import re
from dataclasses import asdict

from github_simulator.messages import Response, json_response

PREFIX = "/_simulator/"


def handle(simulator, request) -> Response:
    route = request.path[len(PREFIX) :].rstrip("/")
    body = request.json() if request.body else {}
    if not isinstance(body, dict):
        return json_response(400, {"error": "The body is a JSON object."})
    for method, pattern, endpoint in _ENDPOINTS:
        if method == request.method and (match := re.fullmatch(pattern, route)):
            try:
                return endpoint(simulator, body, *match.groups()) or Response(204)
            except KeyError as error:  # no such organization or member
                return json_response(404, {"error": error.args[0]})
            except (TypeError, ValueError) as error:
                return json_response(400, {"error": str(error)})
    return json_response(404, {"error": f"No control endpoint {request.method} {request.path}."})


def _inject(simulator, body):
    options = {name: value for name, value in body.items() if name not in ("fault", "times")}
    fault = simulator.inject(_required(body, "fault"), times=body.get("times", 1), **options)
    return json_response(201, {"fault": fault.name, "times": fault.times, "path": fault.path, "options": fault.options})


def _latency(simulator, body):
    simulator.set_latency(_required(body, "ms"))
    return json_response(200, {"ms": body["ms"]})


def _rate_limit(simulator, body):
    simulator.set_rate_limit(_required(body, "limit"))
    return json_response(200, {"limit": body["limit"]})


def _issue_token(simulator, body):
    scopes = tuple(body.get("scopes", ("read:org",)))
    return json_response(201, {"token": simulator.issue_token(scopes=scopes), "scopes": list(scopes)})


def _add_org(simulator, body):
    return json_response(201, _summary(simulator.add_org(_required(body, "login"), size=_required(body, "size"))))


def _org(simulator, body, login):
    org = simulator.org(login)
    return json_response(200, {**_summary(org), "members": [asdict(member) for member in org.members]})


def _change_org(simulator, body, login):
    """Membership changes between runs; each key is optional. Those GitHub tells an App about (members
    added and removed, the organization renamed) are delivered to its webhook: their GUIDs are in
    "deliveries". A member's new login and profile, and a new role, send none, as on GitHub."""
    org = simulator.org(login)
    removed, removed_deliveries = simulator.remove_members(login, body.get("remove", 0), body.get("remove_logins", ()))
    added, added_deliveries = simulator.add_members(login, body.get("add", 0))
    renamed = org.rename_members(body.get("rename", 0))
    renamed += [org.rename_member(old, new) for old, new in body.get("rename_logins", {}).items()]
    changes = {
        "removed": removed,
        "added": added,
        "renamed": renamed,
        "roles": org.change_roles(body.get("roles", 0)),
        "profiles": org.update_profiles(body.get("profiles", 0)),
    }
    deliveries = removed_deliveries + added_deliveries
    if "rename_to" in body:
        deliveries += simulator.rename_org(login, body["rename_to"])
    if body.get("remove_viewer"):
        org.remove_viewer()
    if "viewer_role" in body:
        org.set_viewer_role(body["viewer_role"])
    members = {key: [asdict(member) for member in members] for key, members in changes.items()}
    return json_response(200, {**_summary(org), **members, "deliveries": deliveries})


def _teams(simulator, body, login):
    org = simulator.org(login)
    return json_response(200, [team_summary(org, team) for team in org.teams])


def _create_team(simulator, body, login):
    options = {name: body[name] for name in ("description", "privacy", "parent") if name in body}
    options.update({name: tuple(body[name]) for name in ("maintainers", "members") if name in body})
    team, deliveries = simulator.create_team(login, _required(body, "name"), **options)
    return json_response(201, {**team_summary(simulator.org(login), team), "deliveries": deliveries})


def _edit_team(simulator, body, login, slug):
    team, deliveries = simulator.edit_team(login, slug, **body)
    return json_response(200, {**team_summary(simulator.org(login), team), "deliveries": deliveries})


def _delete_team(simulator, body, login, slug):
    deleted, deliveries = simulator.delete_team(login, slug)
    return json_response(200, {"deleted": [team.slug for team in deleted], "deliveries": deliveries})


def _set_team_membership(simulator, body, login, slug, member):
    team, deliveries = simulator.set_team_membership(login, slug, member, body.get("role", "member"))
    return json_response(200, {**team_summary(simulator.org(login), team), "deliveries": deliveries})


def _remove_team_membership(simulator, body, login, slug, member):
    team, deliveries = simulator.remove_team_membership(login, slug, member)
    return json_response(200, {**team_summary(simulator.org(login), team), "deliveries": deliveries})


def team_summary(org, team) -> dict:
    """A team as the control API shows it: its immediate members by login, with their roles."""
    parent = org.teams.parent(team)
    return {
        "id": team.id,
        "node_id": team.node_id,
        "slug": team.slug,
        "name": team.name,
        "description": team.description,
        "privacy": team.privacy,
        "parent": None if parent is None else parent.slug,
        "members": {org.member(index).login: role for index, role in org.teams.memberships(team).items()},
    }


def _delete_org(simulator, body, login):
    return json_response(200, {"deliveries": simulator.delete_org(login)})


def _app(simulator, body):
    """The App's settings, its private key among them: the control API plays the App's owner."""
    return json_response(200, simulator.app.settings())


def _configure_app(simulator, body):
    simulator.app.configure(**body)
    return json_response(200, simulator.app.settings())


def _install_app(simulator, body):
    """Install the App without its install page, e.g. on an organization octocat is no member of."""
    installation = simulator.install_app(_required(body, "org"))
    return json_response(201, {"id": installation.id, "org_id": installation.org_id})


def _installation_change(method: str):
    """An endpoint calling the simulator's method of that name on the installation: the deliveries it sent."""

    def endpoint(simulator, body, installation_id):
        return json_response(200, {"deliveries": getattr(simulator, method)(int(installation_id)) or []})

    return endpoint


def _deliveries(simulator, body):
    return json_response(200, [delivery.summary() for delivery in simulator.webhooks.log()])


def _delivery(simulator, body, guid):
    if (delivery := simulator.webhooks.get(guid)) is None:
        raise KeyError(f"No delivery {guid}.")
    return json_response(200, {**delivery.summary(), "payload": json.loads(delivery.body)})


def _redeliver(simulator, body, guid):
    return json_response(202, simulator.webhooks.redeliver(guid).summary())


def _resend_as_new(simulator, body, guid):
    return json_response(202, {"guid": simulator.webhooks.resend_as_new(guid)})


def _lose(simulator, body):
    simulator.webhooks.lose(body.get("times", 1))


def _release(simulator, body):
    simulator.webhooks.release(body.get("order", "reversed"))


def _stats(simulator, body):
    return json_response(200, {"requests": simulator.request_count})


def _revoked(simulator, body):
    return json_response(200, [asdict(revoked) for revoked in simulator.tokens.revoked])


def _required(body: dict, name: str):
    if name not in body:
        raise ValueError(f"The body needs {name!r}.")
    return body[name]


def _summary(org) -> dict:
    return {
        "login": org.login,
        "id": org.id,
        "node_id": org.node_id,
        "size": org.size,
        "viewer_is_member": org.viewer_is_member,
    }


_ENDPOINTS = (
    ("POST", r"faults", _inject),
    ("DELETE", r"faults", lambda simulator, body: simulator.clear_faults()),
    ("POST", r"latency", _latency),
    ("POST", r"rate_limit", _rate_limit),
    ("POST", r"tokens", _issue_token),
    ("DELETE", r"tokens/([^/]+)", lambda simulator, body, token: simulator.revoke_token(token)),
    ("POST", r"orgs", _add_org),
    ("GET", r"orgs/([^/]+)", _org),
    ("POST", r"orgs/([^/]+)/changes", _change_org),
    ("DELETE", r"orgs/([^/]+)", _delete_org),
    ("GET", r"orgs/([^/]+)/teams", _teams),
    ("POST", r"orgs/([^/]+)/teams", _create_team),
    ("POST", r"orgs/([^/]+)/teams/([^/]+)", _edit_team),
    ("DELETE", r"orgs/([^/]+)/teams/([^/]+)", _delete_team),
    ("POST", r"orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", _set_team_membership),
    ("DELETE", r"orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", _remove_team_membership),
    ("GET", r"app", _app),
    ("POST", r"app", _configure_app),
    ("POST", r"app/installations", _install_app),
    ("POST", r"app/installations/(\d+)/suspend", _installation_change("suspend_installation")),
    (
        "POST",
        r"app/installations/(\d+)/unsuspend",
        _installation_change("unsuspend_installation"),
    ),
    ("DELETE", r"app/installations/(\d+)", _installation_change("uninstall_app")),
    ("POST", r"app/installations/(\d+)/request_permissions", _installation_change("request_permissions")),
    ("POST", r"app/installations/(\d+)/accept_new_permissions", _installation_change("accept_new_permissions")),
    ("POST", r"app/installations/(\d+)/revoke_tokens", _installation_change("revoke_installation_tokens")),
    ("POST", r"deliveries/lose", _lose),
    ("POST", r"deliveries/hold", lambda simulator, body: simulator.webhooks.hold()),
    ("POST", r"deliveries/release", _release),
    ("GET", r"deliveries", _deliveries),
    ("GET", r"deliveries/([^/]+)", _delivery),
    ("POST", r"deliveries/([^/]+)/redeliver", _redeliver),
    ("POST", r"deliveries/([^/]+)/resend_as_new", _resend_as_new),
    ("POST", r"reset", lambda simulator, body: simulator.reset()),
    ("GET", r"stats", _stats),
    ("GET", r"tokens/revoked", _revoked),
)
