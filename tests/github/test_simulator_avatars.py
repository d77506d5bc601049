"""The simulator's avatars: every member's avatar URL points at the simulator, which answers it with a
small generated image, so that pages show faces with no internet."""

from xml.etree import ElementTree

from tests.github.helpers import get, members_page


def test_members_avatar_urls_point_at_the_simulator(github, github_token):
    rest = get(github, "/orgs/acme/members?per_page=1", github_token).json()
    graphql = [edge["node"] for edge in members_page(github, github_token, first=1)["membersWithRole"]["edges"]]

    for url, user_id in ((rest[0]["avatar_url"], rest[0]["id"]), (graphql[0]["avatarUrl"], graphql[0]["databaseId"])):
        assert url == f"{github.url}/avatars/u/{user_id}?v=4"


def test_an_avatar_is_a_small_cacheable_svg_the_same_for_the_same_user(github):
    first = get(github, "/avatars/u/10000001?v=4&s=80")
    again = get(github, "/avatars/u/10000001?v=4")
    other = get(github, "/avatars/u/10000002?v=4")

    assert first.status_code == 200
    assert first.headers["Content-Type"] == "image/svg+xml"
    assert "max-age" in first.headers["Cache-Control"]
    assert ElementTree.fromstring(first.content).tag == "{http://www.w3.org/2000/svg}svg"  # noqa: S314 (the simulator's own SVG)
    assert len(first.content) < 2_000
    assert first.content == again.content != other.content
    assert get(github, "/avatars/u/10000001", **{"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_avatars_are_not_counted_as_the_products_requests(github):
    get(github, "/avatars/u/1?v=4")

    assert github.request_count == 0


def test_an_unknown_avatar_path_is_not_found(github):
    assert get(github, "/avatars/u/octocat").status_code == 404
