"""The OAuth web flow as GitHub runs it: the authorize page, Authorize and Cancel, and the exchange of
the code for a token."""

import re
from urllib.parse import parse_qs, urlsplit

import requests

from tests.github.helpers import get


def authorize_query(**overrides):
    return {
        "client_id": "member-sync",
        "redirect_uri": "http://127.0.0.1:8000/integrations/github/callback/",
        "state": "s7a7e",
        "scope": "read:org user",
        **overrides,
    }


def test_the_authorize_page_names_the_app_scopes_and_organizations(github):
    response = requests.get(f"{github.url}/login/oauth/authorize", params=authorize_query(), timeout=10)

    page = response.text
    assert response.status_code == 200
    assert "<h1>Authorize member-sync</h1>" in page
    assert '<button type="submit">Authorize</button>' in page
    assert ">Cancel</a>" in page
    assert "<code>read:org</code>, <code>user</code>" in page
    assert "acme" in page


def test_authorize_then_exchange_gives_a_token_with_the_requested_scopes(github):
    authorized = requests.post(
        f"{github.url}/login/oauth/authorize", data=authorize_query(), allow_redirects=False, timeout=10
    )
    location = urlsplit(authorized.headers["Location"])
    callback = parse_qs(location.query)
    exchange = {"client_id": "member-sync", "client_secret": "secret", "code": callback["code"][0]}

    token = requests.post(
        f"{github.url}/login/oauth/access_token", data=exchange, headers={"Accept": "application/json"}, timeout=10
    )
    again = requests.post(f"{github.url}/login/oauth/access_token", data=exchange, timeout=10)

    assert authorized.status_code == 302
    assert f"{location.scheme}://{location.netloc}{location.path}" == authorize_query()["redirect_uri"]
    assert callback["state"] == ["s7a7e"]
    body = token.json()
    assert (body["token_type"], body["scope"]) == ("bearer", "read:org,user")
    assert re.fullmatch(r"gho_[A-Za-z0-9]{36}", body["access_token"])
    user = get(github, "/user", body["access_token"])
    assert (user.status_code, user.headers["X-OAuth-Scopes"]) == (200, "read:org, user")
    # A code works once; GitHub answers a used one with 200 and an error, form-encoded unless JSON was asked for.
    assert again.status_code == 200
    assert parse_qs(again.text)["error"] == ["bad_verification_code"]


def test_a_bad_code_or_wrong_client_is_refused_as_github_does(github):
    bad_code = requests.post(
        f"{github.url}/login/oauth/access_token",
        json={"client_id": "member-sync", "client_secret": "secret", "code": "0123456789abcdef0123"},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    code = github.codes.issue("member-sync", authorize_query()["redirect_uri"], ("read:org",))
    wrong_client = requests.post(
        f"{github.url}/login/oauth/access_token",
        json={"client_id": "another-app", "client_secret": "secret", "code": code},
        headers={"Accept": "application/json"},
        timeout=10,
    )

    assert bad_code.status_code == 200
    assert bad_code.json() == {
        "error": "bad_verification_code",
        "error_description": "The code passed is incorrect or expired.",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
    }
    assert wrong_client.json()["error"] == "incorrect_client_credentials"


def test_cancel_redirects_with_access_denied(github):
    page = requests.get(f"{github.url}/login/oauth/authorize", params=authorize_query(), timeout=10).text
    cancel = re.search(r'<a class="cancel" href="([^"]+)">Cancel</a>', page).group(1).replace("&amp;", "&")

    response = requests.get(f"{github.url}{cancel}", allow_redirects=False, timeout=10)

    callback = parse_qs(urlsplit(response.headers["Location"]).query)
    assert response.status_code == 302
    assert callback["error"] == ["access_denied"]
    assert callback["error_description"] == ["The user has denied your application access."]
    assert callback["state"] == ["s7a7e"]
    assert "error_uri" in callback


def test_authorize_refuses_a_missing_client_or_a_redirect_that_is_not_a_web_url(github):
    no_client = requests.get(f"{github.url}/login/oauth/authorize", params=authorize_query(client_id=""), timeout=10)
    script = requests.get(
        f"{github.url}/login/oauth/authorize", params=authorize_query(redirect_uri="javascript:alert(1)"), timeout=10
    )

    assert no_client.status_code == 404
    assert script.status_code == 400
