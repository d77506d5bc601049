"""The members page: its hooks, the member table, and GitHub's text shown escaped everywhere."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect
from pytest_django.asserts import assertContains, assertNotContains

from github_simulator.avatars import avatar_url
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun
from teams.models import Team
from tests.stack import github_environment, sign_in, stack_environment, web_server

URL = "/t/acme/github/members/"
MARKUP = "<script>alert('member')</script>"


def add_members(integration, count, **fields):
    first = GitHubMember.objects.filter(integration=integration).count() + 1
    GitHubMember.objects.bulk_create(
        GitHubMember(integration=integration, github_id=n, **{"node_id": f"U_{n}", "login": f"user-{n:05d}",
                                                               "name": f"User {n}", **fields})
        for n in range(first, first + count)
    )  # fmt: skip


def test_it_has_the_page_hooks(client, bob, integration):
    add_members(integration, 3)
    client.force_login(bob)

    response = client.get(URL)

    assertContains(response, 'id="member-sync-status"')
    assertContains(response, 'data-status="pending"')
    assertContains(response, 'data-events-url="/t/acme/events/?lastEventId=')
    assertContains(response, 'id="github-members"')
    assertContains(response, "user-00001")
    assertContains(response, "js/member_sync.js")


def test_members_do_not_get_sync_now_but_admins_do(client, alice, bob, integration):
    client.force_login(bob)
    assertNotContains(client.get(URL), "Sync Now")

    client.force_login(alice)
    assertContains(client.get(URL), "Sync Now")


def test_it_lists_only_active_members_unless_asked(client, bob, integration):
    add_members(integration, 2)
    GitHubMember.objects.filter(github_id=2).update(is_active=False)
    client.force_login(bob)

    assertContains(client.get(URL), "user-00001")
    assertNotContains(client.get(URL), "user-00002")
    assertContains(client.get(URL, {"state": "inactive"}), "user-00002")


def test_it_searches_by_login_or_name_and_filters_by_role(client, bob, integration):
    add_members(integration, 3)
    GitHubMember.objects.filter(github_id=3).update(role="admin", name="Grace Hopper")
    client.force_login(bob)

    by_name = client.get(URL, {"q": "hopper"})
    assertContains(by_name, "user-00003")
    assertNotContains(by_name, "user-00001")
    admins = client.get(URL, {"role": "admin"})
    assertContains(admins, "user-00003")
    assertNotContains(admins, "user-00002")


def test_a_member_github_gave_no_role_shows_unknown_role_and_can_be_filtered_on(client, bob, integration):
    add_members(integration, 3)
    GitHubMember.objects.filter(github_id=2).update(role=GitHubMember.Role.UNKNOWN)
    client.force_login(bob)

    everyone = client.get(URL)
    unknown = client.get(URL, {"role": "unknown"})

    assertContains(everyone, "<td>Unknown role</td>", count=1)
    assertContains(unknown, '<option value="unknown" selected>Unknown role</option>', html=True)
    assertContains(unknown, "user-00002")
    assertNotContains(unknown, "user-00001")


def test_it_pages_the_members(client, bob, integration):
    add_members(integration, 120)
    client.force_login(bob)

    response = client.get(URL, {"page": 3})

    assertContains(response, "Page 3 of 3")
    assertContains(response, "user-00120")
    assertNotContains(response, "user-00001<")


def test_a_bad_page_number_shows_a_page(client, bob, integration):
    add_members(integration, 3)
    client.force_login(bob)

    assert client.get(URL, {"page": "999"}).status_code == 200
    assert client.get(URL, {"page": "x"}).status_code == 200


@pytest.mark.services  # the page shows the team's current event id, read from Redis
def test_the_sql_statement_count_does_not_grow_with_members(client, bob):
    client.force_login(bob)
    counts = []
    for size, slug in ((100, "small"), (10_000, "large")):
        team = Team.objects.create(name=slug, slug=slug)
        team.memberships.create(user=bob, role="member")
        add_members(GitHubIntegration.objects.create(team=team, organization_login=slug), size)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/t/{slug}/github/members/").status_code == 200
        counts.append(len(queries.captured_queries))

    # The session, the user, the membership, the integration, its recent runs, the member count and
    # page, the held members.
    assert counts[0] == counts[1] <= 8


@pytest.mark.services  # the page shows the team's current event id, read from Redis
def test_a_team_without_github_says_so(client, charlie, other_team):
    client.force_login(charlie)

    assertContains(client.get("/t/globex/github/members/"), "GitHub is not connected")


def test_non_members_get_404(client, charlie, integration):
    client.force_login(charlie)

    assert client.get(URL).status_code == 404


def test_a_nul_byte_in_the_search_is_ignored(client, bob, integration):
    client.force_login(bob)

    assert client.get(URL, {"q": "a\x00b"}).status_code == 200


def test_a_nul_byte_in_the_team_to_reconnect_is_not_found(client, alice, integration):
    client.force_login(alice)

    assert client.get("/github/connect/", {"team": "acme\x00"}).status_code == 404


@pytest.fixture
def github_text_with_markup(integration):
    """GitHub's text, as stored, with markup in a member's name and login and in the organization."""
    add_members(integration, 1, name=MARKUP)
    GitHubMember.objects.filter(github_id=1).update(login="<b>bold</b>")
    GitHubIntegration.objects.filter(pk=integration.pk).update(organization_login="<i>org</i>")
    MemberSyncRun.objects.create(integration=integration, trigger="manual", status="error", error=MARKUP)
    return GitHubMember.objects.get(github_id=1)


def assert_escaped(response):
    assert response.status_code == 200
    body = response.content.decode()
    assert MARKUP not in body
    assert "<b>bold</b>" not in body
    assert "<i>org</i>" not in body
    assert any(escaped in body for escaped in ("&lt;script&gt;", "&lt;b&gt;", "&lt;i&gt;"))


def test_the_members_page_escapes_github_text(client, alice, github_text_with_markup):
    client.force_login(alice)

    assert_escaped(client.get(URL))


def test_the_team_page_escapes_github_text(client, alice, github_text_with_markup):
    client.force_login(alice)

    assert_escaped(client.get("/t/acme/"))


def test_the_admin_escapes_github_text(admin_client, integration, github_text_with_markup):
    member = github_text_with_markup
    for url in [
        "/admin/integrations/githubmember/",
        f"/admin/integrations/githubmember/{member.pk}/change/",
        "/admin/integrations/githubintegration/",
        f"/admin/integrations/githubintegration/{integration.pk}/change/",
    ]:
        assert_escaped(admin_client.get(url))


def test_it_shows_each_members_avatar_lazily_at_a_fixed_size(client, bob, integration):
    add_members(integration, 1, avatar_url="https://avatars.githubusercontent.com/u/1?v=4")
    add_members(integration, 1, avatar_url="")
    client.force_login(bob)

    response = client.get(URL)

    assertContains(
        response,
        '<img class="avatar" src="https://avatars.githubusercontent.com/u/1?v=4&amp;s=40" width="20" height="20" '
        'alt="" loading="lazy">user-00001',
        html=False,
    )
    assertContains(response, '<span class="avatar"></span>user-00002')


def test_the_pages_allow_avatars_from_githubs_avatar_host_only(client, bob, integration):
    client.force_login(bob)

    policy = client.get(URL)["Content-Security-Policy"]

    img_src = next(directive for directive in policy.split("; ") if directive.startswith("img-src"))
    assert img_src == "img-src 'self' data: https://avatars.githubusercontent.com"


def test_members_who_left_show_the_date_they_left_in_utc(client, bob, integration):
    add_members(integration, 1, is_active=False, left_at=datetime(2025, 3, 4, 23, 30, tzinfo=UTC))
    client.force_login(bob)

    response = client.get(URL, {"state": "inactive"})

    assertContains(response, '<option value="inactive" selected>Left the organization</option>')
    assertContains(response, '<th scope="col">Left</th>')
    assertContains(
        response,
        '<time data-local="date" datetime="2025-03-04T23:30:00Z" title="2025-03-04 23:30:00 UTC">2025-03-04</time>',
    )
    assertNotContains(client.get(URL), '<th scope="col">Left</th>')


@pytest.mark.django_db(transaction=True)
def test_avatars_from_the_simulator_show_in_a_browser(browser, alice, integration, github):
    member = github.org("acme").members[1]
    add_members(integration, 1, avatar_url=avatar_url(github.url, member.database_id))
    with web_server(stack_environment(DEBUG=1, **github_environment(github))) as web:
        page = browser.new_context().new_page()
        sign_in(page.context, web.url, alice)
        page.goto(f"{web.url}{URL}")

        avatar = page.locator("#github-members img.avatar")
        expect(avatar).to_be_visible()
        # Loaded, not refused by the Content-Security-Policy, and drawn at the size the table sets.
        expect(avatar).to_have_js_property("complete", True)
        assert avatar.evaluate("image => image.naturalWidth") > 0
        assert avatar.bounding_box()["width"] == 20
