"""The members of an integration, or the changes its runs made to them, as CSV
(`github_members_export`), streamed row by row from one query read in chunks: a 100,000-member
organization in flat memory.

Every value comes from GitHub, and an access review opens the file in a spreadsheet: a cell that it
would run as a formula is written as text (OWASP, "CSV Injection").
"""

import csv
from collections.abc import Iterator
from datetime import datetime

from integrations.models import GitHubIntegration, GitHubMember, MemberChange

MEMBER_COLUMNS = ("github_id", "login", "name", "email", "role", "is_active", "left_at")
CHANGE_COLUMNS = ("at", "run", "kind", "github_id", "login", "before", "after")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ROWS_A_READ = 2000


class _Echo:
    """A file for csv.writer that hands each line back instead of keeping it (Django's streaming CSV recipe)."""

    def write(self, line: str) -> str:
        return line


def member_lines(integration: GitHubIntegration) -> Iterator[str]:
    """The header, then one line per member of the integration, active or not, by GitHub id."""
    writer = csv.writer(_Echo())
    yield writer.writerow(MEMBER_COLUMNS)
    members = GitHubMember.objects.filter(integration=integration).order_by("github_id")
    for row in members.values_list(*MEMBER_COLUMNS).iterator(chunk_size=_ROWS_A_READ):
        yield writer.writerow([_cell(value) for value in row])


def change_lines(integration: GitHubIntegration) -> Iterator[str]:
    """The header, then one line per change the integration's runs made, oldest first."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CHANGE_COLUMNS)
    changes = MemberChange.objects.filter(integration=integration).order_by("at", "pk")
    fields = ("at", "run_id", "kind", "github_id", "login", "before", "after")
    for row in changes.values_list(*fields).iterator(chunk_size=_ROWS_A_READ):
        yield writer.writerow([_cell(value) for value in row])


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
