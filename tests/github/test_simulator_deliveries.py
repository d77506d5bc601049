"""The simulator's App webhook deliveries as GitHub keeps them: every attempt listed by the App's
deliveries API (newest first, paged by cursor), its detail, a redelivery by id; and the delivery faults
the product must survive: lost, held and sent out of order, replayed under a new id. Also an
installation whose new permissions wait for an owner, and installation tokens revoked."""

import json

import pytest
import requests
from github import Auth, BadCredentialsException, Github, GithubException, GithubIntegration, UnknownObjectException
from githubkit import AppAuthStrategy, GitHub
from jsonschema import Draft202012Validator, FormatChecker
from requests.utils import parse_header_links

from tests.conftest import GITHUB_PLANS, github_webhook_validator
from tests.github.helpers import MEMBERS_QUERY, get, graphql
from tests.github.test_simulator_app import as_app, control, mint
from tests.helpers import wait_for


@pytest.fixture
def installed(github, webhook_receiver):
    """The App installed on acme, its `installation created` delivery received and recorded."""
    installation = github.install_app("acme")
    wait_for(lambda: len(github.webhooks.attempts()) == 1, timeout=15, message="the installation's delivery")
    return installation


def attempts(github, count):
    """The deliveries API's items once count attempts are recorded."""
    wait_for(lambda: len(github.webhooks.attempts()) >= count, timeout=15, message=f"{count} attempts")
    return as_app(github, "GET", "/app/hook/deliveries").json()


def delivered_guids(webhook_receiver):
    return [headers["X-GitHub-Delivery"] for headers, _ in webhook_receiver.deliveries]


def test_every_attempt_is_listed_newest_first_with_its_outcome(github, webhook_receiver, installed):
    added = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"]
    webhook_receiver.wait_for(2)
    webhook_receiver.status = 400
    removed = control(github, "POST", "orgs/acme/changes", remove=1).json()["deliveries"]

    items = attempts(github, 3)

    assert [item["guid"] for item in items] == removed + added + [delivered_guids(webhook_receiver)[0]]
    assert [(item["status"], item["status_code"]) for item in items] == [
        ("Invalid HTTP Response: 400", 400),
        ("OK", 200),
        ("OK", 200),
    ]
    assert [(item["event"], item["action"]) for item in items] == [
        ("organization", "member_removed"),
        ("organization", "member_added"),
        ("installation", "created"),
    ]
    assert {item["installation_id"] for item in items} == {installed.id}
    assert not any(item["redelivery"] for item in items)
    assert items[0]["id"] > items[1]["id"] > items[2]["id"]
    # Only the App sees them: its JWT, not a token.
    assert requests.get(f"{github.url}/app/hook/deliveries", timeout=10).status_code == 401
    assert as_app(github, "GET", "/app/hook/deliveries", mint(github, installed.id).json()["token"]).status_code == 401


@pytest.mark.parametrize(("prefix", "plan"), [("", "api.github.com"), ("/api/v3", "ghes")], ids=GITHUB_PLANS)
def test_delivery_bodies_validate_against_githubs_response_schemas(
    github, webhook_receiver, installed, github_rest_schema, prefix, plan
):
    webhook_receiver.status = 500
    control(github, "POST", "orgs/acme/changes", add=1)
    item = attempts(github, 2)[0]

    answers = {
        ("/app/hook/deliveries", "get", "200"): as_app(github, "GET", f"{prefix}/app/hook/deliveries"),
        ("/app/hook/deliveries/{delivery_id}", "get", "200"): as_app(
            github, "GET", f"{prefix}/app/hook/deliveries/{item['id']}"
        ),
        ("/app/hook/deliveries/{delivery_id}/attempts", "post", "202"): as_app(
            github, "POST", f"{prefix}/app/hook/deliveries/{item['id']}/attempts"
        ),
    }

    for (operation, method, status), response in answers.items():
        assert response.status_code == int(status), operation
        schema = github_rest_schema(operation, method=method, status=status, plan=plan)
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(response.json())


def test_deliveries_are_paged_by_the_cursor_of_the_link_header(github, webhook_receiver, installed):
    control(github, "POST", "orgs/acme/changes", add=4)
    everything = attempts(github, 5)

    pages, url = [], f"{github.url}/app/hook/deliveries?per_page=2"
    while url:
        response = as_app(github, "GET", url.removeprefix(github.url))
        pages.append([item["id"] for item in response.json()])
        url = next((link["url"] for link in parse_header_links(response.headers.get("Link", ""))), None)

    assert pages == [[item["id"] for item in everything[start : start + 2]] for start in (0, 2, 4)]
    assert len(everything) == 5  # 30 a page unless asked otherwise
    first_link = parse_header_links(as_app(github, "GET", "/app/hook/deliveries?per_page=2").headers["Link"])
    assert first_link[0]["rel"] == "next"
    assert "cursor=" in first_link[0]["url"]
    assert "per_page=2" in first_link[0]["url"]


def test_a_deliverys_detail_holds_the_request_sent_and_the_receivers_answer(github, webhook_receiver, installed):
    guid = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"][0]
    item = attempts(github, 2)[0]

    detail = as_app(github, "GET", f"/app/hook/deliveries/{item['id']}").json()

    _, body = webhook_receiver.wait_for(2)[1]
    assert detail["guid"] == guid
    assert detail["url"] == webhook_receiver.url
    assert detail["request"]["payload"] == json.loads(body)
    assert detail["request"]["headers"]["X-GitHub-Delivery"] == guid
    assert as_app(github, "GET", "/app/hook/deliveries/1").status_code == 404


def test_a_redelivery_by_id_sends_the_same_body_under_the_same_guid_as_a_new_attempt(
    github, webhook_receiver, installed
):
    webhook_receiver.status = 503
    guid = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"][0]
    failed = attempts(github, 2)[0]
    webhook_receiver.status = 200

    answer = as_app(github, "POST", f"/app/hook/deliveries/{failed['id']}/attempts")
    items = attempts(github, 3)

    assert answer.status_code == 202
    (_, first), (again_headers, again) = webhook_receiver.wait_for(3)[1:]
    assert (again_headers["X-GitHub-Delivery"], again) == (guid, first)
    assert [(item["guid"], item["redelivery"], item["status"]) for item in items[:2]] == [
        (guid, True, "OK"),
        (guid, False, "Invalid HTTP Response: 503"),
    ]
    assert items[0]["id"] != failed["id"]


def test_a_lost_delivery_is_a_failed_attempt_that_never_reached_the_receiver(github, webhook_receiver, installed):
    control(github, "POST", "deliveries/lose", times=1)
    lost = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"][0]
    arrived = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"][0]

    items = attempts(github, 3)

    webhook_receiver.wait_for(2)
    assert delivered_guids(webhook_receiver)[1:] == [arrived]
    by_guid = {item["guid"]: item for item in items}
    assert (by_guid[lost]["status_code"], by_guid[lost]["status"]) == (0, "failed to connect to host")
    assert by_guid[arrived]["status"] == "OK"
    # GitHub never redelivers by itself; asked to, it does.
    as_app(github, "POST", f"/app/hook/deliveries/{by_guid[lost]['id']}/attempts")
    webhook_receiver.wait_for(3)
    assert delivered_guids(webhook_receiver)[2] == lost


def test_held_deliveries_arrive_on_release_in_the_order_asked(github, webhook_receiver, installed):
    github.webhooks.hold()
    first = github.add_members("acme", 3)[1]
    control(github, "POST", "deliveries/release", order="reversed")
    attempts(github, 4)

    github.webhooks.hold()
    second = github.add_members("acme", 2)[1]
    held = list(github.webhooks.attempts())
    github.webhooks.release(order="sent")
    webhook_receiver.wait_for(6)

    assert delivered_guids(webhook_receiver)[1:] == list(reversed(first)) + second
    assert len(held) == 4  # the installation's and the first three: the held ones were not attempted


def test_a_delivery_resent_as_new_has_the_same_body_under_a_new_guid(github, webhook_receiver, installed):
    guid = control(github, "POST", "orgs/acme/changes", add=1).json()["deliveries"][0]
    webhook_receiver.wait_for(2)

    replay = control(github, "POST", f"deliveries/{guid}/resend_as_new")

    (_, original), (replay_headers, replayed) = webhook_receiver.wait_for(3)[1:]
    assert replay.status_code == 202
    assert replay_headers["X-GitHub-Delivery"] == replay.json()["guid"] != guid
    assert replayed == original
    assert github.webhooks.resend_as_new(guid) not in (guid, replay.json()["guid"])


def test_new_permissions_not_accepted_keep_every_token_of_the_installation_from_the_members(
    github, webhook_receiver, installed
):
    before = mint(github, installed.id).json()["token"]
    control(github, "POST", f"app/installations/{installed.id}/request_permissions")
    after = mint(github, installed.id).json()
    member = github.org("acme").members[3].login

    for token in (before, after["token"]):
        for path in ("/orgs/acme/members", f"/orgs/acme/memberships/{member}"):
            refused = get(github, path, token)
            assert (refused.status_code, refused.json()["message"]) == (403, "Resource not accessible by integration")
        assert get(github, "/orgs/acme", token).status_code == 200
        answer = graphql(github, token, MEMBERS_QUERY, login="acme", first=5)
        assert answer.status_code == 200
        assert answer.json()["data"]["organization"] is None
        (error,) = answer.json()["errors"]
        assert (error["type"], error["message"], error["path"]) == (
            "FORBIDDEN",
            "Resource not accessible by integration",
            ["organization", "membersWithRole"],
        )
    assert "members" not in after["permissions"]
    assert "members" not in as_app(github, "GET", f"/app/installations/{installed.id}").json()["permissions"]

    accepted = control(github, "POST", f"app/installations/{installed.id}/accept_new_permissions").json()

    headers, body = webhook_receiver.wait_for(2)[1]
    assert accepted["deliveries"] == [headers["X-GitHub-Delivery"]]
    assert json.loads(body)["action"] == "new_permissions_accepted"
    for plan in GITHUB_PLANS:
        github_webhook_validator("installation-new-permissions-accepted", plan).validate(json.loads(body))
    assert get(github, "/orgs/acme/members", before).status_code == 200


def test_revoked_installation_tokens_are_refused_and_a_new_one_can_be_minted(github, installed):
    revoked = mint(github, installed.id).json()["token"]

    control(github, "POST", f"app/installations/{installed.id}/revoke_tokens")
    renewed = mint(github, installed.id).json()["token"]

    refused = get(github, "/orgs/acme", revoked)
    assert (refused.status_code, refused.json()["message"]) == (401, "Bad credentials")
    assert get(github, "/orgs/acme", renewed).status_code == 200


@pytest.fixture
def kit_app(github):
    """githubkit as the App, signing its JWTs with the App's private key."""
    auth = AppAuthStrategy(github.app.id, github.app.private_key_pem)
    with GitHub(auth, base_url=github.url) as client:
        yield client


def test_githubkit_lists_reads_and_redelivers_the_apps_deliveries(github, webhook_receiver, installed, kit_app):
    webhook_receiver.status = 500
    control(github, "POST", "orgs/acme/changes", add=2)
    attempts(github, 3)
    webhook_receiver.status = 200

    listed = list(kit_app.rest.paginate(kit_app.rest.apps.list_webhook_deliveries, per_page=2))
    failed = [item for item in listed if item.status != "OK"]
    detail = kit_app.rest.apps.get_webhook_delivery(failed[0].id).parsed_data
    redelivered = kit_app.rest.apps.redeliver_webhook_delivery(failed[0].id)

    assert len(listed) == 3
    assert len(failed) == 2
    assert (detail.guid, detail.status_code) == (failed[0].guid, 500)
    assert redelivered.status_code == 202
    assert attempts(github, 4)[0]["redelivery"] is True


@pytest.fixture
def pygithub_app(github):
    """PyGithub as the App, signing its JWTs with the App's private key."""
    auth = Auth.AppAuth(github.app.id, github.app.private_key_pem)
    with GithubIntegration(auth=auth, base_url=github.url) as client:
        yield client


def test_pygithub_reads_and_redelivers_the_apps_deliveries(github, webhook_receiver, installed, pygithub_app):
    """PyGithub has no method of its own for the deliveries API: its requester, with the App's JWT,
    sends the calls as PyGithub sends any other."""
    webhook_receiver.status = 500
    control(github, "POST", "orgs/acme/changes", add=1)
    attempts(github, 2)
    webhook_receiver.status = 200

    _, listed = pygithub_app.requester.requestJsonAndCheck("GET", "/app/hook/deliveries", {"per_page": 100})
    failed = next(item for item in listed if item["status_code"] == 500)
    status, _, _ = pygithub_app.requester.requestJson("POST", f"/app/hook/deliveries/{failed['id']}/attempts")

    assert [item["status"] for item in listed] == ["Invalid HTTP Response: 500", "OK"]
    assert status == 202
    assert attempts(github, 3)[0]["guid"] == failed["guid"]


def test_pygithub_sees_an_installation_suspended_then_gone(github, installed, pygithub_app):
    github.suspend_installation(installed.id)
    suspended = pygithub_app.get_app_installation(installed.id)
    github.uninstall_app(installed.id)

    assert suspended.id == installed.id
    assert suspended.raw_data["suspended_at"] is not None
    with pytest.raises(UnknownObjectException):
        pygithub_app.get_app_installation(installed.id).id  # noqa: B018 (PyGithub reads lazily)


def test_pygithub_mints_a_new_token_once_the_old_ones_are_revoked(github, installed, pygithub_app):
    old = pygithub_app.get_access_token(installed.id).token
    github.revoke_installation_tokens(installed.id)
    new = pygithub_app.get_access_token(installed.id).token

    as_old, as_new = (Github(auth=Auth.Token(token), base_url=github.url, retry=None) for token in (old, new))
    with pytest.raises(BadCredentialsException):
        as_old.get_organization("acme").get_members().totalCount  # noqa: B018
    assert as_new.get_organization("acme").get_members().totalCount == 250


def test_pygithub_is_refused_the_members_until_new_permissions_are_accepted(github, installed, pygithub_app):
    github.request_permissions(installed.id)
    token = pygithub_app.get_access_token(installed.id).token
    client = Github(auth=Auth.Token(token), base_url=github.url, retry=None)

    with pytest.raises(GithubException) as refused:
        list(client.get_organization("acme").get_members())
    github.accept_new_permissions(installed.id)

    assert refused.value.status == 403
    assert refused.value.data["message"] == "Resource not accessible by integration"
    assert client.get_organization("acme").get_members().totalCount == 250
