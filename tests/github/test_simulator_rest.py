"""The simulator's REST endpoints over HTTP: paging, both URL layouts, conditional requests, and what a
viewer outside the organization sees."""

from urllib.parse import parse_qs, urlsplit

import requests

from tests.github.helpers import MEMBERS_QUERY, get, graphql


def test_members_are_paged_by_the_link_header(github, github_token):
    logins, url = [], f"{github.url}/orgs/acme/members?per_page=100"
    while url:
        response = requests.get(url, headers={"Authorization": f"token {github_token}"}, timeout=10)
        logins += [user["login"] for user in response.json()]
        url = response.links.get("next", {}).get("url")

    assert len(logins) == len(set(logins)) == 250
    assert logins == [member.login for member in github.org("acme").members]


def test_the_link_header_names_the_organization_by_id_and_keeps_the_query(github, github_token):
    response = get(github, "/orgs/acme/members?per_page=100&page=2&role=all", github_token)

    org_id = github.org("acme").id
    assert response.links["next"]["url"] == f"{github.url}/organizations/{org_id}/members?per_page=100&role=all&page=3"
    assert {rel: parse_qs(urlsplit(link["url"]).query)["page"] for rel, link in response.links.items()} == {
        "prev": ["1"],
        "next": ["3"],
        "last": ["3"],
        "first": ["1"],
    }


def test_members_filter_by_role_and_per_page_is_capped_at_100(github, github_token):
    admins = get(github, "/orgs/acme/members?role=admin&per_page=100", github_token).json()
    capped = get(github, "/orgs/acme/members?per_page=500", github_token).json()
    invalid = get(github, "/orgs/acme/members?role=owner", github_token)

    expected = [member.login for member in github.org("acme").members if member.role == "ADMIN"]
    assert [user["login"] for user in admins] == expected
    assert len(capped) == 100
    assert (invalid.status_code, invalid.json()["message"]) == (422, "Validation Failed")


def test_unknown_organizations_users_and_routes_are_not_found(github, github_token):
    for path in ("/orgs/nobody", "/orgs/acme/memberships/nobody", "/users/nobody", "/repos/acme/x"):
        assert get(github, path, github_token).status_code == 404, path


def test_a_request_without_a_token_needs_authentication_and_an_unknown_token_is_refused(github):
    assert get(github, "/user").status_code == 401
    assert get(github, "/user", "gho_unknown").json()["message"] == "Bad credentials"


def test_enterprise_server_paths_answer_the_same_with_their_own_links(github, github_token):
    dotcom = get(github, "/orgs/acme/members?per_page=100", github_token)
    enterprise = get(github, "/api/v3/orgs/acme/members?per_page=100", github_token)

    assert enterprise.status_code == 200
    assert [user["id"] for user in enterprise.json()] == [user["id"] for user in dotcom.json()]
    assert enterprise.links["next"]["url"].startswith(f"{github.url}/api/v3/organizations/")
    assert enterprise.json()[0]["url"] == f"{github.url}/api/v3/users/octocat"
    assert get(github, "/api/v3/user", github_token).json()["login"] == "octocat"


def test_a_matching_if_none_match_gets_304_and_costs_nothing(github, github_token):
    first = get(github, "/orgs/acme", github_token)
    again = get(github, "/orgs/acme", github_token, **{"If-None-Match": first.headers["ETag"]})
    changed = get(github, "/orgs/acme/members", github_token, **{"If-None-Match": first.headers["ETag"]})

    assert first.headers["ETag"].startswith('W/"')
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", first.headers["ETag"])
    assert again.headers["X-RateLimit-Remaining"] == first.headers["X-RateLimit-Remaining"]
    assert changed.status_code == 200
    assert int(changed.headers["X-RateLimit-Used"]) == 2


def test_rate_limit_tells_each_budget_and_costs_nothing(github, github_token):
    get(github, "/user", github_token)

    body = get(github, "/rate_limit", github_token).json()
    again = get(github, "/rate_limit", github_token).json()

    assert body["resources"]["core"]["used"] == again["resources"]["core"]["used"] == 1
    assert body["rate"] == body["resources"]["core"]
    assert body["resources"]["graphql"]["remaining"] == 5000


def test_a_user_is_found_by_login(github, github_token):
    member = github.org("acme").members[7]

    body = get(github, f"/users/{member.login.upper()}", github_token).json()

    assert (body["login"], body["id"], body["name"]) == (member.login, member.database_id, member.name)


def test_the_viewers_membership_is_active_with_its_role(github, github_token):
    body = get(github, "/user/memberships/orgs/acme", github_token).json()

    assert (body["state"], body["role"], body["user"]["login"]) == ("active", "admin", "octocat")


def test_a_removed_viewer_listing_the_members_gets_200_and_the_public_members_only(github, github_token):
    org = github.org("acme")
    org.remove_viewer()
    public = [member.login for member in org.members if member.public]

    listed = get(github, "/orgs/acme/members?per_page=10", github_token)
    enterprise = get(github, "/api/v3/orgs/acme/members?per_page=10", github_token)

    assert (listed.status_code, enterprise.status_code) == (200, 200)
    assert "Location" not in listed.headers
    assert [user["login"] for user in listed.json()] == [user["login"] for user in enterprise.json()] == public[:10]


def test_the_membership_check_answers_204_for_a_member_and_404_for_anyone_else(github, github_token):
    org = github.org("acme")
    member = org.members[5]
    removed = org.remove_members(1)[0]

    assert get(github, f"/orgs/acme/members/{member.login}", github_token).status_code == 204
    assert get(github, f"/api/v3/orgs/acme/members/{member.login}", github_token).status_code == 204
    assert get(github, f"/orgs/acme/members/{removed.login}", github_token).status_code == 404
    assert get(github, "/orgs/acme/members/nobody", github_token).status_code == 404


def test_a_removed_viewers_membership_check_is_redirected_to_the_public_membership_check(github, github_token):
    org = github.org("acme")
    public = next(member for member in org.members[1:] if member.public)
    concealed = next(member for member in org.members if not member.public)
    org.remove_viewer()

    redirected = get(github, f"/api/v3/orgs/acme/members/{concealed.login}", github_token)

    assert redirected.status_code == 302
    assert redirected.headers["Location"] == f"{github.url}/api/v3/orgs/acme/public_members/{concealed.login}"
    assert get(github, f"/orgs/acme/public_members/{public.login}", github_token).status_code == 204
    assert get(github, f"/orgs/acme/public_members/{concealed.login}", github_token).status_code == 404


def test_a_user_is_found_by_id_even_after_leaving_the_organization(github, github_token):
    org = github.org("acme")
    member = org.members[7]
    org.rename_member(member.login, "renamed-login")
    removed = org.remove_members(1)[0]

    found = get(github, f"/user/{member.database_id}", github_token)
    gone = get(github, f"/user/{removed.database_id}", github_token)

    assert (found.status_code, found.json()["login"], found.json()["id"]) == (200, "renamed-login", member.database_id)
    assert (gone.status_code, gone.json()["login"]) == (200, removed.login)
    assert get(github, "/user/1", github_token).json()["login"] == "octocat"
    assert get(github, "/user/999999999", github_token).status_code == 404


def test_a_removed_viewer_sees_only_public_members_page_by_page(github, github_token):
    org = github.org("acme")
    org.remove_viewer()
    public = [member.login for member in org.members if member.public]

    logins, url = [], f"{github.url}/orgs/acme/members?per_page=20"
    while url:
        response = requests.get(url, headers={"Authorization": f"token {github_token}"}, timeout=10)
        logins += [user["login"] for user in response.json()]
        url = response.links.get("next", {}).get("url")

    assert 50 < len(public) < 120  # about one in three
    assert logins == public
    assert "octocat" not in logins


def test_a_removed_viewer_loses_the_organization_and_its_membership(github, github_token):
    github.add_org("globex", size=3)
    github.org("acme").remove_viewer()

    orgs = get(github, "/user/orgs", github_token).json()
    membership = get(github, "/user/memberships/orgs/acme", github_token)

    assert [org["login"] for org in orgs] == ["globex"]
    assert membership.status_code == 404
    assert get(github, "/orgs/acme", github_token).status_code == 200


def test_membership_changes_between_runs_are_visible(github, github_token):
    org = github.org("acme")
    removed = org.remove_members(3)
    added = org.add_members(2)
    renamed = org.rename_member(org.members[5].login, "new-login")
    org.rename("acme-inc")

    logins = {user["login"] for user in get(github, "/orgs/acme-inc/members?per_page=100&page=3", github_token).json()}
    all_logins = {member.login for member in github.org("acme-inc").members}

    assert github.org("acme-inc").size == 249
    assert not {member.login for member in removed} & all_logins
    assert {member.login for member in added} <= logins
    assert renamed.login == "new-login" in all_logins
    assert get(github, "/orgs/acme", github_token).status_code == 404


def test_a_50000_member_organization_answers_its_last_page(github, github_token):
    github.add_org("huge", size=50_000)

    last = get(github, "/orgs/huge/members?per_page=100&page=500", github_token)

    assert len(last.json()) == 100
    assert "next" not in last.links


def test_with_rate_limiting_off_no_answer_carries_rate_limit_headers_as_on_enterprise_server(github, github_token):
    github.set_rate_limit(None)

    members = get(github, "/api/v3/orgs/acme/members", github_token)
    page = graphql(github, github_token, MEMBERS_QUERY, path="/api/graphql", login="acme", first=5)
    rate_limit = get(github, "/api/v3/rate_limit", github_token)

    for answer in (members, page):
        assert answer.status_code == 200
        assert not [name for name in answer.headers if name.lower().startswith("x-ratelimit-")]
    assert page.json()["data"]["rateLimit"] is None
    assert len(page.json()["data"]["organization"]["membersWithRole"]["edges"]) == 5
    assert (rate_limit.status_code, rate_limit.json()["message"]) == (404, "Rate limiting is not enabled.")


def test_rate_limiting_off_is_never_refused_and_a_reset_turns_it_back_on(github, github_token):
    github.set_rate_limit(None)
    for _ in range(3):
        get(github, "/user", github_token)

    github.reset()

    assert get(github, "/user", github_token).headers["X-RateLimit-Remaining"] == "4999"
