"""The deployment as people see it: DEBUG off, static files collected and served by the app itself,
the Content-Security-Policy enforced, in a real browser against uvicorn, a worker, Redis and the
GitHub simulator. Nothing on the pages may be refused by the policy or fail in the console."""

import re
import subprocess
import sys

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.helpers import LIVE, wait_for
from tests.stack import ROOT, github_environment, stack_environment, web_server, worker

pytestmark = pytest.mark.django_db(transaction=True)


HASHED = re.compile(r"/static/(.+)\.[0-9a-f]{12}\.\w+$")
A_YEAR = 365 * 24 * 3600
# Every refusal of the policy, said in the console the test reads (beside Chromium's own "Refused
# to …" errors, whose wording is Chromium's to change).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def production(github, broker, tmp_path):
    """The environment of a deployment on plain HTTP, its static files collected into tmp_path."""
    env = stack_environment(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG=0,
        HTTPS_ONLY=0,
        ALLOWED_HOSTS="127.0.0.1",
        STATIC_ROOT=tmp_path / "static",
        # The keys and event channels of this test run (tests/settings.py), which the test process
        # encrypts its tokens with and listens on.
        TOKEN_ENCRYPTION_KEYS=",".join(settings.TOKEN_ENCRYPTION_KEYS),
        EVENTS_CHANNEL_PREFIX=settings.EVENTS_CHANNEL_PREFIX,
        **github_environment(github),
    )
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    return env


def watched_context(browser):
    """A browser context that keeps its console errors, uncaught exceptions and responses."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.problems, context.responses = [], []
    context.add_init_script(REPORT_VIOLATIONS)
    context.on(
        "console",
        lambda message: (
            message.type == "error" and context.problems.append(f"{message.text} {message.location['url']}")
        ),
    )
    context.on("weberror", lambda error: context.problems.append(str(error.error)))
    context.on("response", lambda response: context.responses.append(response))
    return context


def log_in(context, web, username):
    page = context.new_page()
    page.goto(f"{web.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page


def visit(page, url):
    response = page.goto(url)
    assert response.status == 200
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    return response


def background(locator):
    return locator.evaluate("element => getComputedStyle(element).backgroundColor")


def test_the_deployment_serves_styled_live_pages_that_the_policy_lets_run(
    browser,
    production,
    alice,
    charlie,
    integration,
):
    """Costs about 6 s: collectstatic, then a web server and a worker in production mode, and a browser."""
    with web_server(production) as web, worker(production):
        context = watched_context(browser)
        page = log_in(context, web, "alice")

        visit(page, f"{web.url}/t/acme/github/members/")
        status = page.locator("#member-sync-status")
        badge = status.locator("[data-role=badge]")
        expect(status).to_have_attribute("data-status", "pending")
        assert background(badge) not in ("rgba(0, 0, 0, 0)", "transparent")  # app.css applies

        page.get_by_role("button", name="Sync Now").click()
        expect(status).to_have_attribute("data-status", "complete", timeout=LIVE)
        expect(badge).to_have_text("Complete")
        assert background(badge) == "rgb(218, 251, 225)"  # .badge-complete

        visit(page, f"{web.url}/t/acme/")
        banner = page.locator("#member-sync-banner")
        expect(banner).to_have_attribute("data-status", "complete")
        expect(banner.get_by_role("link", name="See the members")).to_be_visible()

        onboarding = log_in(watched_context(browser), web, "charlie")
        visit(onboarding, f"{web.url}/onboarding/")
        expect(onboarding.get_by_role("button", name="Connect GitHub")).to_be_visible()

        assert context.problems == []
        assert onboarding.context.problems == []
        # The policy does refuse what is not the app's own, and the test would see it.
        page.evaluate("document.body.append(Object.assign(document.createElement('script'), {text: 'window.ran = 1'}))")
        assert page.evaluate("window.ran") is None
        wait_for(
            lambda: any(problem.startswith("CSP violation: script-src") for problem in context.problems),
            message="the violation reported",
        )

        static = [response for response in context.responses if "/static/" in response.url]
        context.close()
        onboarding.context.close()

    assert [response.url for response in static if not HASHED.search(response.url)] == []
    assert {"css/app", "js/member_sync"} <= {HASHED.search(response.url).group(1) for response in static}
    for response in static:
        max_age = re.search(r"max-age=(\d+)", response.headers["cache-control"])
        assert int(max_age.group(1)) >= A_YEAR, response.headers["cache-control"]
