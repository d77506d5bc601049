"""Running a member sync in a test as the actor runs it, against the simulator or against member
pages the test gives."""

from integrations.github.schemas import MembersPage, OrganizationMember
from integrations.member_sync.sync import sync_members
from integrations.models import GitHubMember, MemberSyncRun


def sync(integration, *, client, on_progress=None):
    """A sync as the actor runs it: within a run of the integration."""
    run = MemberSyncRun.objects.create(integration=integration, trigger="manual", status="syncing")
    try:
        return sync_members(run=run, client=client, on_progress=on_progress)
    finally:
        MemberSyncRun.objects.filter(pk=run.pk).update(status="complete")


def stored_members(integration):
    return {
        row["github_id"]: row
        for row in GitHubMember.objects.filter(integration=integration).values(
            "id", "github_id", "node_id", "login", "name", "email", "avatar_url", "role", "is_active", "left_at"
        )
    }


class PagesClient:
    """Stands in for GitHubClient where a test needs member records GitHub would rarely send."""

    # What GitHub's rate-limit headers would have said: nothing.
    rate_limit_remaining = rate_limit_reset_at = None

    def __init__(self, *pages):
        self.pages = pages
        self.api_calls = 0

    def iter_member_pages(self, login):
        for members in self.pages:
            self.api_calls += 1
            yield MembersPage(members=members, total=None, has_next_page=False)


def member(github_id, login, **fields):
    return OrganizationMember(github_id=github_id, node_id=f"U_{github_id}", login=login, role="member", **fields)
