"""The accidental-deactivation guard (docs/architecture.md#who-may-deactivate): a run that would
deactivate too many members at once holds them for an admin, who confirms or dismisses them on the
members page. Also members GitHub sent in a form that could not be read: counted, shown, and nobody
deactivated."""

from unittest import mock

import pytest
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from integrations.github.schemas import MembersPage, OrganizationMember
from integrations.member_sync import runs
from integrations.member_sync.held_deactivations import confirm_held_deactivations, dismiss_held_deactivations
from integrations.member_sync.sync import sync_members
from integrations.models import GitHubIntegration, GitHubMember, MemberChange, MemberSyncRun

# On PostgreSQL too (.ci/run): member_writes.py's SQL and F() updates.
pytestmark = pytest.mark.postgres

Status = MemberSyncRun.Status
URL = "/t/acme/github/members/"
CONFIRM_URL = "/t/acme/github/members/held/confirm/"
DISMISS_URL = "/t/acme/github/members/held/dismiss/"


class OnePage:
    """Stands in for GitHubClient: the organization's members in one page."""

    # What GitHub's rate-limit headers would have said: nothing.
    rate_limit_remaining = rate_limit_reset_at = None

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
    page = MembersPage(members=members, total=len(members), has_next_page=False, skipped=skipped)
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status=Status.SYNCING)
    runs.complete_run(run, sync_members(run=run, client=OnePage(page)))
    run.refresh_from_db()
    return run


def active(integration):
    return GitHubMember.objects.filter(integration=integration, is_active=True).count()


def held(integration):
    return GitHubMember.objects.filter(integration=integration, deactivation_held_at__isnull=False).count()


@pytest.fixture
def fifty_members(integration):
    """Acme's integration after a run that read 50 members."""
    sync(integration, range(1, 51))
    return integration


@pytest.fixture
def twenty_held(fifty_members):
    """Then a run that missed 20 of the 50 (40%): they are held."""
    sync(fifty_members, range(1, 31))
    return fifty_members


def test_a_run_that_would_deactivate_40_percent_holds_them(fifty_members):
    run = sync(fifty_members, range(1, 31))

    assert (run.status, run.members_deactivated, run.members_held) == (Status.COMPLETE, 0, 20)
    assert (active(fifty_members), held(fifty_members)) == (50, 20)
    fifty_members.refresh_from_db()
    assert fifty_members.member_sync_result["held"] == 20


def test_confirm_deactivates_the_held_members(alice, twenty_held):
    assert confirm_held_deactivations(integration=twenty_held, by=alice) == 20

    assert (active(twenty_held), held(twenty_held)) == (30, 0)
    assert not GitHubMember.objects.filter(is_active=False, left_at__isnull=True).exists()
    run = MemberSyncRun.objects.first()
    assert (run.members_held, run.members_deactivated) == (0, 20)
    twenty_held.refresh_from_db()
    result = twenty_held.member_sync_result
    assert (result["held"], result["deactivated"]) == (0, 20)


def test_dismiss_keeps_the_held_members_active(alice, twenty_held):
    assert dismiss_held_deactivations(integration=twenty_held, by=alice) == 20

    assert (active(twenty_held), held(twenty_held)) == (50, 0)
    assert MemberSyncRun.objects.first().members_held == 0


def test_a_second_confirm_changes_nothing(alice, twenty_held):
    confirm_held_deactivations(integration=twenty_held, by=alice)

    assert confirm_held_deactivations(integration=twenty_held, by=alice) == 0
    assert MemberSyncRun.objects.first().members_deactivated == 20


def test_a_decision_is_recorded_with_who_made_it(alice, twenty_held):
    confirm_held_deactivations(integration=twenty_held, by=alice)

    run = MemberSyncRun.objects.first()
    decided = run.member_changes.filter(kind="deactivated")
    assert (decided.count(), set(decided.values_list("by__username", flat=True))) == (20, {"alice"})
    assert run.change_counts == {"held": 20, "deactivated": 20}


def test_a_dismissal_is_recorded_as_kept(alice, twenty_held):
    dismiss_held_deactivations(integration=twenty_held, by=alice)

    kept = MemberChange.objects.filter(kind="kept")
    assert (kept.count(), set(kept.values_list("by__username", flat=True))) == (20, {"alice"})


def test_a_later_run_that_sees_them_again_drops_the_hold(twenty_held):
    run = sync(twenty_held, range(1, 51))

    assert (run.members_held, run.members_unchanged, run.members_updated) == (0, 50, 0)
    assert (active(twenty_held), held(twenty_held)) == (50, 0)


def test_a_later_run_that_misses_them_again_holds_them_again(twenty_held):
    first_held_at = GitHubMember.objects.get(github_id=50).deactivation_held_at

    run = sync(twenty_held, range(1, 31))

    assert (run.members_held, run.members_deactivated) == (20, 0)
    assert GitHubMember.objects.get(github_id=50).deactivation_held_at == first_held_at


def test_held_members_missing_under_the_threshold_are_deactivated(twenty_held):
    run = sync(twenty_held, range(1, 48))  # 17 came back, 3 are still gone

    assert (run.members_held, run.members_deactivated) == (0, 3)
    assert (active(twenty_held), held(twenty_held)) == (47, 0)


def test_under_the_threshold_they_are_deactivated(fifty_members):
    run = sync(fifty_members, range(1, 41))  # 20%: not more than 20%

    assert (run.members_held, run.members_deactivated) == (0, 10)
    assert active(fifty_members) == 40


@pytest.mark.services  # the sync publishes its events to Redis
def test_no_more_than_five_are_deactivated_whatever_the_share(other_team):
    small = GitHubIntegration.objects.create(team=other_team, organization_login="globex")
    sync(small, range(1, 11))

    run = sync(small, range(1, 6))  # half of them, but 5

    assert (run.members_held, run.members_deactivated) == (0, 5)


def test_the_thresholds_are_settings(fifty_members, settings):
    settings.MEMBER_SYNC_HOLD_DEACTIVATIONS_PERCENT = 50

    run = sync(fifty_members, range(1, 31))

    assert (run.members_held, run.members_deactivated) == (0, 20)


@pytest.mark.parametrize("decide", [confirm_held_deactivations, dismiss_held_deactivations])
def test_confirm_and_dismiss_tell_open_pages(alice, twenty_held, decide):
    with mock.patch("integrations.member_sync.runs.publish_member_sync") as publish:
        decide(integration=twenty_held, by=alice)

    (run,), _ = publish.call_args
    assert run.result()["held"] == 0


def test_members_that_could_not_be_read_are_counted_and_nobody_is_deactivated(fifty_members):
    run = sync(fifty_members, range(1, 31), skipped=2)

    assert (run.members_skipped, run.members_deactivated, run.members_held) == (2, 0, 0)
    assert run.result()["skipped"] == 2
    assert active(fifty_members) == 50


def test_members_held_while_some_could_not_be_read_stay_held(twenty_held):
    run = sync(twenty_held, range(1, 31), skipped=1)

    assert (run.members_held, held(twenty_held), active(twenty_held)) == (20, 20, 50)


def csrf_client(user):
    """A client that sends the CSRF token only when told, as a browser's form does."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(URL)
    return client


def post(client, url):
    return client.post(url, headers={"X-CSRFToken": client.cookies["csrftoken"].value})


def test_the_page_lists_the_held_members_with_confirm_and_dismiss(client, alice, twenty_held):
    client.force_login(alice)

    response = client.get(URL)

    assertContains(response, 'id="held-deactivations" data-count="20"')
    assertContains(response, '<li class="login">user-050</li>')
    assertContains(response, ">Confirm</button>")
    assertContains(response, ">Dismiss</button>")
    assertContains(response, "deactivations are on hold")


def test_members_see_the_held_members_but_no_buttons(client, bob, twenty_held):
    client.force_login(bob)

    response = client.get(URL)

    assertContains(response, 'data-count="20"')
    assertNotContains(response, ">Confirm</button>")


def test_without_held_members_the_section_is_hidden(client, alice, twenty_held):
    dismiss_held_deactivations(integration=twenty_held, by=alice)
    client.force_login(alice)

    assertContains(client.get(URL), 'id="held-deactivations" data-count="0" hidden')


def test_confirm_deactivates_and_goes_back_to_the_page(alice, twenty_held):
    response = post(csrf_client(alice), CONFIRM_URL)

    assert (response.status_code, response["Location"]) == (302, URL)
    assert active(twenty_held) == 30


def test_dismiss_keeps_them_and_goes_back_to_the_page(alice, twenty_held):
    response = post(csrf_client(alice), DISMISS_URL)

    assert (response.status_code, response["Location"]) == (302, URL)
    assert (active(twenty_held), held(twenty_held)) == (50, 0)


def test_confirm_and_dismiss_require_admin(bob, twenty_held):
    client = csrf_client(bob)

    for url in (CONFIRM_URL, DISMISS_URL):
        assert post(client, url).status_code == 403
    assert held(twenty_held) == 20


def test_confirm_and_dismiss_require_post(alice, twenty_held):
    client = csrf_client(alice)

    for url in (CONFIRM_URL, DISMISS_URL):
        assert client.get(url).status_code == 405
    assert held(twenty_held) == 20


def test_confirm_and_dismiss_require_the_csrf_token(alice, twenty_held):
    client = csrf_client(alice)

    for url in (CONFIRM_URL, DISMISS_URL):
        assert client.post(url).status_code == 403
    assert held(twenty_held) == 20


def test_another_teams_admin_gets_404(charlie, other_team, twenty_held):
    assert post(csrf_client(charlie), CONFIRM_URL).status_code == 404
    assert held(twenty_held) == 20
