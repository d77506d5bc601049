"""The control API under /_simulator/, for when the simulator runs in a process of its own (make run,
benchmarks, end-to-end tests). Each endpoint calls the Python API's method of the same purpose; one
that has nothing to tell answers 204."""

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


def _issue_token(simulator, body):
    scopes = tuple(body.get("scopes", ("read:org",)))
    return json_response(201, {"token": simulator.issue_token(scopes=scopes), "scopes": list(scopes)})


def _add_org(simulator, body):
    return json_response(201, _summary(simulator.add_org(_required(body, "login"), size=_required(body, "size"))))


def _org(simulator, body, login):
    org = simulator.org(login)
    return json_response(200, {**_summary(org), "members": [asdict(member) for member in org.members]})


def _change_org(simulator, body, login):
    """Membership changes between runs; each key is optional."""
    org = simulator.org(login)
    changes = {
        "removed": org.remove_members(body.get("remove", 0)),
        "added": org.add_members(body.get("add", 0)),
        "renamed": org.rename_members(body.get("rename", 0)),
        "roles": org.change_roles(body.get("roles", 0)),
        "profiles": org.update_profiles(body.get("profiles", 0)),
    }
    if "rename_to" in body:
        org.rename(body["rename_to"])
    if body.get("remove_viewer"):
        org.remove_viewer()
    return json_response(
        200, {**_summary(org), **{key: [asdict(member) for member in members] for key, members in changes.items()}}
    )


def _stats(simulator, body):
    return json_response(200, {"requests": simulator.request_count})


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
    ("POST", r"tokens", _issue_token),
    ("DELETE", r"tokens/([^/]+)", lambda simulator, body, token: simulator.revoke_token(token)),
    ("POST", r"orgs", _add_org),
    ("GET", r"orgs/([^/]+)", _org),
    ("POST", r"orgs/([^/]+)/changes", _change_org),
    ("POST", r"reset", lambda simulator, body: simulator.reset()),
    ("GET", r"stats", _stats),
)
