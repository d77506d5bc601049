"""Every GraphQL document the client sends validates against GitHub's published schema."""

from pathlib import Path

import pytest
from graphql import build_schema, parse, validate, validate_schema

from integrations.github import queries

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "shared" / "github" / "schema.graphql"

DOCUMENTS = {name: value for name, value in vars(queries).items() if name.isupper() and isinstance(value, str)}


@pytest.fixture(scope="module")
def schema():
    # 1.2 MB of SDL: built once for the module, it takes a few seconds. GitHub's schema breaks one
    # rule graphql-core 3.3 checks (see below), which validate() would otherwise refuse it for.
    return build_schema(SCHEMA_PATH.read_text(), assume_valid=True)


def test_githubs_schema_breaks_only_the_rule_on_deprecated_interface_fields():
    problems = {error.message for error in validate_schema(build_schema(SCHEMA_PATH.read_text()))}

    assert problems
    assert all("is not deprecated, so implementation field" in problem for problem in problems)


def test_the_client_sends_at_least_the_member_query():
    assert "ORGANIZATION_MEMBERS" in DOCUMENTS


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_validates_against_githubs_schema(schema, name):
    assert validate(schema, parse(DOCUMENTS[name])) == []


def test_a_document_with_a_misspelt_field_fails_validation(schema):
    document = DOCUMENTS["ORGANIZATION_MEMBERS"].replace("avatarUrl", "avatarURL")

    assert validate(schema, parse(document)) != []
