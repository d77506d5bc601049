"""The code's layout (docs/architecture.md): a reader finds a module by its name, and each package
says what it owns."""

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("integrations", "teams", "accounts", "ops", "config")
# Django names these in every app; each is found through its app, not by its name.
DJANGO_CONVENTIONS = {"__init__", "admin", "apps", "models", "urls", "views"}


def _product_paths():
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def test_no_two_product_modules_share_a_name():
    names = Counter()
    for path in _product_paths():
        names[path.stem] += 1
        if path.name == "__init__.py" and path.parent.name not in PRODUCT:
            names[path.parent.name] += 1  # a package's name counts too
    shared = {name for name, count in names.items() if count > 1} - DJANGO_CONVENTIONS
    assert not shared


def test_every_package_of_the_integration_says_what_it_owns():
    packages = [path for path in (ROOT / "integrations").glob("*/__init__.py") if path.parent.name != "migrations"]
    assert {path.parent.name for path in packages} >= {"github", "member_sync", "live", "views"}
    undocumented = [
        path.parent.name
        for path in packages
        if path.parent.name not in ("management", "templatetags") and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert not undocumented
