"""Going through GitHub's OAuth flow in a test: Connect GitHub, the simulator's authorize page, and
the callback GitHub sends the browser back to; plus what every refusal page shows. And the same
in a real browser, from sign-up to the team page."""

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests
from django.urls import reverse

from integrations.models import GitHubIntegration, MemberSyncRun
from integrations.views.onboarding import PENDING_SESSION_KEY
from teams.models import Team

CONNECT = reverse("integrations:github_connect")
CALLBACK = reverse("integrations:github_callback")
SELECT_ORG = reverse("integrations:github_select_org")
ONBOARDING = reverse("onboarding")


class AuthorizePage(HTMLParser):
    """The simulator's authorize page: its form's action and fields, and the Cancel link."""

    def __init__(self, html):
        super().__init__()
        self.action, self.fields, self.cancel = None, {}, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs["action"]
        elif tag == "input" and attrs.get("type") == "hidden":
            self.fields[attrs["name"]] = attrs.get("value", "")
        elif tag == "a" and "cancel" in attrs.get("class", ""):
            self.cancel = attrs["href"]


def visit(visitor, method, url, data=None):
    """A request through the `visitor` client whose page is kept, to look for secrets in afterwards."""
    response = getattr(visitor, method)(url, data or {})
    visitor.pages.append(response.content.decode())
    return response


def start(visitor, url, team=None):
    """Press the button that starts connecting (a POST); for a team, confirming that it replaces
    the team's connection, if it has one."""
    return visit(visitor, "post", url, {"team": team, "confirm": "replace"} if team else {})


def authorize_page(visitor, *, scope=None, team=None):
    """Connect GitHub, and GitHub's authorize page it leads to."""
    response = start(visitor, CONNECT, team)
    assert response.status_code == 302
    url = response["Location"]
    if scope is not None:
        url = with_query(url, scope=scope)
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    return url, AuthorizePage(page.text)


def authorize(visitor, github, **options):
    """Press Authorize on GitHub's page: the callback URL GitHub sends the browser back to."""
    _, page = authorize_page(visitor, **options)
    answer = requests.post(github.url + page.action, data=page.fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return answer.headers["Location"]


def with_query(url, **changes):
    """The URL with these query parameters changed (None: removed)."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode({k: v for k, v in query.items() if v is not None})))


def onboard(visitor, github, organization="acme"):
    """The whole flow, up to the redirect after the organization choice."""
    assert visit(visitor, "get", authorize(visitor, github))["Location"] == SELECT_ORG
    assert visit(visitor, "get", SELECT_ORG).status_code == 200
    return visit(visitor, "post", SELECT_ORG, {"organization": github.org(organization).id})


def assert_problem(response, status, text, back=ONBOARDING):
    """A refusal page: the status, what went wrong, and a link back."""
    assert response.status_code == status
    assert text in response.content.decode()
    assert f'href="{back}"' in response.content.decode()


def assert_nothing_created(visitor):
    assert not Team.objects.exists()
    assert not GitHubIntegration.objects.exists()
    assert not MemberSyncRun.objects.exists()
    assert PENDING_SESSION_KEY not in visitor.session


def onboard_in_browser(page, base, username):
    """Signs up at `base` in a Playwright page, connects GitHub on the simulator and picks acme:
    the page is left on the team page with its live banner."""
    from playwright.sync_api import expect

    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Username:").fill(username)
    page.get_by_label("Password:", exact=True).fill("a-long-unusual-pass-41")
    page.get_by_label("Password confirmation:").fill("a-long-unusual-pass-41")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/onboarding/")
    page.get_by_role("link", name="Connect GitHub").or_(page.get_by_role("button", name="Connect GitHub")).click()
    page.get_by_role("button", name="Authorize").click()
    page.get_by_role("button", name="acme").click()
    return page
