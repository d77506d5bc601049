"""The members page: its hooks, the member table, and GitHub's text shown escaped everywhere."""

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.member_writes import insert_members
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun
from teams.models import Team
from tests.base import BaseTestCase

MARKUP = "<script>alert('member')</script>"


def add_members(integration, count, *, start=1, **fields):
    insert_members(
        integration_id=integration.pk,
        members=[
            {"github_id": n, "node_id": f"U_{n}", "login": f"user-{n:05d}", "name": f"User {n}", "email": "",
             "avatar_url": "", "role": "member", **fields}
            for n in range(start, start + count)
        ],
        now=timezone.now(),
    )  # fmt: skip


class MembersPageTestCase(BaseTestCase):
    url = "/t/acme/github/members/"

    def setUp(self):
        self.client.force_login(self.bob)

    def test_it_has_the_page_hooks(self):
        add_members(self.integration, 3)
        response = self.client.get(self.url)

        self.assertContains(response, 'id="member-sync-status"')
        self.assertContains(response, 'data-status="pending"')
        self.assertContains(response, 'data-events-url="/t/acme/events/?lastEventId=')
        self.assertContains(response, 'id="github-members"')
        self.assertContains(response, "user-00001")
        self.assertContains(response, "js/member_sync.js")

    def test_members_do_not_get_sync_now_but_admins_do(self):
        self.assertNotContains(self.client.get(self.url), "Sync Now")
        self.client.force_login(self.alice)
        self.assertContains(self.client.get(self.url), "Sync Now")

    def test_a_syncing_run_shows_its_progress(self):
        MemberSyncRun.objects.create(
            integration=self.integration, trigger="manual", status="syncing", fetched=200, total=1500
        )
        GitHubIntegration.objects.filter(pk=self.integration.pk).update(member_sync_status="syncing")
        response = self.client.get(self.url)

        self.assertContains(response, 'data-status="syncing"')
        self.assertContains(response, '<progress max="1500" value="200">')
        self.assertContains(response, "200 of 1500")

    def test_an_error_says_what_to_do(self):
        GitHubIntegration.objects.filter(pk=self.integration.pk).update(
            member_sync_status="error", member_sync_error="Reconnect GitHub to resume syncing."
        )
        self.assertContains(self.client.get(self.url), "Reconnect GitHub to resume syncing.")

    def test_it_lists_only_active_members_unless_asked(self):
        add_members(self.integration, 2)
        GitHubMember.objects.filter(github_id=2).update(is_active=False)

        self.assertContains(self.client.get(self.url), "user-00001")
        self.assertNotContains(self.client.get(self.url), "user-00002")
        self.assertContains(self.client.get(self.url, {"state": "inactive"}), "user-00002")

    def test_it_searches_by_login_or_name_and_filters_by_role(self):
        add_members(self.integration, 3)
        GitHubMember.objects.filter(github_id=3).update(role="admin", name="Grace Hopper")

        by_name = self.client.get(self.url, {"q": "hopper"})
        self.assertContains(by_name, "user-00003")
        self.assertNotContains(by_name, "user-00001")
        admins = self.client.get(self.url, {"role": "admin"})
        self.assertContains(admins, "user-00003")
        self.assertNotContains(admins, "user-00002")

    def test_it_pages_the_members(self):
        add_members(self.integration, 120)
        response = self.client.get(self.url, {"page": 3})

        self.assertContains(response, "Page 3 of 3")
        self.assertContains(response, "user-00120")
        self.assertNotContains(response, "user-00001<")

    def test_a_bad_page_number_shows_a_page(self):
        add_members(self.integration, 3)
        assert self.client.get(self.url, {"page": "999"}).status_code == 200
        assert self.client.get(self.url, {"page": "x"}).status_code == 200

    def test_the_sql_statement_count_does_not_grow_with_members(self):
        counts = []
        for size, slug in ((100, "small"), (10_000, "large")):
            team = Team.objects.create(name=slug, slug=slug)
            team.memberships.create(user=self.bob, role="member")
            add_members(GitHubIntegration.objects.create(team=team, organization_login=slug), size)
            with CaptureQueriesContext(connection) as queries:
                assert self.client.get(f"/t/{slug}/github/members/").status_code == 200
            counts.append(len(queries.captured_queries))
        assert counts[0] == counts[1]

    def test_a_team_without_github_says_so(self):
        self.client.force_login(self.charlie)
        self.assertContains(self.client.get("/t/globex/github/members/"), "GitHub is not connected")

    def test_non_members_get_404(self):
        self.client.force_login(self.charlie)
        assert self.client.get(self.url).status_code == 404


class EscapingTestCase(BaseTestCase):
    def setUp(self):
        add_members(self.integration, 1, name=MARKUP)
        GitHubMember.objects.filter(github_id=1).update(login="<b>bold</b>")
        GitHubIntegration.objects.filter(pk=self.integration.pk).update(
            organization_login="<i>org</i>", member_sync_status="error", member_sync_error=MARKUP
        )

    def assert_escaped(self, response):
        assert response.status_code == 200
        body = response.content.decode()
        assert MARKUP not in body
        assert "<b>bold</b>" not in body
        assert "<i>org</i>" not in body
        assert any(escaped in body for escaped in ("&lt;script&gt;", "&lt;b&gt;", "&lt;i&gt;"))

    def test_the_members_page_escapes_github_text(self):
        self.client.force_login(self.alice)
        self.assert_escaped(self.client.get("/t/acme/github/members/"))

    def test_the_team_page_escapes_github_text(self):
        self.client.force_login(self.alice)
        self.assert_escaped(self.client.get("/t/acme/"))

    def test_the_admin_escapes_github_text(self):
        root = get_user_model().objects.create_superuser("root", password="x")
        self.client.force_login(root)
        member = GitHubMember.objects.get(github_id=1)
        for url in [
            "/admin/integrations/githubmember/",
            f"/admin/integrations/githubmember/{member.pk}/change/",
            "/admin/integrations/githubintegration/",
            f"/admin/integrations/githubintegration/{self.integration.pk}/change/",
        ]:
            self.assert_escaped(self.client.get(url))


class OddInputTestCase(BaseTestCase):
    def test_a_nul_byte_in_the_search_is_ignored(self):
        self.client.force_login(self.bob)
        assert self.client.get("/t/acme/github/members/", {"q": "a\x00b"}).status_code == 200

    def test_a_nul_byte_in_the_team_to_reconnect_is_not_found(self):
        self.client.force_login(self.alice)
        assert self.client.get("/github/connect/", {"team": "acme\x00"}).status_code == 404
