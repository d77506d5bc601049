"""Every GraphQL document the client sends validates against GitHub's published schema (the part of it
vendored in tests/vendor/github/: a field the product starts to use appears there once
scripts/refresh_github_descriptions.py has run, if GitHub has it)."""

import pytest
from graphql import build_schema, parse, validate, validate_schema

from integrations.github.client import (
    MEMBERS_QUERY,
    MEMBERS_QUERY_WITHOUT_VERIFIED_EMAILS,
    TEAM_MEMBERS_QUERY,
    TEAMS_QUERY,
)
from tests.conftest import GITHUB_DESCRIPTIONS


def test_the_vendored_part_of_githubs_schema_is_a_valid_schema():
    schema = build_schema((GITHUB_DESCRIPTIONS / "schema.graphql").read_text())

    assert validate_schema(schema) == []


@pytest.mark.parametrize(
    "document", [MEMBERS_QUERY, MEMBERS_QUERY_WITHOUT_VERIFIED_EMAILS, TEAMS_QUERY, TEAM_MEMBERS_QUERY]
)
def test_the_queries_validate_against_githubs_schema(github_graphql_schema, document):
    assert validate(github_graphql_schema, parse(document)) == []


def test_a_document_with_a_misspelt_field_fails_validation(github_graphql_schema):
    document = MEMBERS_QUERY.replace("avatarUrl", "avatarURL")

    assert validate(github_graphql_schema, parse(document)) != []


def test_one_member_query_differs_from_the_other_only_by_verified_emails():
    assert "organizationVerifiedDomainEmails" in MEMBERS_QUERY
    assert "organizationVerifiedDomainEmails" not in MEMBERS_QUERY_WITHOUT_VERIFIED_EMAILS
