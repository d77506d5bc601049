"""GitHub's OAuth web flow against the simulator: the authorize URL, and the code exchanged for a token."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.github.errors import GitHubUnavailable, OAuthError, ScopeMissing
from integrations.github.oauth import authorize_url, exchange_code

CALLBACK = "https://app.example/integrations/github/callback/"


@pytest.fixture(autouse=True)
def oauth_app(settings, github):
    settings.GITHUB_WEB_URL = github.url
    settings.GITHUB_CLIENT_ID = "Iv1.simulated"
    settings.GITHUB_CLIENT_SECRET = "simulated-secret"


def authorize(url: str, *, scope=None) -> dict:
    """What a user's Authorize click on GitHub's page sends back to the callback."""
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    assert requests.get(url, timeout=5).status_code == 200
    if scope is not None:
        query["scope"] = scope
    origin = url.split("/login/oauth/")[0]
    answer = requests.post(f"{origin}/login/oauth/authorize", data=query, timeout=5, allow_redirects=False)
    assert answer.status_code == 302
    return {name: values[0] for name, values in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def test_the_authorize_url_asks_for_read_org_with_the_state(github):
    url = urlsplit(authorize_url(state="the-state", redirect_uri=CALLBACK))

    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{github.url}/login/oauth/authorize"
    assert parse_qs(url.query) == {
        "client_id": ["Iv1.simulated"],
        "redirect_uri": [CALLBACK],
        "scope": ["read:org"],
        "state": ["the-state"],
    }


def test_the_code_is_exchanged_for_a_token_with_its_granted_scopes():
    callback = authorize(authorize_url(state="the-state", redirect_uri=CALLBACK))

    token = exchange_code(callback["code"], redirect_uri=CALLBACK)

    assert callback["state"] == "the-state"
    assert (token.token_type, token.scopes) == ("bearer", ["read:org"])


def test_a_code_used_twice_is_refused():
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK))["code"]
    exchange_code(code, redirect_uri=CALLBACK)

    with pytest.raises(OAuthError) as raised:
        exchange_code(code, redirect_uri=CALLBACK)

    assert raised.value.code == "bad_verification_code"


def test_a_wrong_client_id_is_an_error_for_the_operator(settings):
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK))["code"]
    settings.GITHUB_CLIENT_ID = "another-app"

    with pytest.raises(OAuthError) as raised:
        exchange_code(code, redirect_uri=CALLBACK)

    assert raised.value.code == "incorrect_client_credentials"
    assert "GITHUB_CLIENT_ID" in str(raised.value)


@pytest.mark.parametrize("scope", ["repo", ""])
def test_a_grant_without_read_org_is_refused(scope):
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK), scope=scope)["code"]

    with pytest.raises(ScopeMissing):
        exchange_code(code, redirect_uri=CALLBACK)


@pytest.mark.parametrize("scope", ["admin:org", "write:org"])
def test_a_scope_that_implies_read_org_is_enough(scope):
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK, scopes=[scope]))["code"]

    assert exchange_code(code, redirect_uri=CALLBACK).scopes == [scope]


def test_the_exchange_is_not_sent_twice_once_github_has_it(github):
    code = authorize(authorize_url(state="s", redirect_uri=CALLBACK))["code"]
    github.inject("server_error", path="/login/oauth/access_token", status=502)

    with pytest.raises(GitHubUnavailable):
        exchange_code(code, redirect_uri=CALLBACK)

    assert [target for _, target in github.requests].count("/login/oauth/access_token") == 1
