"""The simulator as a GitHub App: its JWTs, installation tokens and their expiry, /user/installations,
the install page's redirect to the Setup URL, and signed webhook deliveries; its App answers and its
deliveries conform to GitHub's descriptions of them."""

import hashlib
import hmac
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker

from github_simulator.app import GitHubApp
from tests.conftest import GITHUB_PLANS, github_webhook_validator
from tests.github.helpers import MEMBERS_QUERY, all_members, get, graphql, members_page
from tests.github_webhooks import SECRET
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def app_jwt(github, *, key=None, iss=None, iat=None, exp=None):
    """The App's JWT as GitHub asks for it: RS256, issued a minute ago, valid nine minutes more."""
    now = int(time.time())
    claims = {
        "iat": now - 60 if iat is None else iat,
        "exp": now + 540 if exp is None else exp,
        "iss": str(github.app.id) if iss is None else iss,
    }
    return jwt.encode(claims, key or github.app.private_key_pem, algorithm="RS256")


def as_app(github, method, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token or app_jwt(github)}", "Accept": "application/vnd.github+json"}
    return requests.request(method, f"{github.url}{path}", headers=headers, timeout=10, **kwargs)


def mint(github, installation_id):
    return as_app(github, "POST", f"/app/installations/{installation_id}/access_tokens")


def control(github, method, path, **body):
    return requests.request(method, f"{github.url}/_simulator/{path}", json=body, timeout=10)


def app_user_token(github):
    """A user access token of the App, from its user authorization (the OAuth web flow, App's client)."""
    app = github.app
    form = {"client_id": app.client_id, "redirect_uri": "http://127.0.0.1/setup/", "state": "s"}
    authorized = requests.post(f"{github.url}/login/oauth/authorize", data=form, allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(authorized.headers["Location"]).query)["code"][0]
    exchange = {"client_id": app.client_id, "client_secret": app.client_secret, "code": code}
    answer = requests.post(
        f"{github.url}/login/oauth/access_token", data=exchange, headers={"Accept": "application/json"}, timeout=10
    )
    return answer.json()


def test_it_mints_an_installation_token_for_the_apps_jwt(github):
    installation = github.install_app("acme")

    by_id = mint(github, installation.id)
    by_client_id = as_app(
        github, "POST", f"/app/installations/{installation.id}/access_tokens", app_jwt(github, iss=github.app.client_id)
    )
    described = as_app(github, "GET", f"/app/installations/{installation.id}").json()
    app = as_app(github, "GET", "/app").json()

    assert (by_id.status_code, by_client_id.status_code) == (201, 201)
    body = by_id.json()
    assert re.fullmatch(r"ghs_[A-Za-z0-9]{36}", body["token"])
    assert body["permissions"] == {"members": "read", "metadata": "read"}
    assert body["repository_selection"] == "all"
    expires_in = time.mktime(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())
    assert 3500 < expires_in <= 3600
    assert (described["account"]["login"], described["account"]["type"]) == ("acme", "Organization")
    assert (described["app_id"], described["target_type"], described["suspended_at"]) == (
        github.app.id,
        "Organization",
        None,
    )
    assert (app["id"], app["slug"], app["client_id"]) == (github.app.id, github.app.slug, github.app.client_id)


# Not GET /app/installations: GitHub's description asks each item's account to be a user and an
# enterprise at once (allOf), where GET /app/installations/{installation_id} asks for either (anyOf).
@pytest.mark.parametrize(("prefix", "plan"), [("", "api.github.com"), ("/api/v3", "ghes")], ids=GITHUB_PLANS)
def test_app_bodies_validate_against_githubs_response_schemas(github, github_rest_schema, prefix, plan):
    installation = github.install_app("acme")
    path = f"{prefix}/app/installations/{installation.id}"
    answers = {
        ("/app", "get", "200"): as_app(github, "GET", f"{prefix}/app"),
        ("/app/installations/{installation_id}", "get", "200"): as_app(github, "GET", path),
        ("/app/installations/{installation_id}/access_tokens", "post", "201"): as_app(
            github, "POST", f"{path}/access_tokens"
        ),
        ("/user/installations", "get", "200"): get(
            github, f"{prefix}/user/installations", app_user_token(github)["access_token"]
        ),
    }

    for (operation, method, status), response in answers.items():
        assert response.status_code == int(status), operation
        schema = github_rest_schema(operation, method=method, status=status, plan=plan)
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(response.json())


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": -120, "iat": -700}, "'Expiration time' claim ('exp') must be"),
        ({"exp": 1200}, "'Expiration time' claim ('exp') is too far in the future"),
        ({"iat": 600}, "'Issued at' claim ('iat') must be an Integer"),
        ({"iss": "999"}, "A JSON web token could not be decoded"),
        ({"key": "another"}, "A JSON web token could not be decoded"),
    ],
    ids=["expired", "exp too far", "iat in the future", "another app", "another key"],
)
def test_it_refuses_a_jwt_that_is_expired_foreign_or_too_long(github, claims, message):
    installation = github.install_app("acme")
    # Times are seconds from now, taken when the test runs.
    claims = {name: int(time.time()) + value if name in ("iat", "exp") else value for name, value in claims.items()}
    if claims.get("key"):
        claims = {"key": GitHubApp().private_key_pem}

    refused = as_app(github, "POST", f"/app/installations/{installation.id}/access_tokens", app_jwt(github, **claims))

    assert refused.status_code == 401
    assert refused.json()["message"].startswith(message)
    assert refused.json()["documentation_url"] == "https://docs.github.com/rest"


def test_it_refuses_an_app_endpoint_without_a_jwt_or_with_a_user_token(github, github_token):
    installation = github.install_app("acme")
    path = f"/app/installations/{installation.id}/access_tokens"

    assert requests.post(f"{github.url}{path}", timeout=10).status_code == 401
    assert as_app(github, "POST", path, github_token).status_code == 401
    assert mint(github, 1).status_code == 404


def test_an_installation_token_is_refused_once_its_lifetime_is_over(github):
    control(github, "POST", "app", token_lifetime_seconds=1)
    token = mint(github, github.install_app("acme").id).json()["token"]

    first = get(github, "/orgs/acme", token).status_code
    wait_for(lambda: get(github, "/orgs/acme", token).status_code == 401, timeout=10, message="the token to expire")

    assert first == 200
    assert get(github, "/orgs/acme", token).json()["message"] == "Bad credentials"
    assert mint(github, github.installations.for_org(github.org("acme").id).id).status_code == 201


def test_an_installation_token_sees_every_member_though_its_bot_is_no_member(github, github_token):
    github.org("acme").remove_viewer()  # so that a user's token sees the public members only
    token = mint(github, github.install_app("acme").id).json()["token"]
    size = github.org("acme").size

    edges = all_members(github, token)
    page = members_page(github, token)
    rest = get(github, "/orgs/acme/members?per_page=100&page=3", token)
    user_sees = members_page(github, github_token)["membersWithRole"]["totalCount"]

    assert len(edges) == size == page["membersWithRole"]["totalCount"]
    assert page["viewerIsAMember"] is False
    assert user_sees < size
    assert rest.status_code == 200
    assert len(rest.json()) == size - 200
    assert 'rel="next"' not in rest.headers.get("Link", "")
    assert get(github, "/user", token).json()["message"] == "Resource not accessible by integration"


def test_an_installation_token_sees_another_organization_as_an_outsider(github):
    github.add_org("globex", 30)
    token = mint(github, github.install_app("acme").id).json()["token"]

    outside = members_page(github, token, login="globex")["membersWithRole"]["totalCount"]

    assert outside < 30
    listed = get(github, "/orgs/globex/members?per_page=100", token)
    assert (listed.status_code, len(listed.json())) == (200, outside)


def test_user_installations_lists_only_installations_on_the_users_organizations(github, github_token):
    github.add_org("globex", 30)
    mine = github.install_app("acme")
    github.install_app("globex")
    github.org("globex").remove_viewer()
    answer = app_user_token(github)

    listed = get(github, "/user/installations", answer["access_token"])
    with_an_oauth_apps_token = get(github, "/user/installations", github_token)

    assert re.fullmatch(r"ghu_[A-Za-z0-9]{36}", answer["access_token"])
    assert answer["scope"] == ""
    assert listed.status_code == 200
    assert listed.json()["total_count"] == 1
    (installation,) = listed.json()["installations"]
    assert (installation["id"], installation["account"]["login"]) == (mine.id, "acme")
    assert (installation["app_slug"], installation["target_type"]) == (github.app.slug, "Organization")
    assert with_an_oauth_apps_token.status_code == 403


def test_the_apps_user_authorization_needs_the_apps_own_secret(github):
    app = github.app
    form = {"client_id": app.client_id, "redirect_uri": "http://127.0.0.1/setup/"}
    authorized = requests.post(f"{github.url}/login/oauth/authorize", data=form, allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(authorized.headers["Location"]).query)["code"][0]

    answer = requests.post(
        f"{github.url}/login/oauth/access_token",
        data={"client_id": app.client_id, "client_secret": "wrong", "code": code},
        headers={"Accept": "application/json"},
        timeout=10,
    ).json()

    assert answer["error"] == "incorrect_client_credentials"


@pytest.mark.parametrize("folder", ["apps", "github-apps"])  # github.com's path, Enterprise Server's
def test_the_install_page_redirects_to_the_setup_url_with_the_installation_id(github, folder):
    github.add_org("globex", 30)
    github.org("globex").remove_viewer()
    control(github, "POST", "app", setup_url="http://127.0.0.1:8000/github/app/setup/")
    page_url = f"{github.url}/{folder}/{github.app.slug}/installations/new"
    acme = github.org("acme").id

    page = requests.get(page_url, params={"state": "xyz"}, timeout=10)
    installed = requests.post(page_url, data={"target_id": acme, "state": "xyz"}, allow_redirects=False, timeout=10)
    again = requests.post(page_url, data={"target_id": acme}, allow_redirects=False, timeout=10)
    elsewhere = requests.post(page_url, data={"target_id": github.org("globex").id}, allow_redirects=False, timeout=10)

    assert page.status_code == 200
    assert "Install on acme" in page.text
    assert f'action="/{folder}/{github.app.slug}/installations/new"' in page.text
    assert "globex" not in page.text
    assert installed.status_code == 302
    location = urlsplit(installed.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:8000/github/app/setup/"
    assert (query["setup_action"], query["state"]) == (["install"], ["xyz"])
    installation = as_app(github, "GET", f"/app/installations/{query['installation_id'][0]}").json()
    assert installation["account"]["login"] == "acme"
    assert parse_qs(urlsplit(again.headers["Location"]).query)["setup_action"] == ["update"]
    assert parse_qs(urlsplit(again.headers["Location"]).query)["installation_id"] == query["installation_id"]
    assert elsewhere.status_code == 404
    assert requests.get(f"{github.url}/apps/another-app/installations/new", timeout=10).status_code == 404


def test_member_changes_are_delivered_signed_to_the_webhook_url(github, webhook_receiver):
    installation = github.install_app("acme")
    removed_login = github.org("acme").members[5].login

    changed = control(github, "POST", "orgs/acme/changes", add=1, remove_logins=[removed_login], rename=2).json()
    deliveries = webhook_receiver.wait_for(3)  # installation created, member_removed, member_added

    guids = [headers["X-GitHub-Delivery"] for headers, _ in deliveries]
    assert len(set(guids)) == 3
    assert guids[1:] == changed["deliveries"]
    for headers, body in deliveries:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Hub-Signature-256"], expected)
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", headers["X-GitHub-Delivery"]
        )
        assert headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert headers["Content-Type"] == "application/json"
        assert headers["X-GitHub-Hook-Installation-Target-Type"] == "integration"
        assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(github.app.id)
        assert headers["X-GitHub-Hook-ID"].isdigit()
    events = [(headers["X-GitHub-Event"], json.loads(body)["action"]) for headers, body in deliveries]
    assert events == [("installation", "created"), ("organization", "member_removed"), ("organization", "member_added")]
    removed, added = (json.loads(body) for _, body in deliveries[1:])
    assert removed["membership"]["user"]["login"] == removed_login
    assert added["membership"]["user"]["login"] == changed["added"][0]["login"]
    assert added["installation"]["id"] == installation.id
    assert len(changed["renamed"]) == 2  # a member's new login sends nothing, as on GitHub
    log = control(github, "GET", "deliveries").json()
    assert [(entry["guid"], entry["status"]) for entry in log] == [(guid, 200) for guid in guids]


@pytest.mark.parametrize(
    ("change", "schema"),
    [
        ({"add": 1}, "organization-member-added"),
        ({"remove": 1}, "organization-member-removed"),
        ({"rename_to": "acme-corp"}, "organization-renamed"),
        (None, "organization-deleted"),
    ],
    ids=["member_added", "member_removed", "renamed", "deleted"],
)
def test_organization_deliveries_validate_against_githubs_webhook_schemas(github, webhook_receiver, change, schema):
    github.install_app("acme")
    webhook_receiver.wait_for(1)

    if change is None:
        answer = control(github, "DELETE", "orgs/acme").json()
    else:
        answer = control(github, "POST", "orgs/acme/changes", **change).json()
    headers, body = webhook_receiver.wait_for(2)[1]

    assert answer["deliveries"] == [headers["X-GitHub-Delivery"]]
    assert headers["X-GitHub-Event"] == "organization"
    for plan in GITHUB_PLANS:
        github_webhook_validator(schema, plan).validate(json.loads(body))
    if schema == "organization-renamed":
        assert json.loads(body)["changes"] == {"login": {"from": "acme"}}
        assert json.loads(body)["organization"]["login"] == "acme-corp"


def test_installation_deliveries_validate_against_githubs_webhook_schemas(github, webhook_receiver):
    installation = github.install_app("acme")
    webhook_receiver.wait_for(1)
    for action in ("suspend", "unsuspend"):
        control(github, "POST", f"app/installations/{installation.id}/{action}")
    control(github, "DELETE", f"app/installations/{installation.id}")

    payloads = [json.loads(body) for _, body in webhook_receiver.wait_for(4)]

    assert [payload["action"] for payload in payloads] == ["created", "suspend", "unsuspend", "deleted"]
    for payload in payloads:
        for plan in GITHUB_PLANS:
            github_webhook_validator(f"installation-{payload['action']}", plan).validate(payload)


def test_a_redelivery_keeps_the_delivery_id_and_body(github, webhook_receiver):
    github.install_app("acme")
    guid = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"][0]
    webhook_receiver.wait_for(2)
    webhook_receiver.status = 500
    failed = control(github, "POST", f"deliveries/{guid}/redeliver")
    webhook_receiver.wait_for(3)
    wait_for(
        lambda: control(github, "GET", f"deliveries/{guid}").json()["status"] == 500, timeout=10, message="the log"
    )

    (first_headers, first_body), (again_headers, again_body) = webhook_receiver.deliveries[1:]
    logged = control(github, "GET", f"deliveries/{guid}").json()

    assert failed.status_code == 202
    assert again_headers["X-GitHub-Delivery"] == first_headers["X-GitHub-Delivery"] == guid
    assert again_body == first_body
    assert (logged["attempts"], logged["payload"]["action"]) == (2, "member_added")


def test_installation_events_and_nothing_delivered_while_suspended(github, webhook_receiver):
    installation = github.install_app("acme")
    token = mint(github, installation.id).json()["token"]
    webhook_receiver.wait_for(1)

    suspended = control(github, "POST", f"app/installations/{installation.id}/suspend").json()["deliveries"]
    quiet = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"]
    refused_mint = mint(github, installation.id)
    refused_token = get(github, "/orgs/acme", token).status_code
    unsuspended = control(github, "POST", f"app/installations/{installation.id}/unsuspend").json()["deliveries"]
    deleted = control(github, "DELETE", f"app/installations/{installation.id}").json()["deliveries"]
    deliveries = webhook_receiver.wait_for(4)

    assert quiet == []
    assert (refused_mint.status_code, refused_mint.json()["message"]) == (403, "This installation has been suspended")
    assert refused_token == 401
    assert [json.loads(body)["action"] for _, body in deliveries] == ["created", "suspend", "unsuspend", "deleted"]
    assert [headers["X-GitHub-Delivery"] for headers, _ in deliveries[1:]] == suspended + unsuspended + deleted
    assert json.loads(deliveries[1][1])["installation"]["id"] == installation.id
    assert mint(github, installation.id).status_code == 404


def test_nothing_is_delivered_without_a_webhook_url_or_an_installation(github, webhook_receiver):
    without_installation = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"]
    github.app.configure(webhook_url=None)
    github.install_app("acme")
    without_url = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"]

    assert without_installation == without_url == []
    assert control(github, "GET", "deliveries").json() == []


def test_the_control_api_hands_out_the_apps_settings_and_reset_restores_them(github):
    configured = control(github, "POST", "app", webhook_url="http://127.0.0.1:1/hook/", setup_url="http://x/setup/")
    refused = control(github, "POST", "app", id=5)
    github.install_app("acme")

    github.reset()

    assert configured.status_code == 200
    assert configured.json()["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert refused.status_code == 400
    settings = control(github, "GET", "app").json()
    assert (settings["webhook_url"], settings["setup_url"], settings["token_lifetime_seconds"]) == (None, None, 3600)
    assert settings["private_key"] == configured.json()["private_key"]
    assert list(github.installations) == []


@pytest.mark.services  # manage.py github_simulator in a process of its own
def test_the_management_command_writes_the_apps_private_key_and_accepts_jwts_signed_with_it(tmp_path):
    key_file = tmp_path / "app.pem"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "github_simulator", "--port", "0", "--org", "globex=30"]
        + ["--app-id", "77", "--app-private-key-file", str(key_file), "--app-setup-url", "http://127.0.0.1/setup/"],
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
        url = re.search(r"http://127\.0\.0\.1:\d+", output[0]).group(0)
        installation = requests.post(f"{url}/_simulator/app/installations", json={"org": "globex"}, timeout=10).json()
        now = int(time.time())
        token = jwt.encode({"iat": now - 60, "exp": now + 540, "iss": "77"}, key_file.read_text(), algorithm="RS256")
        minted = requests.post(
            f"{url}/app/installations/{installation['id']}/access_tokens",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        settings = requests.get(f"{url}/_simulator/app", timeout=10).json()

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=15) == 0
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert minted.status_code == 201
        assert (settings["id"], settings["setup_url"]) == (77, "http://127.0.0.1/setup/")
    finally:
        if process.poll() is None:
            process.kill()


def test_the_installation_tokens_members_answer_is_the_products_query(github):
    token = mint(github, github.install_app("acme").id).json()["token"]

    answer = graphql(github, token, MEMBERS_QUERY, login="acme", first=5).json()

    assert "errors" not in answer
    assert len(answer["data"]["organization"]["membersWithRole"]["edges"]) == 5
