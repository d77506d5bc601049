"""What GitHub sends becomes typed, cleaned records, or a clear refusal: pure functions on bodies."""

import traceback

import pytest

from integrations.github import schemas
from integrations.github.errors import MalformedResponse
from integrations.github.schemas import MemberEdge, OAuthToken, RestMember

TOKEN = "gho_0123456789abcdefghijklmnopqrstuvwxyz"


def user(number, **fields):
    return {
        "id": f"U_{number}",
        "databaseId": number,
        "login": f"user{number}",
        "name": f"User {number}",
        "email": f"user{number}@example.com",
        "avatarUrl": f"https://avatars.example.com/u/{number}",
        "organizationVerifiedDomainEmails": [],
        **fields,
    }


def edge(number, role="MEMBER", **fields):
    return {"role": role, "node": user(number, **fields)}


def read(*edges):
    return schemas.members(list(edges), MemberEdge, "acme")


def test_a_member_record_carries_ids_and_profile():
    [[member], skipped] = read(edge(42, "ADMIN"))

    assert skipped == 0
    assert member.model_dump() == {
        "github_id": 42,
        "node_id": "U_42",
        "login": "user42",
        "name": "User 42",
        "email": "user42@example.com",
        "avatar_url": "https://avatars.example.com/u/42",
        "role": "admin",
    }


def test_null_graphql_name_email_and_avatar_mean_empty():
    [[member], _] = read(edge(1, name=None, email=None, avatarUrl=None))

    assert (member.name, member.email, member.avatar_url) == ("", "", "")


def test_a_verified_domain_email_fills_an_empty_public_email():
    [[without_public, with_public], _] = read(
        edge(1, email="", organizationVerifiedDomainEmails=["one@acme.example"]),
        edge(2, email="two@home.example", organizationVerifiedDomainEmails=["two@acme.example"]),
    )

    assert without_public.email == "one@acme.example"
    assert with_public.email == "two@home.example"


def test_rest_members_leave_name_and_email_unknown_rather_than_empty():
    rest = {"id": 7, "node_id": "U_7", "login": "seven", "avatar_url": "https://avatars.example.com/u/7"}

    [[member], _] = schemas.members([rest], RestMember, "acme", role="member")

    assert (member.name, member.email) == (None, None)


def test_untrusted_text_is_cleaned_but_html_is_left_to_escaping():
    [[first, second], _] = read(
        edge(1, name="<b>Mallory</b>\x00\u202e\n", email="not an email", avatarUrl="javascript:alert(1)"),
        edge(2, name="x" * 5000),
    )

    assert first.name == "<b>Mallory</b>\u202e"
    assert (first.email, first.avatar_url) == ("", "")
    assert len(second.name) == 1024


@pytest.mark.parametrize(
    ("avatar_url", "kept"),
    [
        ("https://avatars.githubusercontent.com/u/1?v=4", True),
        ("http://localhost:8000/a.png", True),
        ("https://avatars.example.com/u/1 x", False),
        ("https://avatars.example.com/\x85", False),
        ("ftp://avatars.example.com/u/1", False),
        ("//avatars.example.com/u/1", False),
        ("https://avatars.example.com/" + "x" * 2048, False),
    ],
)
def test_only_plausible_web_urls_are_kept(avatar_url, kept):
    [[member], _] = read(edge(1, avatarUrl=avatar_url))

    assert member.avatar_url == (avatar_url if kept else "")


@pytest.mark.parametrize(
    "bad_edge",
    [
        edge(1, databaseId=None),
        edge(1, login=None),
        edge(1, login="<script>"),
        edge(1, databaseId="1"),
        edge(1, databaseId=0),
        edge(1, databaseId=2**63),
        edge(1, id=None),
        {"role": "MEMBER", "node": None},
        {"role": "OWNER", "node": user(1)},
        None,
        "user1",
    ],
)
def test_an_unusable_member_record_is_skipped_and_counted(bad_edge):
    members, skipped = read(edge(2), bad_edge, edge(3))

    assert [member.github_id for member in members] == [2, 3]
    assert skipped == 1


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"data": 5}', b'{"errors": "x"}'])
def test_an_answer_that_does_not_fit_its_shape_is_malformed(body):
    with pytest.raises(MalformedResponse) as raised:
        schemas.parse(schemas.GraphQLAnswer, body, "the GraphQL answer")

    assert str(raised.value).startswith("GitHub sent an answer this app could not use (the GraphQL answer: ")


def test_a_malformed_answer_names_where_never_what():
    body = f'{{"access_token": "{TOKEN}", "token_type": 7}}'.encode()

    with pytest.raises(MalformedResponse) as raised:
        schemas.parse(schemas.TokenAnswer, body, "the access token answer")

    assert "token_type" in str(raised.value)
    assert TOKEN not in "".join(traceback.format_exception(raised.value))


def test_a_token_record_never_shows_the_token():
    token = OAuthToken(access_token=TOKEN, token_type="bearer", scopes=["read:org"])

    assert TOKEN not in repr(token)
    assert TOKEN not in str(token)
