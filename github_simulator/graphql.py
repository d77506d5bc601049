"""POST /graphql: a subset of GitHub's schema, with GitHub's own type, field and argument names, executed
with graphql-core, so that aliases, fragments, variables and validation behave as they do on GitHub.

GitHub checks pagination bounds and token scopes before it executes a query, and answers errors without
data when they fail; the simulator does the same (_static_errors).
"""

import base64
import binascii
import functools
import re
import time
from dataclasses import dataclass, field

from graphql import (
    FieldNode,
    GraphQLError,
    TypeInfo,
    TypeInfoVisitor,
    Undefined,
    Visitor,
    build_schema,
    execute,
    get_named_type,
    get_operation_ast,
    is_leaf_type,
    is_object_type,
    parse,
    validate,
    visit,
)
from graphql.execution.executor import Executor
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path

from github_simulator.faults import (
    GRAPHQL_DOCS,
    ORGANIZATION_FAULTS,
    SSO_MESSAGE,
    access_restricted_message,
    damage_graphql_user,
    drop_missing,
    sso_header,
)
from github_simulator.organizations import VIEWER, Member, avatar_url
from github_simulator.responses import Response, github_error, json_response
from github_simulator.state import State
from github_simulator.tokens import Budget, Token

# Every type, field and argument here is GitHub's (tests/test_github_simulator.py checks each against
# ../shared/github/schema.graphql); the fields are a subset.
SDL = """
scalar DateTime
scalar URI

type Query {
  organization(login: String!): Organization
  rateLimit(dryRun: Boolean = false): RateLimit
  viewer: User!
}

type Organization {
  avatarUrl(size: Int): URI!
  databaseId: Int
  id: ID!
  login: String!
  membersWithRole(after: String, before: String, first: Int, last: Int): OrganizationMemberConnection!
  name: String
  url: URI!
}

type OrganizationMemberConnection {
  edges: [OrganizationMemberEdge]
  nodes: [User]
  pageInfo: PageInfo!
  totalCount: Int!
}

type OrganizationMemberEdge {
  cursor: String!
  hasTwoFactorEnabled: Boolean
  node: User
  role: OrganizationMemberRole
}

enum OrganizationMemberRole {
  ADMIN
  MEMBER
}

type PageInfo {
  endCursor: String
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
}

type RateLimit {
  cost: Int!
  limit: Int!
  nodeCount: Int!
  remaining: Int!
  resetAt: DateTime!
  used: Int!
}

type User {
  avatarUrl(size: Int): URI!
  databaseId: Int
  email: String!
  id: ID!
  login: String!
  name: String
  url: URI!
}
"""
MAX_PAGE = 100
_CURSOR_PREFIX = b"cursor:v2:\x91\xce"


class GitHubGraphQLError(Exception):
    """An error as GitHub reports it: with a "type" beside the message."""

    def __init__(self, error_type: str, message: str, extensions: dict | None = None):
        super().__init__(message)
        self.type = error_type
        self.message = message
        self.extensions = extensions


@dataclass
class Context:
    state: State
    token: Token
    budget: Budget  # already charged for this request
    path: str
    node_count: int = 0
    damaged: bool = False  # null_fields: members come with holes
    headers: list = field(default_factory=list)


def handle(state: State, token: Token, budget: Budget, request) -> Response:
    body = request.json()
    if not isinstance(body, dict):
        return github_error(400, "Problems parsing JSON", GRAPHQL_DOCS)
    query, variables = body.get("query"), body.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        message = "A query attribute must be specified and must be a string, and variables a JSON object."
        return json_response(200, {"errors": [{"message": message}]})
    document, errors = _document(query)
    if errors:
        return json_response(200, {"errors": list(errors)})
    operation_name = body.get("operationName")
    context = Context(state, token, budget, request.path)
    connections = _member_connections(document, variables, operation_name)
    if errors := _static_errors(connections, context):
        return json_response(200, {"errors": errors})
    context.node_count = sum(arguments.get("first") or arguments.get("last") or 0 for _, arguments, _ in connections)
    context.damaged = bool(connections) and state.faults.take(("null_fields",), request.path) is not None
    result = execute(
        _LENIENT if context.damaged else _STRICT,
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        field_resolver=_field,
        is_awaitable=_never_awaitable,
        executor_class=_Executor,
    )
    payload = {} if result.data is None else {"data": result.data}
    if result.errors:
        payload["errors"] = [_execution_error(error) for error in result.errors]
    return json_response(200, drop_missing(payload) if context.damaged else payload, context.headers)


def encode_cursor(index: int) -> str:
    """Opaque to clients; shaped like GitHub's (base64 of "cursor:v2:" and a msgpack'd key)."""
    return base64.b64encode(_CURSOR_PREFIX + index.to_bytes(4, "big")).decode()


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != len(_CURSOR_PREFIX) + 4 or not raw.startswith(_CURSOR_PREFIX):
        raise GitHubGraphQLError("INVALID_CURSOR_ARGUMENTS", f"`{cursor}` does not appear to be a valid cursor.")
    return int.from_bytes(raw[len(_CURSOR_PREFIX) :], "big")


# Resolvers.


def _organization(_root, info, login):
    context = info.context
    org = context.state.orgs.find(login)
    fault = context.state.faults.take(ORGANIZATION_FAULTS, context.path) if org else None
    if org is None or (fault and fault.name == "org_not_found"):
        raise GitHubGraphQLError("NOT_FOUND", f"Could not resolve to an Organization with the login of '{login}'.")
    if fault and fault.name == "sso_required":
        context.headers.append(sso_header(context.state.url, org.login))
        raise GitHubGraphQLError("FORBIDDEN", SSO_MESSAGE, {"saml_failure": True})
    if fault:
        raise GitHubGraphQLError("FORBIDDEN", access_restricted_message(org.login))
    return org


def _members(org, info, after=None, before=None, first=None, last=None):
    context = info.context
    faults = context.state.faults
    limit = faults.find(("resource_limits",), context.path)
    if limit and (first or last) > limit.options["max_first"]:
        faults.consume(limit)
        raise GitHubGraphQLError("RESOURCE_LIMITS_EXCEEDED", "Resource limits for this query exceeded.")
    members, has_next, has_previous = org.page(
        first=first, after=_decode_cursor(after), last=last, before=_decode_cursor(before)
    )
    edges = [_edge(member, context) for member in members]
    return {
        "totalCount": org.size,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
    }


def _edge(member: Member, context: Context) -> dict:
    node = _user(member, context.state.url)
    if context.damaged:
        node = damage_graphql_user(node, member.index)
    return {"cursor": encode_cursor(member.index), "node": node, "role": member.role, "hasTwoFactorEnabled": None}


def _user(member: Member, web_url: str) -> dict:
    return {
        "id": member.node_id,
        "databaseId": member.database_id,
        "login": member.login,
        "name": member.name,
        "email": member.email,
        "avatarUrl": member.avatar_url,
        "url": f"{web_url}/{member.login}",
    }


# Speed: a page of 100 members is some 800 fields, which graphql-core's general-purpose executor takes
# 4 ms of CPU to complete. Every resolver here is synchronous and every source without a resolver a dict,
# so simpler stand-ins do, and _Executor reads plain leaf fields straight from their dicts: under 2 ms.


def _field(source, info, **_arguments):
    return source.get(info.field_name)


def _never_awaitable(_value) -> bool:
    return False


class _Executor(Executor):
    """graphql-core's executor (3.3, pinned), with a short cut for a dict's leaf fields that take no
    arguments; anything else, including a null where the schema forbids one, takes the full path."""

    def execute_fields(self, parent_type, source_value, path, grouped_field_set, position_context):
        if type(source_value) is not dict:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        results = {}
        leaves = _LEAF_FIELDS.get(parent_type.name, {})
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            leaf_type = leaves.get(node.name.value)
            value = source_value.get(node.name.value) if leaf_type and not node.arguments else None
            if value is not None and (value := leaf_type.coerce_output_value(value)) is not None:
                results[response_name] = value
                continue
            field_path = Path(path, response_name, parent_type.name)
            result = self.execute_field(parent_type, source_value, field_details_list, field_path, position_context)
            if result is not Undefined:
                results[response_name] = result
        return results


def _sized(avatar_url: str | None, size: int | None) -> str | None:
    return f"{avatar_url}&s={size}" if size and avatar_url else avatar_url


def _rate_limit(_root, info, **_arguments):
    context = info.context
    budget = context.budget
    return {
        "cost": 1,
        "limit": budget.limit,
        "nodeCount": context.node_count,
        "remaining": budget.remaining,
        "resetAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(budget.reset_at)),
        "used": budget.used,
    }


_ORGANIZATION_RESOLVERS = {
    "avatarUrl": lambda org, _info, size=None: _sized(avatar_url(org.id), size),
    "databaseId": lambda org, _info: org.id,
    "id": lambda org, _info: org.node_id,
    "login": lambda org, _info: org.login,
    "membersWithRole": _members,
    "name": lambda org, _info: org.name,
    "url": lambda org, info: f"{info.context.state.url}/{org.login}",
}


def _build(sdl: str):
    schema = build_schema(sdl)
    query = schema.query_type.fields
    query["organization"].resolve = _organization
    query["rateLimit"].resolve = _rate_limit
    query["viewer"].resolve = lambda _root, info: _user(VIEWER, info.context.state.url)
    for name, resolve in _ORGANIZATION_RESOLVERS.items():
        schema.type_map["Organization"].fields[name].resolve = resolve
    schema.type_map["User"].fields["avatarUrl"].resolve = lambda user, _info, size=None: _sized(user["avatarUrl"], size)
    return schema


def _nullable_user_fields(sdl: str) -> str:
    # null_fields sends members GitHub's schema forbids (a null login): a schema that lets them through.
    start = sdl.index("type User {")
    end = sdl.index("}", start)
    return sdl[:start] + sdl[start:end].replace("!", "") + sdl[end:]


_STRICT = _build(SDL)
_LENIENT = _build(_nullable_user_fields(SDL))
# For each object type, its fields of scalar or enum type: the ones _Executor may read directly.
_LEAF_FIELDS = {
    name: {
        field_name: get_named_type(definition.type)
        for field_name, definition in type_.fields.items()
        if is_leaf_type(get_named_type(definition.type))
    }
    for name, type_ in _STRICT.type_map.items()
    if is_object_type(type_) and not name.startswith("__")
}


# Checks before execution.


@functools.lru_cache(maxsize=256)
def _document(query: str):
    """The parsed document and no errors, or None and GitHub-style validation errors; cached because a
    client sends the same few documents over and over."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, (_validation_error(error),)
    errors = validate(_STRICT, document)
    return (None, tuple(_validation_error(error) for error in errors)) if errors else (document, ())


def _member_connections(document, variables: dict, operation_name: str | None) -> list[tuple]:
    """Every membersWithRole field with its arguments and response path."""
    operation = get_operation_ast(document, operation_name)
    coerced = get_variable_values(_STRICT, operation.variable_definitions or (), variables) if operation else []
    if isinstance(coerced, list):
        return []  # execution reports the operation or variable problem
    type_info = TypeInfo(_STRICT)
    finder = _ConnectionFinder(type_info, coerced)
    visit(document, TypeInfoVisitor(type_info, finder))
    return finder.found


class _ConnectionFinder(Visitor):
    def __init__(self, type_info: TypeInfo, variables):
        super().__init__()
        self.type_info = type_info
        self.variables = variables
        self.found: list[tuple] = []

    def enter_field(self, node, _key, _parent, _path, ancestors):
        parent_type = self.type_info.get_parent_type()
        if node.name.value != "membersWithRole" or parent_type is None or parent_type.name != "Organization":
            return
        try:
            arguments = get_argument_values(self.type_info.get_field_def(), node, self.variables)
        except GraphQLError:
            return  # execution reports it
        fields = [*(ancestor for ancestor in ancestors if isinstance(ancestor, FieldNode)), node]
        self.found.append((node, arguments, [(item.alias or item.name).value for item in fields]))


def _static_errors(connections, context: Context) -> list[dict]:
    errors = []
    for node, arguments, path in connections:
        location = {"line": node.loc.start_token.line, "column": node.loc.start_token.column}
        if not context.token.grants("read:org"):
            errors.append({"type": "INSUFFICIENT_SCOPES", "locations": [location], "message": _scopes_message(context)})
            continue
        first, last = arguments.get("first"), arguments.get("last")
        if first is None and last is None:
            message = (
                "You must provide a `first` or `last` value to properly paginate the `membersWithRole` connection."
            )
            errors.append(
                {"type": "MISSING_PAGINATION_BOUNDARIES", "path": path, "locations": [location], "message": message}
            )
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 1 <= value <= MAX_PAGE:
                message = (
                    f"Requesting {value} records on the `membersWithRole` connection exceeds the `{name}` limit "
                    f"of {MAX_PAGE} records."
                )
                errors.append(
                    {"type": "EXCESSIVE_PAGINATION", "path": path, "locations": [location], "message": message}
                )
    return errors


def _scopes_message(context: Context) -> str:
    granted = "[" + ", ".join(f"'{scope}'" for scope in context.token.scopes) + "]"
    return (
        "Your token has not been granted the required scopes to execute this query. The 'membersWithRole' field "
        f"requires one of the following scopes: ['read:org'], but your token has only been granted the: {granted} "
        f"scopes. Please modify your token's scopes at: {context.state.url}/settings/tokens."
    )


# Errors as GitHub (graphql-ruby) words them.

_UNDEFINED_FIELD = re.compile(r"^Cannot query field '(\w+)' on type '(\w+)'\.")
_MISSING_ARGUMENT = re.compile(r"^Argument '\w+\.(\w+)\((\w+):\)' of type '.+' is required, but it was not provided\.$")


def _validation_error(error: GraphQLError) -> dict:
    formatted = {}
    message = error.message
    if match := _UNDEFINED_FIELD.match(message):
        field_name, type_name = match.groups()
        formatted["extensions"] = {"code": "undefinedField", "typeName": type_name, "fieldName": field_name}
        message = f"Field '{field_name}' doesn't exist on type '{type_name}'"
    elif match := _MISSING_ARGUMENT.match(message):
        field_name, argument = match.groups()
        formatted["extensions"] = {
            "code": "missingRequiredArguments",
            "className": "Field",
            "name": field_name,
            "arguments": argument,
        }
        message = f"Field '{field_name}' is missing required arguments: {argument}"
    if error.locations:
        formatted["locations"] = [{"line": location.line, "column": location.column} for location in error.locations]
    formatted["message"] = message
    return formatted


def _execution_error(error: GraphQLError) -> dict:
    located = {"path": error.path} if error.path else {}
    if error.locations:
        located["locations"] = [{"line": location.line, "column": location.column} for location in error.locations]
    original = error.original_error
    if isinstance(original, GitHubGraphQLError):
        formatted = {"type": original.type, **located, "message": original.message}
        if original.extensions:
            formatted["extensions"] = original.extensions
        return formatted
    return {**located, "message": error.message}
