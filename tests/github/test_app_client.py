"""The product as a GitHub App, at the client's edge: the App's JWT, installation tokens minted with
it and kept until shortly before they expire, the installations a user can reach, and the settings
that configure the App. GitHub is a small real HTTP server here, which checks the JWT it is sent."""

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.github import app
from integrations.github.client import GitHubClient
from integrations.github.errors import (
    AppCredentialsRejected,
    AppNotConfigured,
    InstallationNotFound,
    InstallationSuspended,
    RateLimited,
)
from integrations.github.schemas import Installation, InstallationAccount
from tests.test_production_settings import manage

APP_ID = 4242


@pytest.fixture(scope="module")
def key_pair():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, private.public_key()


class FakeGitHub(ThreadingHTTPServer):
    """GitHub's App endpoints, as far as these tests need them: it mints a token for a request
    whose JWT the App's public key verifies, and lists installations to a user token."""

    daemon_threads = True

    def __init__(self, public_key):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.public_key = public_key
        self.minted = 0
        self.token_lifetime = timedelta(hours=1)
        self.mint_status = 201
        self.mint_headers = {}
        self.installation_pages = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        github = self.server
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            jwt.decode(token, github.public_key, algorithms=["RS256"], issuer=str(APP_ID))
        except jwt.InvalidTokenError:
            return self.answer(401, {"message": "A JSON web token could not be decoded"})
        if github.mint_status != 201:
            return self.answer(github.mint_status, {"message": "refused"}, github.mint_headers)
        installation_id = self.path.split("/")[3]
        with github.lock:
            github.minted += 1
            number = github.minted
        expires_at = datetime.now(UTC) + github.token_lifetime
        self.answer(201, {"token": f"ghs_{installation_id}_{number}", "expires_at": expires_at.isoformat()})

    def do_GET(self):
        page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
        github = self.server
        headers = {}
        if page < len(github.installation_pages):
            headers["Link"] = f'<{github.url}/user/installations?page={page + 1}>; rel="next"'
        items = github.installation_pages[page - 1]
        self.answer(200, {"total_count": sum(map(len, github.installation_pages)), "installations": items}, headers)

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_github(key_pair):
    server = FakeGitHub(key_pair[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def github_app(settings, key_pair, fake_github):
    """This server's GitHub App, on the fake GitHub; no token kept from another test."""
    settings.GITHUB_API_URL = settings.GITHUB_WEB_URL = fake_github.url
    settings.GITHUB_APP_ID = str(APP_ID)
    settings.GITHUB_APP_SLUG = "member-sync"
    settings.GITHUB_APP_PRIVATE_KEY = key_pair[0]
    settings.GITHUB_APP_CLIENT_ID = "Iv1.member-sync"
    settings.GITHUB_APP_CLIENT_SECRET = "member-sync-app-secret"
    app.forget_installation_tokens()
    yield fake_github
    app.forget_installation_tokens()


def test_the_apps_jwt_is_rs256_signed_with_a_string_issuer_and_lasts_under_ten_minutes(github_app, key_pair):
    now = 1_800_000_000

    token = app.app_jwt(now=now)

    claims = jwt.decode(token, key_pair[1], algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False})
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert claims["iss"] == str(APP_ID)
    assert claims["iat"] == now - 60
    assert claims["exp"] == now + 9 * 60
    assert claims["exp"] - claims["iat"] <= 10 * 60


def test_without_an_app_configured_nothing_is_signed_or_minted(settings):
    settings.GITHUB_APP_PRIVATE_KEY = ""

    assert not app.configured()
    with pytest.raises(AppNotConfigured):
        app.app_jwt()
    with pytest.raises(AppNotConfigured):
        app.installation_token(1)


def test_an_installation_token_is_minted_once_and_then_reused(github_app):
    first = app.installation_token(7)
    second = app.installation_token(7)

    assert first == second == "ghs_7_1"
    assert github_app.minted == 1


def test_each_installation_has_its_own_token(github_app):
    assert app.installation_token(7) != app.installation_token(8)
    assert github_app.minted == 2


def test_a_token_is_minted_again_shortly_before_it_expires(github_app):
    github_app.token_lifetime = timedelta(minutes=4)

    first = app.installation_token(7)
    second = app.installation_token(7)

    assert first != second
    assert github_app.minted == 2


def test_an_expired_token_is_replaced(github_app):
    github_app.token_lifetime = timedelta(seconds=-1)
    app.installation_token(7)
    github_app.token_lifetime = timedelta(hours=1)

    renewed = app.installation_token(7)

    assert renewed == "ghs_7_2"
    assert app.installation_token(7) == renewed
    assert github_app.minted == 2


def test_threads_asking_at_once_share_one_minted_token(github_app):
    with ThreadPoolExecutor(max_workers=8) as threads:
        tokens = set(threads.map(lambda _: app.installation_token(7), range(16)))

    assert tokens == {"ghs_7_1"}
    assert github_app.minted == 1


def test_a_token_is_never_logged(github_app, caplog):
    caplog.set_level(logging.DEBUG)

    token = app.installation_token(7)

    assert "Minted a token of installation 7" in caplog.text
    assert token not in caplog.text


@pytest.mark.parametrize(
    ("status", "error", "says"),
    [
        (404, InstallationNotFound, "Install the GitHub App again"),
        (403, InstallationSuspended, "The App's installation is suspended"),
        (401, AppCredentialsRejected, "GITHUB_APP_PRIVATE_KEY"),
    ],
)
def test_an_installation_gone_or_suspended_or_a_refused_app_says_what_to_do(github_app, status, error, says):
    github_app.mint_status = status

    with pytest.raises(error) as raised:
        app.installation_token(7)

    assert says in str(raised.value)
    assert not raised.value.transient


def test_a_rate_limit_on_minting_is_a_rate_limit_not_a_suspension(github_app):
    github_app.mint_status = 403
    github_app.mint_headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2000000000"}

    with pytest.raises(RateLimited):
        app.installation_token(7)


def test_a_jwt_signed_with_another_key_is_refused(github_app, settings):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.GITHUB_APP_PRIVATE_KEY = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()

    with pytest.raises(AppCredentialsRejected):
        app.installation_token(7)


def test_a_client_given_a_token_function_asks_it_before_every_request(github_app):
    github_app.installation_pages = [[]]
    asked = []

    def token():
        asked.append(1)
        return "ghu_user"

    with GitHubClient(token, api_url=github_app.url) as client:
        client.user_installations()
        client.user_installations()

    assert len(asked) == 2


def installation(installation_id, login, account_type="Organization", **fields):
    account = {"login": login, "id": installation_id * 10, "type": account_type}
    return {"id": installation_id, "account": account, "app_id": APP_ID, "target_type": account_type, **fields}


def test_a_users_installations_are_read_page_after_page_into_typed_records(github_app):
    github_app.installation_pages = [
        [installation(1, "acme"), installation(2, "octocat", "User")],
        [installation(3, "globex", suspended_at="2026-01-02T03:04:05Z")],
    ]

    installations = app.user_installations("ghu_user")

    assert installations == [
        Installation(id=1, account=InstallationAccount(id=10, login="acme", type="Organization")),
        Installation(id=2, account=InstallationAccount(id=20, login="octocat", type="User")),
        Installation(
            id=3,
            account=InstallationAccount(id=30, login="globex", type="Organization"),
            suspended_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
    ]
    assert [each.on_organization for each in installations] == [True, False, True]


def test_an_installation_on_an_enterprise_is_kept_without_an_account_and_a_broken_one_is_skipped(github_app):
    enterprise = {"id": 4, "account": {"slug": "big-corp", "name": "Big Corp", "id": 5}}
    github_app.installation_pages = [[enterprise, {"id": "not a number"}, installation(1, "acme")]]

    installations = app.user_installations("ghu_user")

    assert [(each.id, each.account and each.account.login) for each in installations] == [(4, None), (1, "acme")]
    assert not installations[0].on_organization


def test_the_install_link_leads_to_enterprise_servers_install_page_with_the_state(github_app):
    assert app.install_url(state="s-1") == f"{github_app.url}/github-apps/member-sync/installations/new?state=s-1"


def test_the_install_link_on_github_com_leads_to_its_apps_page(github_app, settings):
    settings.GITHUB_WEB_URL = "https://github.com"

    assert app.install_url(state="s-1") == "https://github.com/apps/member-sync/installations/new?state=s-1"


def test_the_apps_user_authorization_uses_the_apps_client_id_and_no_scopes(github_app):
    url = app.authorize_url(state="s-1", redirect_uri="http://testserver/github/app/setup/")

    assert url.startswith(f"{github_app.url}/login/oauth/authorize?client_id=Iv1.member-sync&")
    assert "scope=" not in url


@pytest.mark.services  # manage.py in a process of its own
@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n"}, "GITHUB_APP_PRIVATE_KEY"),
        ({"GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/app.pem"}, "GITHUB_APP_PRIVATE_KEY_FILE"),
        ({"GITHUB_APP_ID": "4242"}, "GITHUB_APP_CLIENT_SECRET"),
    ],
)
def test_a_broken_or_partial_app_configuration_stops_the_start_naming_the_variable(overrides, named):
    result = manage("check", **overrides)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


@pytest.mark.services  # manage.py in a process of its own
def test_a_private_key_file_written_on_one_line_is_taken(tmp_path, key_pair):
    key_file = tmp_path / "app.pem"
    key_file.write_text(key_pair[0].replace("\n", "\\n"))
    app_settings = {
        "GITHUB_APP_ID": str(APP_ID),
        "GITHUB_APP_SLUG": "member-sync",
        "GITHUB_APP_PRIVATE_KEY_FILE": str(key_file),
        "GITHUB_APP_CLIENT_ID": "Iv1.member-sync",
        "GITHUB_APP_CLIENT_SECRET": "secret",
    }

    result = manage(
        "shell", "-c", "from integrations.github import app; print(app.configured(), app.app_jwt()[:3])", **app_settings
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["True", "eyJ"]
