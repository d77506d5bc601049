"""Refresh tests/vendor/github/: the parts of GitHub's published API descriptions that the product and
the GitHub simulator use, taken from the npm packages that publish them.

    .venv/bin/python scripts/refresh_github_descriptions.py [--graphql-schema VERSION] [--openapi VERSION]
        [--openapi-webhooks VERSION]

Without options it takes the versions pinned in PACKAGES. It needs npm (to fetch the packages) and the
project's virtualenv (graphql-core); the same versions always give the same files, byte for byte.
"""

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from graphql import (
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    NamedTypeNode,
    ObjectTypeDefinitionNode,
    OperationDefinitionNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    Visitor,
    build_ast_schema,
    lexicographic_sort_schema,
    parse,
    print_schema,
    specified_directives,
    specified_scalar_types,
    validate,
    validate_schema,
    visit,
)

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "tests" / "vendor" / "github"

PACKAGES = {
    "@octokit/graphql-schema": "15.26.1",
    "@octokit/openapi": "23.0.2",
    "@octokit/openapi-webhooks": "12.1.0",
}

# Every GraphQL document the product sends (module, name); the simulator's schema is read whole.
GRAPHQL_DOCUMENTS = (
    ("integrations.github.client", "MEMBERS_QUERY"),
    ("integrations.github.client", "MEMBERS_QUERY_WITHOUT_VERIFIED_EMAILS"),
    ("integrations.github.client", "TEAMS_QUERY"),
    ("integrations.github.client", "TEAM_MEMBERS_QUERY"),
)
SIMULATOR_SDL = ("github_simulator.graphql", "SDL")

# The REST operations the product calls (integrations/github/) and the simulator serves
# (github_simulator/rest.py, app_api.py). GitHub describes no /organizations/{id}, the route by id its
# own Link headers use; the simulator answers it as /orgs/{org}.
REST_OPERATIONS = {
    "/app": ("get",),
    "/app/hook/deliveries": ("get",),
    "/app/hook/deliveries/{delivery_id}": ("get",),
    "/app/hook/deliveries/{delivery_id}/attempts": ("post",),
    "/app/installations": ("get",),
    "/app/installations/{installation_id}": ("get",),
    "/app/installations/{installation_id}/access_tokens": ("post",),
    "/applications/{client_id}/token": ("delete",),
    "/installation/token": ("delete",),
    "/orgs/{org}": ("get",),
    "/orgs/{org}/members": ("get",),
    "/orgs/{org}/members/{username}": ("get",),
    "/orgs/{org}/memberships/{username}": ("get",),
    "/orgs/{org}/public_members": ("get",),
    "/orgs/{org}/public_members/{username}": ("get",),
    "/orgs/{org}/teams": ("get",),
    "/orgs/{org}/teams/{team_slug}": ("get",),
    "/orgs/{org}/teams/{team_slug}/members": ("get",),
    "/orgs/{org}/teams/{team_slug}/memberships/{username}": ("get",),
    "/orgs/{org}/teams/{team_slug}/teams": ("get",),
    "/rate_limit": ("get",),
    "/user": ("get",),
    "/user/installations": ("get",),
    "/user/{account_id}": ("get",),
    "/user/memberships/orgs/{org}": ("get",),
    "/user/orgs": ("get",),
    "/users/{username}": ("get",),
}
# The webhook events (X-GitHub-Event) the product receives or the simulator sends, every action of each.
WEBHOOK_EVENTS = ("installation", "membership", "organization", "team")
# Top-level keys kept beside the paths or webhooks; "tags" lists every tag of the whole API.
DESCRIPTION_KEYS = ("openapi", "info", "servers", "externalDocs")

README_START = "<!-- versions: written by scripts/refresh_github_descriptions.py -->"
README_END = "<!-- /versions -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for package, version in PACKAGES.items():
        parser.add_argument(f"--{package.split('/')[1]}", default=version, metavar="VERSION", help=f"default {version}")
    arguments = parser.parse_args()
    versions = {package: getattr(arguments, package.split("/")[1].replace("-", "_")) for package in PACKAGES}

    rows = []
    with contextlib.ExitStack() as stack:
        temporary = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="github-descriptions-")))
        packs = {
            package: stack.enter_context(npm_pack(package, version, temporary)) for package, version in versions.items()
        }

        graphql_pack = packs["@octokit/graphql-schema"]
        schema = prune_graphql(graphql_pack.read("schema.graphql").decode(), *project_graphql())
        header = (
            "# GitHub's public GraphQL schema, pruned to the types and fields the product and the GitHub simulator\n"
            f"# use: from {graphql_pack.spec}, schema.graphql. Written by scripts/refresh_github_descriptions.py.\n\n"
        )
        write("schema.graphql", header + schema)
        rows.append(("schema.graphql", graphql_pack, "schema.graphql"))

        openapi = packs["@octokit/openapi"]
        for plan, name in (
            ("api.github.com", "api.github.com.deref.json"),
            ("ghes", newest_ghes(openapi, ".deref.json")),
        ):
            description = json.loads(openapi.read(f"generated/{name}"))
            write(f"rest.{plan}.json", dump(prune_rest(description, name, required=plan == "api.github.com")))
            rows.append((f"rest.{plan}.json", openapi, f"generated/{name}"))

        webhooks = packs["@octokit/openapi-webhooks"]
        for plan, name in (("api.github.com", "api.github.com.json"), ("ghes", newest_ghes(webhooks, ".json"))):
            description = json.loads(webhooks.read(f"generated/{name}"))
            write(f"webhooks.{plan}.json", dump(prune_webhooks(description, name)))
            rows.append((f"webhooks.{plan}.json", webhooks, f"generated/{name}"))

        for package, pack in packs.items():
            license_name = next(name for name in pack.names if re.fullmatch(r"LICEN[CS]E(\.\w+)?", name, re.I))
            vendored = f"LICENSE.{package.removeprefix('@').replace('/', '-')}{Path(license_name).suffix}"
            write(vendored, pack.read(license_name).decode())
            rows.append((vendored, pack, license_name))

    update_readme(rows)


class Pack:
    """An npm package's tarball, fetched by `npm pack`: its files are read from the tarball itself."""

    def __init__(self, package: str, version: str, tarball: Path, integrity: str):
        self.package, self.version, self.integrity = package, version, integrity
        self.spec = f"{package}@{version}"
        self._tar = tarfile.open(tarball)
        self.names = [member.name.removeprefix("package/") for member in self._tar.getmembers() if member.isfile()]

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self._tar.close()

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise SystemExit(f"{self.spec} has no file {name}")
        return self._tar.extractfile(f"package/{name}").read()


def npm_pack(package: str, version: str, destination: Path) -> Pack:
    print(f"npm pack {package}@{version}", flush=True)
    answer = subprocess.run(
        ["npm", "pack", f"{package}@{version}", "--json", "--ignore-scripts", "--pack-destination", str(destination)],
        capture_output=True,
        text=True,
    )
    if answer.returncode:
        raise SystemExit(f"npm pack {package}@{version} failed:\n{answer.stderr}")
    (packed,) = json.loads(answer.stdout)
    if packed["version"] != version:
        raise SystemExit(f"npm packed {package}@{packed['version']}, not {version}")
    return Pack(package, version, destination / packed["filename"], packed["integrity"])


def newest_ghes(pack: Pack, suffix: str) -> str:
    """The file name of the newest Enterprise Server release described in the package."""
    releases = []
    for name in pack.names:
        if match := re.fullmatch(rf"generated/ghes-(\d+)\.(\d+){re.escape(suffix)}", name):
            releases.append(((int(match[1]), int(match[2])), name.removeprefix("generated/")))
    if not releases:
        raise SystemExit(f"{pack.spec} describes no Enterprise Server release")
    return max(releases)[1]


def project_graphql() -> tuple[list[str], str]:
    """The product's GraphQL documents and the simulator's SDL, imported from this checkout."""
    sys.path.insert(0, str(ROOT))
    # The product's modules read Django's settings on import: the development ones, which need no secrets.
    for name, value in (("DJANGO_SETTINGS_MODULE", "config.settings"), ("DEBUG", "1"), ("SECRET_KEY", "refresh")):
        os.environ.setdefault(name, value)
    documents = [getattr(importlib.import_module(module), name) for module, name in GRAPHQL_DOCUMENTS]
    module, name = SIMULATOR_SDL
    return documents, getattr(importlib.import_module(module), name)


# GraphQL.

BUILT_IN = set(specified_scalar_types) | {directive.name for directive in specified_directives}


class GraphQLPruner:
    """The upstream schema's definitions, and the part of them kept: for an object or interface type
    the names of the fields kept; any other type is kept whole (None)."""

    def __init__(self, upstream: DocumentNode):
        self.definitions = {
            node.name.value: node for node in upstream.definitions if isinstance(node, TypeDefinitionNode)
        }
        self.directives = {
            node.name.value: node for node in upstream.definitions if isinstance(node, DirectiveDefinitionNode)
        }
        self.order = [node.name.value for node in upstream.definitions if isinstance(node, TypeDefinitionNode)]
        self.kept: dict[str, set[str] | None] = {}

    def type(self, name: str) -> TypeDefinitionNode | None:
        if name in specified_scalar_types:
            return None
        if name not in self.definitions:
            raise SystemExit(f"{name} is not in GitHub's GraphQL schema")
        return self.definitions[name]

    def field(self, type_name: str, field_name: str):
        node = self.type(type_name)
        matches = [field for field in getattr(node, "fields", None) or () if field.name.value == field_name]
        if not matches:
            raise SystemExit(f"{type_name}.{field_name} is not in GitHub's GraphQL schema")
        if len(matches) > 1:
            raise SystemExit(f"{type_name}.{field_name} is defined {len(matches)} times in GitHub's GraphQL schema")
        return matches[0]

    def keep_type(self, name: str) -> None:
        node = self.type(name)
        if node is None or name in self.kept:
            return
        if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            self.kept[name] = set()
            return
        self.kept[name] = None
        if isinstance(node, InputObjectTypeDefinitionNode):
            for field in node.fields or ():
                self.keep_type(named_type(field.type))
        elif isinstance(node, UnionTypeDefinitionNode):
            for member in node.types or ():
                self.keep_type(member.name.value)

    def keep_field(self, type_name: str, field_name: str) -> None:
        """Keep the field, its type and every argument's type (a field is kept with all its arguments)."""
        field = self.field(type_name, field_name)
        self.keep_type(type_name)
        if field_name in self.kept[type_name]:
            return
        self.kept[type_name].add(field_name)
        self.keep_type(named_type(field.type))
        for argument in field.arguments or ():
            self.keep_type(named_type(argument.type))

    def keep_sdl(self, sdl: str) -> None:
        for node in parse(sdl).definitions:
            if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
                for field in node.fields or ():
                    self.keep_field(node.name.value, field.name.value)
            elif isinstance(node, TypeDefinitionNode):
                self.keep_type(node.name.value)

    def keep_document(self, text: str) -> None:
        document = parse(text)
        fragments = {node.name.value: node for node in document.definitions if isinstance(node, FragmentDefinitionNode)}
        roots = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}

        def walk(type_name: str, selection_set) -> None:
            for selection in selection_set.selections if selection_set else ():
                if isinstance(selection, FieldNode):
                    if selection.name.value.startswith("__"):
                        continue
                    self.keep_field(type_name, selection.name.value)
                    walk(named_type(self.field(type_name, selection.name.value).type), selection.selection_set)
                elif isinstance(selection, InlineFragmentNode):
                    inner = selection.type_condition.name.value if selection.type_condition else type_name
                    self.keep_type(inner)
                    walk(inner, selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = fragments[selection.name.value]
                    self.keep_type(fragment.type_condition.name.value)
                    walk(fragment.type_condition.name.value, fragment.selection_set)

        for node in document.definitions:
            if isinstance(node, OperationDefinitionNode):
                for variable in node.variable_definitions or ():
                    self.keep_type(named_type(variable.type))
                self.keep_type(roots[node.operation.value])
                walk(roots[node.operation.value], node.selection_set)

    def close_interfaces(self) -> None:
        """A kept object type implements a kept interface with every field the interface keeps."""
        changed = True
        while changed:
            changed = False
            for name, fields in list(self.kept.items()):
                node = self.definitions[name]
                if not isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
                    continue
                for interface in node.interfaces or ():
                    for field_name in self.kept.get(interface.name.value) or ():
                        if field_name not in fields:
                            self.keep_field(name, field_name)
                            changed = True

    def document(self) -> DocumentNode:
        definitions = []
        for name in self.order:
            if name not in self.kept:
                continue
            node = self.definitions[name]
            if self.kept[name] is not None:
                if not self.kept[name]:
                    raise SystemExit(f"{name} is reached but none of its fields is used: name the fields to keep")
                node = dataclasses.replace(
                    node,
                    fields=tuple(field for field in node.fields if field.name.value in self.kept[name]),
                    interfaces=tuple(
                        interface for interface in node.interfaces or () if interface.name.value in self.kept
                    ),
                )
            definitions.append(node)
        used = set()

        class Directives(Visitor):
            def enter_directive(self, node: DirectiveNode, *_):
                used.add(node.name.value)

        pruned = DocumentNode(definitions=tuple(definitions))
        visit(pruned, Directives())
        extra = [self.directives[name] for name in sorted(used - BUILT_IN) if name in self.directives]
        return DocumentNode(definitions=tuple(extra + definitions))


def named_type(type_node) -> str:
    while not isinstance(type_node, NamedTypeNode):
        type_node = type_node.type
    return type_node.name.value


def prune_graphql(upstream: str, documents: list[str], simulator_sdl: str) -> str:
    """GitHub's schema cut down to what the documents and the simulator's SDL use, as printed SDL."""
    pruner = GraphQLPruner(parse(upstream))
    pruner.keep_sdl(simulator_sdl)
    for document in documents:
        pruner.keep_document(document)
    pruner.close_interfaces()
    schema = build_ast_schema(pruner.document())
    if problems := validate_schema(schema):
        raise SystemExit("The pruned GraphQL schema is invalid:\n" + "\n".join(str(error) for error in problems))
    for document in documents:
        if problems := validate(schema, parse(document)):
            raise SystemExit("A document fails against the pruned schema:\n" + "\n".join(map(str, problems)))
    return print_schema(lexicographic_sort_schema(schema)) + "\n"


# OpenAPI.


def prune_rest(description: dict, name: str, *, required: bool) -> dict:
    """The description with only REST_OPERATIONS; an Enterprise Server release may lack some."""
    paths = {}
    for path, methods in REST_OPERATIONS.items():
        described = description["paths"].get(path, {})
        if missing := [method for method in methods if method not in described]:
            if required:
                raise SystemExit(f"{name} has no {' '.join(missing)} {path}")
            print(f"  {name} has no {' '.join(missing)} {path}: left out")
        if operations := {method: described[method] for method in methods if method in described}:
            paths[path] = operations
    return {**{key: description[key] for key in DESCRIPTION_KEYS if key in description}, "paths": paths}


def prune_webhooks(description: dict, name: str) -> dict:
    """The description with only the webhooks of WEBHOOK_EVENTS, and the components they refer to."""
    webhooks = {
        key: webhook
        for key, webhook in description["webhooks"].items()
        if webhook["post"]["x-github"]["subcategory"] in WEBHOOK_EVENTS
    }
    found = {webhook["post"]["x-github"]["subcategory"] for webhook in webhooks.values()}
    if missing := set(WEBHOOK_EVENTS) - found:
        raise SystemExit(f"{name} describes no {', '.join(sorted(missing))} event")
    references: set[tuple[str, str]] = set()

    def collect(value) -> None:
        if isinstance(value, dict):
            if isinstance(reference := value.get("$ref"), str):
                if not re.fullmatch(r"#/components/[^/]+/[^/]+", reference):
                    raise SystemExit(f"{name}: a $ref this script cannot follow: {reference}")
                kind, component = reference.removeprefix("#/components/").split("/")
                if (kind, component) not in references:
                    references.add((kind, component))
                    collect(description["components"][kind][component])
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(webhooks)
    components = {
        kind: {component: value for component, value in entries.items() if (kind, component) in references}
        for kind, entries in description["components"].items()
    }
    return {
        **{key: description[key] for key in DESCRIPTION_KEYS if key in description},
        "webhooks": webhooks,
        "components": {kind: entries for kind, entries in components.items() if entries},
    }


# Output.


def dump(description: dict) -> str:
    return json.dumps(description, indent=1, ensure_ascii=False) + "\n"


def write(name: str, text: str) -> None:
    VENDOR.mkdir(parents=True, exist_ok=True)
    (VENDOR / name).write_text(text, encoding="utf-8", newline="\n")
    print(f"  {VENDOR.relative_to(ROOT) / name}: {len(text.encode()):,} bytes")


def update_readme(rows) -> None:
    readme = VENDOR / "README.md"
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise SystemExit(f"{readme} lacks the markers {README_START} and {README_END}")
    lines = ["| File | npm package | File in the package |", "| --- | --- | --- |"]
    lines += [f"| `{file}` | `{pack.spec}` | `{source}` |" for file, pack, source in rows]
    lines += ["", "| npm package | Tarball's integrity (as `npm pack` reports it) |", "| --- | --- |"]
    lines += [f"| `{pack.spec}` | `{pack.integrity}` |" for pack in dict.fromkeys(pack for _, pack, _ in rows)]
    before, rest = text.split(README_START, 1)
    after = rest.split(README_END, 1)[1]
    table = "\n".join(lines)
    readme.write_text(f"{before}{README_START}\n{table}\n{README_END}{after}", encoding="utf-8", newline="\n")
    print(f"  {readme.relative_to(ROOT)}: versions table")


if __name__ == "__main__":
    main()
