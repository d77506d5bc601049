"""The simulator run in a process of its own: the control API under /_simulator/ and the management
command; and what the Python API's reset keeps."""

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.github.helpers import MEMBERS_QUERY, get, graphql
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_the_control_api_turns_rate_limiting_off_and_on(github, github_token):
    control = f"{github.url}/_simulator"

    off = requests.post(f"{control}/rate_limit", json={"limit": None}, timeout=10)
    unlimited = get(github, "/user", github_token)
    on = requests.post(f"{control}/rate_limit", json={"limit": 10}, timeout=10)
    limited = get(github, "/user", github_token)
    refused = requests.post(f"{control}/rate_limit", json={"limit": "many"}, timeout=10)

    assert (off.status_code, on.status_code, refused.status_code) == (200, 200, 400)
    assert "X-RateLimit-Remaining" not in unlimited.headers
    assert (limited.headers["X-RateLimit-Limit"], limited.headers["X-RateLimit-Remaining"]) == ("10", "9")


def test_the_control_api_drives_the_same_simulator(github):
    control = f"{github.url}/_simulator"
    token = requests.post(f"{control}/tokens", json={"scopes": ["read:org"]}, timeout=10).json()["token"]

    created = requests.post(f"{control}/orgs", json={"login": "initech", "size": 40}, timeout=10)
    changed = requests.post(
        f"{control}/orgs/initech/changes",
        json={"add": 2, "remove": 1, "rename": 1, "roles": 1, "profiles": 1, "rename_to": "initrode"},
        timeout=10,
    )
    members = requests.get(f"{control}/orgs/initrode", timeout=10).json()["members"]
    fault = requests.post(f"{control}/faults", json={"fault": "server_error", "times": 1, "status": 503}, timeout=10)
    statuses = [get(github, "/orgs/initrode", token).status_code for _ in range(2)]
    requests.post(f"{control}/faults", json={"fault": "org_not_found", "times": None}, timeout=10)
    lasting = get(github, "/orgs/initrode", token).status_code
    requests.delete(f"{control}/faults", timeout=10)
    cleared = get(github, "/orgs/initrode", token).status_code
    requests.post(f"{control}/latency", json={"ms": 150}, timeout=10)
    started = time.monotonic()
    get(github, "/user", token)
    slowed = time.monotonic() - started
    stats = requests.get(f"{control}/stats", timeout=10).json()

    assert (created.status_code, created.json()["size"]) == (201, 40)
    assert changed.status_code == 200
    assert (changed.json()["login"], changed.json()["size"], len(changed.json()["added"])) == ("initrode", 41, 2)
    assert len(members) == 41
    assert fault.status_code == 201
    assert statuses == [503, 200]
    assert (lasting, cleared) == (404, 200)
    assert slowed >= 0.15
    assert stats == {"requests": 5} == {"requests": github.request_count}


def test_the_control_api_revokes_tokens_resets_and_refuses_nonsense(github):
    control = f"{github.url}/_simulator"
    token = requests.post(f"{control}/tokens", json={"scopes": ["read:org"]}, timeout=10).json()["token"]
    requests.post(f"{control}/orgs", json={"login": "initech", "size": 4}, timeout=10)

    revoked = requests.delete(f"{control}/tokens/{token}", timeout=10)
    after_revoke = get(github, "/user", token).status_code
    reset = requests.post(f"{control}/reset", timeout=10)

    assert (revoked.status_code, after_revoke, reset.status_code) == (204, 401, 204)
    assert "initech" not in {org.login for org in github.orgs}
    assert requests.get(f"{control}/stats", timeout=10).json() == {"requests": 0}
    assert requests.post(f"{control}/faults", json={"fault": "nope"}, timeout=10).status_code == 400
    assert requests.post(f"{control}/latency", json={}, timeout=10).status_code == 400
    assert requests.post(f"{control}/orgs/nobody/changes", json={"add": 1}, timeout=10).status_code == 404


def test_reset_restores_the_constructors_organizations_and_keeps_tokens(github, github_token):
    github.add_org("globex", size=5)
    github.org("acme").remove_members(10)
    github.inject("server_error", times=None)
    github.set_latency(1000)
    github.reset()

    started = time.monotonic()
    response = get(github, "/orgs/acme", github_token)

    assert time.monotonic() - started < 1
    assert response.status_code == 200
    assert github.org("acme").size == 250
    with pytest.raises(KeyError):
        github.org("globex")
    assert github.requests == [("GET", "/orgs/acme")]
    assert github.request_count == 1


def test_requests_are_counted_without_the_control_api(github, github_token):
    get(github, "/orgs/acme/members?per_page=5", github_token)
    requests.get(f"{github.url}/_simulator/stats", timeout=10)
    graphql(github, github_token, "{ viewer { login } }")

    assert github.requests == [("GET", "/orgs/acme/members?per_page=5"), ("POST", "/graphql")]


def test_a_client_keeps_its_connection_alive_between_requests(github, github_token):
    host, port = urlsplit(github.url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sockets = []
    for _ in range(3):
        connection.request("GET", "/orgs/acme", headers={"Authorization": f"token {github_token}"})
        response = connection.getresponse()
        response.read()
        sockets.append(connection.sock)
        assert (response.status, response.version) == (200, 11)
    connection.close()

    assert sockets[0] is sockets[1] is sockets[2]


def test_the_control_api_takes_the_viewer_out_of_an_organization(github, github_token):
    changed = requests.post(f"{github.url}/_simulator/orgs/acme/changes", json={"remove_viewer": True}, timeout=10)

    answer = graphql(github, github_token, MEMBERS_QUERY, login="acme", first=10).json()["data"]["organization"]

    assert (changed.status_code, changed.json()["viewer_is_member"]) == (200, False)
    assert answer["viewerIsAMember"] is False
    listed = get(github, "/orgs/acme/members?per_page=10", github_token).json()
    assert [user["login"] for user in listed] == [edge["node"]["login"] for edge in answer["membersWithRole"]["edges"]]


@pytest.mark.services  # manage.py github_simulator in a process of its own
def test_the_management_command_serves_on_a_free_port_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "manage.py", "github_simulator", "--port", "0", "--org", "globex=30"],
        cwd=ROOT,
        # The command is installed with DEBUG on only (the tests' settings have it off).
        env={**os.environ, "DEBUG": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    try:
        wait_for(lambda: any("listening on" in line for line in output), timeout=30, message="the simulator to start")
        url = re.fullmatch(r"GitHub simulator listening on (http://127\.0\.0\.1:[1-9]\d*)", output[0].strip())
        assert url is not None
        token = requests.post(f"{url.group(1)}/_simulator/tokens", json={"scopes": ["read:org"]}, timeout=10).json()
        user = requests.get(f"{url.group(1)}/user", headers={"Authorization": f"token {token['token']}"}, timeout=10)
        org = requests.get(
            f"{url.group(1)}/orgs/globex", headers={"Authorization": f"token {token['token']}"}, timeout=10
        )

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=15) == 0
        assert (user.status_code, user.json()["login"]) == (200, "octocat")
        assert org.status_code == 200
    finally:
        if process.poll() is None:
            process.kill()
