"""PyGithub, another client nobody here wrote, checks memberships against the simulator as it would
against GitHub: the single-member check's 204, 404 and, for an account outside the organization,
its 302 to the public-membership check, which PyGithub follows."""

import pytest
from github import Auth, Github


@pytest.fixture(params=["", "/api/v3"], ids=["github.com", "enterprise server"])
def pygithub(request, github, github_token):
    client = Github(auth=Auth.Token(github_token), base_url=f"{github.url}{request.param}", retry=None)
    yield client
    client.close()


def test_pygithub_tells_members_from_others(github, pygithub):
    org = github.org("acme")
    member = org.members[3]
    removed = org.remove_members(1)[0]
    organization = pygithub.get_organization("acme")

    assert organization.has_in_members(pygithub.get_user(member.login))
    assert not organization.has_in_members(pygithub.get_user_by_id(removed.database_id))


def test_pygithub_outside_the_organization_learns_only_of_public_members(github, pygithub):
    org = github.org("acme")
    public = next(member for member in org.members[1:] if member.public)
    concealed = next(member for member in org.members if not member.public)
    users = {member.login: pygithub.get_user(member.login) for member in (public, concealed)}
    org.remove_viewer()
    organization = pygithub.get_organization("acme")

    assert organization.has_in_members(users[public.login])
    assert not organization.has_in_members(users[concealed.login])
    assert [user.login for user in organization.get_members()] == [
        member.login for member in org.members if member.public
    ]


def test_pygithub_reads_a_members_membership_and_its_own(github, pygithub):
    member = github.org("acme").members[4]
    github.inject("null_roles", logins=[member.login])

    theirs = pygithub.get_user(member.login).get_organization_membership("acme")
    own = pygithub.get_user().get_organization_membership("acme")

    assert (theirs.state, theirs.role, theirs.user.id) == ("active", None, member.database_id)
    assert (own.state, own.role) == ("active", "admin")
