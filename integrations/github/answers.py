"""GitHub's JSON answers as the client receives them, and their parsing into models.

These models mirror GitHub's wire format and are for the modules of this package only: what leaves
the package is a record of ``records.py``. Their fields check the shape of an answer; the values a
record carries are validated and cleaned once, as the record is built. A body that does not fit
raises ``MalformedResponse``, whose detail names where and what, never a value (which might be
anything, a token included).
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from integrations.github.errors import MalformedResponse
from integrations.github.records import Login, Organization, OrganizationMember

logger = logging.getLogger(__name__)


class _Answer(BaseModel):
    # strict: a number where a string belongs (or the other way round) is an error, not a conversion.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


# REST: https://docs.github.com/en/rest/orgs/members#list-organization-members


class _RestMember(_Answer):
    id: int
    node_id: str
    login: str
    # GitHub's simple-user schema allows name and email, though the member list seldom fills them.
    name: str | None = None
    email: str | None = None
    avatar_url: str | None = None

    def fields(self, role: str) -> dict:
        """The fields of the OrganizationMember this is, as yet unvalidated."""
        return {
            "github_id": self.id,
            "node_id": self.node_id,
            "login": self.login,
            "name": self.name,
            "email": self.email,
            "avatar_url": self.avatar_url,
            "role": role,
        }


class _RestErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str = ""


# Validated by rest_members(), so that one unusable record does not sink the page.
ITEMS = TypeAdapter(list[Any], config=ConfigDict(strict=True))
ORGANIZATIONS = TypeAdapter(list[Organization])


# GraphQL: https://docs.github.com/en/graphql/reference/objects#organization (membersWithRole)


class _GraphQLUser(_Answer):
    id: str
    databaseId: int
    login: str
    name: str | None = None
    email: str | None = None
    avatarUrl: str | None = None


class _MemberEdge(_Answer):
    role: Literal["ADMIN", "MEMBER"]
    node: _GraphQLUser

    def fields(self) -> dict:
        """The fields of the OrganizationMember this is, as yet unvalidated."""
        return {
            "github_id": self.node.databaseId,
            "node_id": self.node.id,
            "login": self.node.login,
            "name": self.node.name,
            "email": self.node.email,
            "avatar_url": self.node.avatarUrl,
            "role": self.role.lower(),
        }


class _PageInfo(_Answer):
    hasNextPage: bool
    endCursor: str | None = None


class _MembersConnection(_Answer):
    totalCount: Annotated[int, Field(ge=0)]
    pageInfo: _PageInfo
    # Validated by graphql_members(), so that one unusable record does not sink the page.
    edges: list[Any]


class _GraphQLOrganization(_Answer):
    login: Login
    membersWithRole: _MembersConnection


class _RateLimit(_Answer):
    remaining: int
    resetAt: Annotated[datetime, Field(strict=False)]


class MembersData(_Answer):
    organization: _GraphQLOrganization | None
    rateLimit: _RateLimit | None = None


class ErrorExtensions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    saml_failure: bool = False
    code: str | None = None


class GraphQLError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str | None = None
    code: str | None = None
    message: str = ""
    path: list[str | int] | None = None
    extensions: ErrorExtensions | None = None


class GraphQLAnswer(_Answer):
    data: dict[str, Any] | None = None
    errors: list[GraphQLError] = []


# OAuth: https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps


class TokenAnswer(_Answer):
    access_token: str | None = None
    token_type: str | None = None
    scope: str = ""
    error: str | None = None


def parse(model, body: bytes, what: str):
    """Validate a JSON body into ``model`` (a model class or a TypeAdapter)."""
    validate = model.validate_json if isinstance(model, TypeAdapter) else model.model_validate_json
    try:
        return validate(body)
    except ValidationError as error:
        raise MalformedResponse(_validation_detail(error, what)) from None


def validate(model, data, what: str):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise MalformedResponse(_validation_detail(error, what)) from None


def rest_members(items: list, role: str, org_login: str) -> tuple[list[OrganizationMember], int]:
    """The members among the items of a REST member list, and how many were unusable."""
    return _usable_members(items, _RestMember, lambda member: member.fields(role), org_login)


def graphql_members(edges: list, org_login: str) -> tuple[list[OrganizationMember], int]:
    """The members among the edges of ``membersWithRole``, and how many were unusable."""
    return _usable_members(edges, _MemberEdge, _MemberEdge.fields, org_login)


_MEMBERS = TypeAdapter(list[OrganizationMember])
_LIST_OF = {_RestMember: TypeAdapter(list[_RestMember]), _MemberEdge: TypeAdapter(list[_MemberEdge])}


def _usable_members(items: list, answer: type[_Answer], fields: Callable[[Any], dict], org_login: str):
    # A whole page in two calls costs a third less than a record at a time; only when some record
    # is unusable are they taken one by one, to skip and count the unusable.
    try:
        return _MEMBERS.validate_python([fields(item) for item in _LIST_OF[answer].validate_python(items)]), 0
    except ValidationError:
        return _one_by_one(items, answer, fields, org_login)


def _one_by_one(items: list, answer: type[_Answer], fields: Callable[[Any], dict], org_login: str):
    members, problems = [], []
    for index, item in enumerate(items):
        try:
            members.append(OrganizationMember.model_validate(fields(answer.model_validate(item))))
        except ValidationError as error:
            problems.append(_validation_detail(error, f"record {index}"))
    if problems:
        logger.warning("Skipped %d unusable member records of %s; %s", len(problems), org_login, problems[0])
    return members, len(problems)


def error_message(body: bytes) -> str:
    """The ``message`` of a REST error answer, or nothing."""
    try:
        return _RestErrorBody.model_validate_json(body).message
    except ValidationError:
        return ""


def _validation_detail(error: ValidationError, what: str) -> str:
    # Only locations and error kinds: the offending values may be anything, tokens included.
    if any(problem["type"] == "json_invalid" for problem in error.errors(include_input=False, include_url=False)):
        return f"{what}: not valid JSON"
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['type']}"
        for problem in error.errors(include_input=False, include_url=False)[:3]
    ]
    return f"{what}: {'; '.join(problems)}"
