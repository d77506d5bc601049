"""The accidental-deactivation guard (SPEC §6): a run that would deactivate too many members at once
holds them for an admin, who confirms or dismisses them on the members page. Also members GitHub
sent in a form that could not be read: counted, shown, and nobody deactivated."""

from unittest import mock

from django.test import Client

from integrations import runs
from integrations.github.schemas import MembersPage, OrganizationMember
from integrations.held_deactivations import confirm_held_deactivations, dismiss_held_deactivations
from integrations.models import GitHubIntegration, GitHubMember, MemberSyncRun
from integrations.sync import sync_members
from tests.base import BaseTestCase

Status = MemberSyncRun.Status


class OnePage:
    """Stands in for GitHubClient: the organization's members in one page."""

    def __init__(self, page):
        self.page = page
        self.api_calls = 0

    def iter_member_pages(self, login):
        self.api_calls += 1
        yield self.page


def sync(integration, github_ids, *, skipped=0):
    """A run that reads these members from GitHub, recorded as the actor records it."""
    members = [
        OrganizationMember(github_id=n, node_id=f"U_{n}", login=f"user-{n:03d}", role="member") for n in github_ids
    ]
    page = MembersPage(members=members, total=len(members), end_cursor=None, has_next_page=False, skipped=skipped)
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status=Status.SYNCING)
    runs.complete_run(run, sync_members(run=run, client=OnePage(page)))
    run.refresh_from_db()
    return run


def active(integration):
    return GitHubMember.objects.filter(integration=integration, is_active=True).count()


def held(integration):
    return GitHubMember.objects.filter(integration=integration, deactivation_held_at__isnull=False).count()


class GuardTestCase(BaseTestCase):
    def setUp(self):
        sync(self.integration, range(1, 51))

    def test_a_run_that_would_deactivate_40_percent_holds_them(self):
        run = sync(self.integration, range(1, 31))

        assert (run.status, run.members_deactivated, run.members_held) == (Status.COMPLETE, 0, 20)
        assert (active(self.integration), held(self.integration)) == (50, 20)
        self.integration.refresh_from_db()
        assert self.integration.member_sync_result["held"] == 20

    def test_confirm_deactivates_the_held_members(self):
        sync(self.integration, range(1, 31))

        assert confirm_held_deactivations(integration=self.integration) == 20

        assert (active(self.integration), held(self.integration)) == (30, 0)
        assert not GitHubMember.objects.filter(is_active=False, left_at__isnull=True).exists()
        run = MemberSyncRun.objects.first()
        assert (run.members_held, run.members_deactivated) == (0, 20)
        self.integration.refresh_from_db()
        assert (self.integration.member_sync_result["held"], self.integration.member_sync_result["deactivated"]) == (
            0,
            20,
        )

    def test_dismiss_keeps_the_held_members_active(self):
        sync(self.integration, range(1, 31))

        assert dismiss_held_deactivations(integration=self.integration) == 20

        assert (active(self.integration), held(self.integration)) == (50, 0)
        assert MemberSyncRun.objects.first().members_held == 0

    def test_a_second_confirm_changes_nothing(self):
        sync(self.integration, range(1, 31))
        confirm_held_deactivations(integration=self.integration)

        assert confirm_held_deactivations(integration=self.integration) == 0
        assert MemberSyncRun.objects.first().members_deactivated == 20

    def test_a_later_run_that_sees_them_again_drops_the_hold(self):
        sync(self.integration, range(1, 31))

        run = sync(self.integration, range(1, 51))

        assert (run.members_held, run.members_unchanged, run.members_updated) == (0, 50, 0)
        assert (active(self.integration), held(self.integration)) == (50, 0)

    def test_a_later_run_that_misses_them_again_holds_them_again(self):
        sync(self.integration, range(1, 31))
        first_held_at = GitHubMember.objects.get(github_id=50).deactivation_held_at

        run = sync(self.integration, range(1, 31))

        assert (run.members_held, run.members_deactivated) == (20, 0)
        assert GitHubMember.objects.get(github_id=50).deactivation_held_at == first_held_at

    def test_held_members_missing_under_the_threshold_are_deactivated(self):
        sync(self.integration, range(1, 31))

        run = sync(self.integration, range(1, 48))  # 17 came back, 3 are still gone

        assert (run.members_held, run.members_deactivated) == (0, 3)
        assert (active(self.integration), held(self.integration)) == (47, 0)

    def test_under_the_threshold_they_are_deactivated(self):
        run = sync(self.integration, range(1, 41))  # 20%: not more than 20%

        assert (run.members_held, run.members_deactivated) == (0, 10)
        assert active(self.integration) == 40

    def test_no_more_than_five_are_deactivated_whatever_the_share(self):
        small = GitHubIntegration.objects.create(team=self.other_team, organization_login="globex")
        sync(small, range(1, 11))

        run = sync(small, range(1, 6))  # half of them, but 5

        assert (run.members_held, run.members_deactivated) == (0, 5)

    def test_the_thresholds_are_settings(self):
        with self.settings(MEMBER_SYNC_HOLD_DEACTIVATIONS_PERCENT=50):
            run = sync(self.integration, range(1, 31))
        assert (run.members_held, run.members_deactivated) == (0, 20)

    def test_confirm_and_dismiss_tell_open_pages(self):
        for decide in (confirm_held_deactivations, dismiss_held_deactivations):
            sync(self.integration, range(1, 51))
            sync(self.integration, range(1, 31))
            with mock.patch("integrations.runs.publish_member_sync") as publish:
                decide(integration=self.integration)
            (run,), _ = publish.call_args
            assert run.result()["held"] == 0


class SkippedMembersTestCase(BaseTestCase):
    def test_members_that_could_not_be_read_are_counted_and_nobody_is_deactivated(self):
        sync(self.integration, range(1, 51))

        run = sync(self.integration, range(1, 31), skipped=2)

        assert (run.members_skipped, run.members_deactivated, run.members_held) == (2, 0, 0)
        assert run.result()["skipped"] == 2
        assert active(self.integration) == 50

    def test_the_members_page_and_the_team_banner_say_so(self):
        sync(self.integration, range(1, 4), skipped=2)
        self.client.force_login(self.bob)

        for url in ("/t/acme/github/members/", "/t/acme/"):
            response = self.client.get(url)
            self.assertContains(response, '<span data-role="skipped-count">2</span> members could not be read')
            self.assertContains(response, "nobody was deactivated")

    def test_members_held_while_some_could_not_be_read_stay_held(self):
        sync(self.integration, range(1, 51))
        sync(self.integration, range(1, 31))

        run = sync(self.integration, range(1, 31), skipped=1)

        assert (run.members_held, held(self.integration), active(self.integration)) == (20, 20, 50)


class HeldDeactivationsPageTestCase(BaseTestCase):
    url = "/t/acme/github/members/"
    confirm_url = "/t/acme/github/members/held/confirm/"
    dismiss_url = "/t/acme/github/members/held/dismiss/"

    def setUp(self):
        sync(self.integration, range(1, 51))
        sync(self.integration, range(1, 31))

    def csrf_client(self, user):
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        client.get(self.url)
        return client

    def post(self, client, url):
        return client.post(url, headers={"X-CSRFToken": client.cookies["csrftoken"].value})

    def test_it_lists_the_held_members_with_confirm_and_dismiss(self):
        self.client.force_login(self.alice)
        response = self.client.get(self.url)

        self.assertContains(response, 'id="held-deactivations" data-count="20"')
        self.assertContains(response, '<li class="login">user-050</li>')
        self.assertContains(response, ">Confirm</button>")
        self.assertContains(response, ">Dismiss</button>")
        self.assertContains(response, "deactivations are on hold")

    def test_members_see_the_held_members_but_no_buttons(self):
        self.client.force_login(self.bob)
        response = self.client.get(self.url)

        self.assertContains(response, 'data-count="20"')
        self.assertNotContains(response, ">Confirm</button>")

    def test_without_held_members_the_section_is_hidden(self):
        dismiss_held_deactivations(integration=self.integration)
        self.client.force_login(self.alice)

        self.assertContains(self.client.get(self.url), 'id="held-deactivations" data-count="0" hidden')

    def test_confirm_deactivates_and_goes_back_to_the_page(self):
        response = self.post(self.csrf_client(self.alice), self.confirm_url)

        assert (response.status_code, response["Location"]) == (302, self.url)
        assert active(self.integration) == 30

    def test_dismiss_keeps_them_and_goes_back_to_the_page(self):
        response = self.post(self.csrf_client(self.alice), self.dismiss_url)

        assert (response.status_code, response["Location"]) == (302, self.url)
        assert (active(self.integration), held(self.integration)) == (50, 0)

    def test_they_require_admin(self):
        client = self.csrf_client(self.bob)
        for url in (self.confirm_url, self.dismiss_url):
            assert self.post(client, url).status_code == 403
        assert held(self.integration) == 20

    def test_they_require_post(self):
        client = self.csrf_client(self.alice)
        for url in (self.confirm_url, self.dismiss_url):
            assert client.get(url).status_code == 405
        assert held(self.integration) == 20

    def test_they_require_the_csrf_token(self):
        client = self.csrf_client(self.alice)
        for url in (self.confirm_url, self.dismiss_url):
            assert client.post(url).status_code == 403
        assert held(self.integration) == 20

    def test_another_teams_admin_gets_404(self):
        client = self.csrf_client(self.charlie)
        assert self.post(client, self.confirm_url).status_code == 404
        assert held(self.integration) == 20
