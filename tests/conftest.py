"""The one fixture world of the test suite: Alice administers the team Acme, Bob is a plain member of
it, Charlie administers another team (Globex); Acme's integration reads the GitHub simulator's
organization acme (250 members). Plus the simulator itself, GitHub's published API descriptions, and
the tier of each test: unit, services or browser (TIERS)."""

import functools
import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from graphql import build_schema
from jsonschema import Draft202012Validator, FormatChecker
from playwright.sync_api import sync_playwright
from redis.asyncio.connection import AbstractConnection as AsyncRedisConnection
from redis.connection import AbstractConnection as RedisConnection
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from github_simulator import Simulator
from integrations.github import app
from integrations.models import GitHubIntegration
from teams.models import Membership, Team
from tests import programs
from tests.github_webhooks import SECRET, Receiver

# GitHub's API descriptions, the parts the product and the simulator use (README.md there says whence).
GITHUB_DESCRIPTIONS = Path(__file__).resolve().parent / "vendor" / "github"
# Each REST and webhooks description is there twice: github.com's, and the newest Enterprise Server's.
GITHUB_PLANS = ("api.github.com", "ghes")
README_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

# The tiers (README.md, Two commands): every test is in exactly one, so that `pytest -m unit` runs in seconds
# with nothing but Python. A test's tier is its own mark if it has one (on it, its class or its module:
# pytestmark), else the first of these rules that fits:
#   browser   it uses a fixture of BROWSER_FIXTURES, directly or through another fixture;
#   services  it uses a fixture of SERVICE_FIXTURES, directly or through another fixture;
#   unit      otherwise.
# A unit test runs in this process alone, with the test database (SQLite; PostgreSQL where
# DATABASE_URL says so) and nothing else: it connects to nothing, starts no process and sends Redis no
# command. One that does fails, saying what it did (_unit_tests_stay_in_process): mark it services.
TIERS = ("unit", "services", "browser")
BROWSER_FIXTURES = {"browser"}  # Chromium through Playwright
SERVICE_FIXTURES = {
    "github_simulator",  # the simulator, an HTTP server: every fixture of the GitHub world uses it
    "broker",  # Redis, through Dramatiq
    # Those of a test module:
    "no_open_streams",  # test_event_streams.py's, autouse there and where it is imported: Redis
    "fake_github",  # github/test_app_client.py's HTTP server
    "sentry_server",  # test_sentry.py's HTTP server
    "make_run",  # test_make_run.py's `make run`
}
_TIER = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)  # before -m selects by these marks
def pytest_collection_modifyitems(items):
    """Marks each test with its tier; a test marked with two stops the run before it starts."""
    two_tiers = []
    for item in items:
        marked = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        if len(marked) > 1:
            two_tiers.append(f"{item.nodeid}: {' and '.join(sorted(marked))}")
            continue
        if marked:
            (tier,) = marked
        else:
            tier = _tier_by_fixtures(item.fixturenames)
            item.add_marker(tier)
        item.stash[_TIER] = tier
    if two_tiers:
        raise pytest.UsageError("Tests marked with two tiers (tests/conftest.py, TIERS):\n" + "\n".join(two_tiers))


def _tier_by_fixtures(fixtures):
    if BROWSER_FIXTURES.intersection(fixtures):
        return "browser"
    if SERVICE_FIXTURES.intersection(fixtures):
        return "services"
    return "unit"


class OutsideUnitTest(Exception):
    pass


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request, monkeypatch):
    """A unit test fails as soon as it connects, starts a process or sends Redis a command, and at its
    end if it did and the error was caught on its way. Threads that an earlier test left running (the
    session's simulator, a stream's reader) are not the test's: they pass."""
    if request.node.stash.get(_TIER, None) != "unit":
        yield
        return
    earlier = set(threading.enumerate()) - {threading.current_thread()}
    reached = []

    def refuse(cls, name, what):
        original = getattr(cls, name)

        def guarded(self, *args, **kwargs):
            if threading.current_thread() in earlier:
                return original(self, *args, **kwargs)
            reached.append(what(*args))
            raise OutsideUnitTest(f"a unit test {reached[-1]}: mark it services (tests/conftest.py, TIERS)")

        monkeypatch.setattr(cls, name, guarded)

    refuse(socket.socket, "connect", lambda address: f"connected to {address}")
    refuse(socket.socket, "connect_ex", lambda address: f"connected to {address}")
    refuse(subprocess.Popen, "_execute_child", lambda args, *rest: f"started a process: {args}")
    refuse(RedisConnection, "send_packed_command", lambda *args: "sent Redis a command")
    refuse(AsyncRedisConnection, "send_packed_command", lambda *args: "sent Redis a command")
    yield
    if reached:
        pytest.fail(f"a unit test reached out of its process: {'; '.join(reached)}", pytrace=False)


@pytest.fixture(scope="session")
def github_simulator():
    """One simulator for the whole session: starting a server per test would cost more than the tests."""
    simulator = Simulator(orgs={"acme": 250}, teams={"acme": 20})
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def github(github_simulator):
    """The session's simulator as if new: the organization acme (250 members), no faults, no latency,
    no requests counted. Tokens issued by earlier tests stay valid."""
    github_simulator.reset()
    return github_simulator


@pytest.fixture
def github_token(github):
    """A token as the product gets it from the OAuth flow: the read:org scope, viewer octocat."""
    return github.issue_token(scopes=("read:org",))


PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def password_hash():
    # Hashed once: every test's users share the password.
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


@pytest.fixture
def alice(db, django_user_model, password_hash):
    return django_user_model.objects.create(username="alice", password=password_hash)


@pytest.fixture
def bob(db, django_user_model, password_hash):
    return django_user_model.objects.create(username="bob", password=password_hash)


@pytest.fixture
def charlie(db, django_user_model, password_hash):
    return django_user_model.objects.create(username="charlie", password=password_hash)


@pytest.fixture
def team(alice, bob):
    team = Team.objects.create(name="Acme", slug="acme")
    Membership.objects.create(team=team, user=alice, role=Membership.Role.ADMIN)
    Membership.objects.create(team=team, user=bob, role=Membership.Role.MEMBER)
    return team


@pytest.fixture
def other_team(charlie):
    team = Team.objects.create(name="Globex", slug="globex")
    Membership.objects.create(team=team, user=charlie, role=Membership.Role.ADMIN)
    return team


@pytest.fixture
def integration(team, alice, github, github_token, settings):
    """Acme connected to the simulator's organization acme by Alice, never synced."""
    settings.GITHUB_API_URL = settings.GITHUB_WEB_URL = github.url
    settings.GITHUB_GRAPHQL_URL = f"{github.url}/graphql"
    integration = GitHubIntegration(
        team=team,
        organization_login="acme",
        organization_id=github.org("acme").id,
        connected_by=alice,
        scopes="read:org",
    )
    integration.access_token = github_token
    integration.save()
    return integration


@pytest.fixture(scope="session")
def github_graphql_schema():
    """The part of GitHub's public GraphQL schema that the product's documents and the simulator use."""
    return build_schema((GITHUB_DESCRIPTIONS / "schema.graphql").read_text())


@pytest.fixture(scope="session")
def github_rest_schema():
    """The JSON Schema of a REST operation's response in GitHub's OpenAPI description, as a function
    of the operation's path (e.g. "/orgs/{org}/members"), its method and status, and the plan:
    "api.github.com" or "ghes" (Enterprise Server)."""
    descriptions = {plan: _description(f"rest.{plan}.json") for plan in GITHUB_PLANS}

    def schema(path, *, method="get", status="200", plan="api.github.com"):
        operation = descriptions[plan]["paths"][path][method]
        return json_schema(operation["responses"][status]["content"]["application/json"]["schema"])

    return schema


def github_webhook_validator(name, plan="api.github.com"):
    """A validator of a webhook's payload (e.g. "organization-member-added") by its schema in GitHub's
    webhooks description, which refers to the description's components: resolved through a registry."""
    path = GITHUB_DESCRIPTIONS / f"webhooks.{plan}.json"
    resource = Resource.from_contents(_description(path.name), default_specification=DRAFT202012)
    schema = {"$ref": f"{path.as_uri()}#/webhooks/{name}/post/requestBody/content/application~1json/schema"}
    registry = Registry().with_resource(path.as_uri(), resource)
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


@functools.cache
def _description(name):
    return json.loads((GITHUB_DESCRIPTIONS / name).read_text())


def json_schema(openapi_schema):
    """OpenAPI 3.0 marks nullable values with "nullable: true", which JSON Schema does not know: an
    equivalent schema that also accepts null there."""
    if not isinstance(openapi_schema, dict):
        return openapi_schema
    converted = {}
    for key, value in openapi_schema.items():
        if key in ("properties", "patternProperties"):
            converted[key] = {name: json_schema(schema) for name, schema in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            converted[key] = json_schema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            converted[key] = [json_schema(schema) for schema in value]
        elif key != "nullable":
            converted[key] = value
    return {"anyOf": [converted, {"type": "null"}]} if openapi_schema.get("nullable") else converted


@pytest.fixture
def broker():
    """The real Redis broker of this test run (its own namespace, see tests/settings.py), emptied
    before and after the test so that no queued message outlives it."""
    import dramatiq

    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def github_client(github, github_token):
    """The product's GitHub client on the simulator with Alice's token, retrying without waiting."""
    from integrations.github.client import GitHubClient

    return GitHubClient(github_token, api_url=github.url, graphql_url=f"{github.url}/graphql", backoff_factor=0)


@pytest.fixture
def webhook_receiver(github):
    """Where the simulator, as the App, delivers its webhooks (tests/github_webhooks.py:Receiver)."""
    receiver = Receiver()
    github.app.configure(webhook_url=receiver.url, webhook_secret=SECRET)
    yield receiver
    receiver.close()


@pytest.fixture
def simulator_app(github, settings):
    """This server's GitHub App is the simulator's (its id, slug, key and client), every GitHub URL is
    the simulator's and the webhook secret the tests'. Returns those settings, for the processes a test
    starts; no installation token is kept before or after."""
    registration = github.app
    app_settings = {
        "GITHUB_API_URL": github.url,
        "GITHUB_WEB_URL": github.url,
        "GITHUB_GRAPHQL_URL": f"{github.url}/graphql",
        "GITHUB_APP_ID": str(registration.id),
        "GITHUB_APP_SLUG": registration.slug,
        "GITHUB_APP_PRIVATE_KEY": registration.private_key_pem,
        "GITHUB_APP_CLIENT_ID": registration.client_id,
        "GITHUB_APP_CLIENT_SECRET": registration.client_secret,
        "GITHUB_WEBHOOK_SECRET": SECRET,
    }
    for name, value in app_settings.items():
        setattr(settings, name, value)
    app.forget_installation_tokens()
    yield app_settings
    app.forget_installation_tokens()


@pytest.fixture
def oauth(github, settings):
    """The simulator as the GitHub of this server's OAuth App: every GitHub URL pointed at it, and the
    App's client id and secret set."""
    settings.GITHUB_WEB_URL = settings.GITHUB_API_URL = github.url
    settings.GITHUB_GRAPHQL_URL = f"{github.url}/graphql"
    settings.GITHUB_CLIENT_ID = "member-sync-test"
    settings.GITHUB_CLIENT_SECRET = "member-sync-test-secret"
    return github


@pytest.fixture
def visitor(client):
    """pytest-django's client, keeping in `pages` every page that tests.oauth_flow.visit got, so
    that a test can look for secrets in them afterwards."""
    client.pages = []
    return client


# Debian's Chromium, started as the machine's notes say: without the background-networking flags it
# tries Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """The machine's Chromium (tests.programs.chromium), driven by Playwright."""
    # Playwright's sync API runs an event loop in this thread; the tests' own database calls are
    # not async code, whatever Django's guard concludes from that loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=programs.chromium(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory):
    """Take a page's screenshot by the README's name for it: into docs/screenshots/ when asked
    (UPDATE_SCREENSHOTS=1), else into a temporary folder, so that a test run leaves the work tree clean."""
    asked = os.environ.get("UPDATE_SCREENSHOTS") == "1"
    folder = README_SCREENSHOTS if asked else tmp_path_factory.mktemp("screenshots")

    def take(page, name):
        page.screenshot(path=folder / f"{name}.png", full_page=True)

    return take
