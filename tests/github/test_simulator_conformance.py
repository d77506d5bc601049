"""The simulator's answers conform to GitHub's own descriptions (tests/vendor/github/): REST bodies to the
response schemas of the OpenAPI descriptions of github.com and of Enterprise Server, the GraphQL schema
and answers to the public schema."""

import pytest
from graphql import build_schema, execute, is_enum_type, is_object_type, parse, validate
from jsonschema import Draft202012Validator, FormatChecker

from github_simulator.graphql import SDL
from tests.conftest import _description
from tests.github.helpers import MEMBERS_QUERY, get, members_page

REST_BODIES = [
    ("/user", "/user", ("read:org",)),
    ("/user", "/user", ("read:org", "user")),
    ("/user/orgs", "/user/orgs", ("read:org",)),
    ("/orgs/{org}", "/orgs/acme", ("read:org",)),
    ("/orgs/{org}", "/api/v3/orgs/acme", ("read:org",)),
    ("/orgs/{org}/members", "/orgs/acme/members?per_page=100", ("read:org",)),
    ("/orgs/{org}/members", "/orgs/acme/members?role=admin", ("read:org",)),
    # public_members is not in the subset; GitHub documents the same body (simple-user items) for it.
    ("/orgs/{org}/members", "/orgs/acme/public_members", ("read:org",)),
    ("/orgs/{org}/memberships/{username}", "/orgs/acme/memberships/octocat", ("read:org",)),
    ("/user/memberships/orgs/{org}", "/user/memberships/orgs/acme", ("read:org",)),
    ("/users/{username}", "/users/octocat", ("read:org",)),
    ("/user/{account_id}", "/user/1", ("read:org",)),
    ("/rate_limit", "/rate_limit", ("read:org",)),
]


@pytest.mark.parametrize(("operation", "path", "scopes"), REST_BODIES, ids=[f"{p} {s}" for _, p, s in REST_BODIES])
def test_rest_bodies_validate_against_githubs_response_schemas(github, github_rest_schema, operation, path, scopes):
    response = get(github, path, github.issue_token(scopes=scopes))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    Draft202012Validator(github_rest_schema(operation), format_checker=FormatChecker()).validate(response.json())


# Enterprise Server serves the same REST API under /api/v3, described by its own OpenAPI description.
ENTERPRISE_BODIES = [
    (operation, f"/api/v3{path}", scopes) for operation, path, scopes in REST_BODIES if not path.startswith("/api/v3")
]


@pytest.mark.parametrize(
    ("operation", "path", "scopes"), ENTERPRISE_BODIES, ids=[f"{p} {s}" for _, p, s in ENTERPRISE_BODIES]
)
def test_enterprise_server_bodies_validate_against_its_response_schemas(
    github, github_rest_schema, operation, path, scopes
):
    response = get(github, path, github.issue_token(scopes=scopes))

    assert response.status_code == 200
    schema = github_rest_schema(operation, plan="ghes")
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(response.json())


# Answers without a body: the status must be one the operation describes, with its headers.
STATUS_ANSWERS = [
    ("/orgs/{org}/members/{username}", "/orgs/acme/members/{member}", False, "204"),
    ("/orgs/{org}/members/{username}", "/orgs/acme/members/nobody", False, "404"),
    ("/orgs/{org}/members/{username}", "/orgs/acme/members/{member}", True, "302"),
    ("/orgs/{org}/public_members/{username}", "/orgs/acme/public_members/octocat", False, "204"),
    ("/orgs/{org}/public_members/{username}", "/orgs/acme/public_members/nobody", False, "404"),
    ("/user/{account_id}", "/user/999999999", False, "404"),
]


@pytest.mark.parametrize("plan", ["api.github.com", "ghes"])
@pytest.mark.parametrize(("operation", "path", "viewer_removed", "status"), STATUS_ANSWERS)
def test_answers_without_a_body_have_a_status_githubs_description_gives(
    github, github_token, plan, operation, path, viewer_removed, status
):
    org = github.org("acme")
    member = org.members[4]
    if viewer_removed:
        org.remove_viewer()
    prefix = "/api/v3" if plan == "ghes" else ""

    response = get(github, prefix + path.format(member=member.login), github_token)

    described = _description(f"rest.{plan}.json")["paths"][operation]["get"]["responses"]
    assert str(response.status_code) == status
    assert set(described[status].get("headers", {})) <= set(response.headers)


def test_a_generated_members_public_profile_validates(github, github_token, github_rest_schema):
    member = github.org("acme").members[3]

    body = get(github, f"/users/{member.login}", github_token).json()

    Draft202012Validator(github_rest_schema("/users/{username}"), format_checker=FormatChecker()).validate(body)


def test_the_simulated_schema_uses_githubs_own_names_and_types(github_graphql_schema):
    ours = build_schema(SDL)

    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        # Missing here, it may be missing from the vendored part only: scripts/refresh_github_descriptions.py
        # adds what the simulator's schema uses, or says that GitHub has no such type or field.
        assert name in github_graphql_schema.type_map, name
        theirs = github_graphql_schema.type_map[name]
        assert type(theirs) is type(ours_type), name
        if is_enum_type(ours_type):
            assert set(ours_type.values) == set(theirs.values)
        if not is_object_type(ours_type):
            continue
        for field_name, field in ours_type.fields.items():
            assert field_name in theirs.fields, f"{name}.{field_name}"
            their_field = theirs.fields[field_name]
            assert str(field.type) == str(their_field.type), f"{name}.{field_name}"
            for argument_name, argument in field.args.items():
                their_argument = their_field.args[argument_name]
                assert str(argument.type) == str(their_argument.type), f"{name}.{field_name}({argument_name})"
                assert argument.default_value == their_argument.default_value


def test_the_products_members_query_validates_against_githubs_schema(github_graphql_schema):
    assert validate(github_graphql_schema, parse(MEMBERS_QUERY)) == []


@pytest.mark.parametrize("remove_viewer", [False, True], ids=["member viewer", "removed viewer"])
def test_the_members_answer_is_data_githubs_schema_allows(github, github_token, github_graphql_schema, remove_viewer):
    if remove_viewer:
        github.org("acme").remove_viewer()
    variables = {"login": "acme", "first": 100}
    data = {"organization": members_page(github, github_token), "rateLimit": None}

    # Executing the query against GitHub's schema over the data itself gives it back unchanged and
    # without an error: wrong types, nulls in non-null fields and unknown enum values all fail.
    result = execute(
        github_graphql_schema,
        parse(MEMBERS_QUERY),
        root_value=data,
        variable_values=variables,
        field_resolver=lambda source, info, **_: source.get(info.path.key),
    )

    assert result.errors is None
    assert result.data == data
