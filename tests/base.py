from django.contrib.auth import get_user_model
from django.test import TestCase

from integrations.models import GitHubIntegration
from teams.models import Membership, Team

User = get_user_model()
PASSWORD = "correct horse battery staple"


def make_team(name, slug, *, admin=None, members=()):
    team = Team.objects.create(name=name, slug=slug)
    if admin is not None:
        Membership.objects.create(team=team, user=admin, role=Membership.Role.ADMIN)
    for user in members:
        Membership.objects.create(team=team, user=user, role=Membership.Role.MEMBER)
    return team


class BaseTestCase(TestCase):
    """Alice administers Acme, Bob is a plain member of it; Charlie administers another team."""

    @classmethod
    def setUpTestData(cls):
        cls.alice = User.objects.create_user("alice", password=PASSWORD)
        cls.bob = User.objects.create_user("bob", password=PASSWORD)
        cls.charlie = User.objects.create_user("charlie", password=PASSWORD)
        cls.team = make_team("Acme", "acme", admin=cls.alice, members=[cls.bob])
        cls.other_team = make_team("Globex", "globex", admin=cls.charlie)
        cls.integration = GitHubIntegration.objects.create(
            team=cls.team, organization_login="acme-corp", organization_id=1001, connected_by=cls.alice
        )
