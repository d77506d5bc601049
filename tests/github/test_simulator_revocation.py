"""The simulator revokes tokens as GitHub's REST API does: an OAuth client deletes a token it was
issued (DELETE /applications/{client_id}/token), an installation token revokes itself (DELETE
/installation/token); it records who asked GitHub with which kind of credential; and octocat can be
a plain member of an organization (/user/memberships/orgs/{org} answers role member)."""

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker

from tests.conftest import GITHUB_PLANS, _description
from tests.github.helpers import get
from tests.github.test_simulator_app import app_user_token, control, mint


def delete_app_token(github, client_id, secret, access_token, *, prefix=""):
    return requests.delete(
        f"{github.url}{prefix}/applications/{client_id}/token",
        auth=(client_id, secret),
        json={"access_token": access_token} if access_token is not None else {},
        headers={"Accept": "application/vnd.github+json"},
        timeout=10,
    )


def described_statuses(operation, method="delete", plan="api.github.com"):
    return set(_description(f"rest.{plan}.json")["paths"][operation][method]["responses"])


@pytest.mark.parametrize(("prefix", "plan"), [("", "api.github.com"), ("/api/v3", "ghes")], ids=GITHUB_PLANS)
def test_an_oauth_client_deletes_its_token_which_then_stops_working(github, prefix, plan):
    token = github.issue_token()
    assert get(github, "/user", token).status_code == 200

    deleted = delete_app_token(github, "member-sync-test", "its-secret", token, prefix=prefix)

    assert deleted.status_code == 204
    assert "204" in described_statuses("/applications/{client_id}/token", plan=plan)
    assert get(github, "/user", token).status_code == 401
    [revoked] = github.tokens.revoked
    assert (revoked.token, revoked.kind) == (token, "gho")
    assert control(github, "GET", "tokens/revoked").json()[0]["token"] == token


def test_the_github_apps_user_token_is_deleted_only_with_the_apps_secret(github):
    token = app_user_token(github)["access_token"]
    app = github.app

    with_another_secret = delete_app_token(github, app.client_id, "not-its-secret", token)
    by_another_client = delete_app_token(github, "member-sync-test", "its-secret", token)
    still_works = get(github, "/user", token).status_code
    deleted = delete_app_token(github, app.client_id, app.client_secret, token)

    assert (with_another_secret.status_code, by_another_client.status_code, still_works) == (404, 404, 200)
    assert deleted.status_code == 204
    assert get(github, "/user", token).status_code == 401
    assert [revoked.kind for revoked in github.tokens.revoked] == ["ghu"]


def test_deleting_without_a_token_is_a_validation_error_as_described(github, github_rest_schema):
    refused = delete_app_token(github, "member-sync-test", "its-secret", None)

    assert refused.status_code == 422
    schema = github_rest_schema("/applications/{client_id}/token", method="delete", status="422")
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(refused.json())
    assert github.tokens.revoked == []


def test_an_installation_token_revokes_itself_and_another_can_be_minted(github):
    installation = github.install_app("acme")
    token = mint(github, installation.id).json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}

    revoked = requests.delete(f"{github.url}/installation/token", headers=headers, timeout=10)
    again = requests.delete(f"{github.url}/installation/token", headers=headers, timeout=10)

    assert revoked.status_code == 204
    assert "204" in described_statuses("/installation/token")
    assert again.status_code == 401
    assert get(github, "/orgs/acme/members", token).status_code == 401
    assert [(each.token, each.kind) for each in github.tokens.revoked] == [(token, "ghs")]
    assert mint(github, installation.id).status_code == 201


def test_a_persons_token_cannot_revoke_itself_as_an_installation(github, github_token):
    refused = requests.delete(
        f"{github.url}/installation/token", headers={"Authorization": f"Bearer {github_token}"}, timeout=10
    )

    assert refused.status_code == 403
    assert get(github, "/user", github_token).status_code == 200


def test_it_records_the_kind_of_credential_of_each_request(github, github_token):
    installation = github.install_app("acme")
    token = mint(github, installation.id).json()["token"]

    get(github, "/user", github_token)
    get(github, "/orgs/acme/members", token)
    get(github, "/rate_limit")

    assert [kind for _, _, kind in github.credentials] == ["jwt", "gho", "ghs", ""]
    assert [(method, target) for method, target, _ in github.credentials] == github.requests


@pytest.mark.parametrize("plan", GITHUB_PLANS)
def test_octocat_made_a_plain_member_is_answered_role_member_with_the_apps_user_token(github, github_rest_schema, plan):
    token = app_user_token(github)["access_token"]
    assert control(github, "POST", "orgs/acme/changes", viewer_role="member").status_code == 200

    answer = get(github, f"{'/api/v3' if plan == 'ghes' else ''}/user/memberships/orgs/acme", token)

    assert answer.status_code == 200
    assert (answer.json()["state"], answer.json()["role"]) == ("active", "member")
    schema = github_rest_schema("/user/memberships/orgs/{org}", plan=plan)
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(answer.json())
    github.org("acme").set_viewer_role("admin")
    assert get(github, "/user/memberships/orgs/acme", token).json()["role"] == "admin"
