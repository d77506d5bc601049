"""Calls to the simulator over HTTP, as a client of GitHub would make them."""

import requests

from integrations.github.client import MEMBERS_QUERY


def get(github, path, token=None, **headers):
    if token:
        headers["Authorization"] = f"token {token}"
    return requests.get(f"{github.url}{path}", headers=headers, allow_redirects=False, timeout=10)


def graphql(github, token, document, *, path="/graphql", **variables):
    return requests.post(
        f"{github.url}{path}",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"bearer {token}"},
        timeout=10,
    )


def members_page(github, token, login="acme", first=100, after=None, path="/graphql"):
    response = graphql(github, token, MEMBERS_QUERY, path=path, login=login, first=first, after=after)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    return response.json()["data"]["organization"]


def all_members(github, token, login="acme", first=100, path="/graphql"):
    """Return every member edge, page after page."""
    edges, after = [], None
    while True:
        connection = members_page(github, token, login, first, after, path)["membersWithRole"]
        edges += connection["edges"]
        if not connection["pageInfo"]["hasNextPage"]:
            return edges
        after = connection["pageInfo"]["endCursor"]
