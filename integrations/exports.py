"""The members of an integration, or the changes its runs made to them, as CSV
(`github_members_export`), streamed row by row from one query read in chunks: a 100,000-member
organization in flat memory. Or as JSON for scripts (`?format=json`), a page at a time, keyset-paged
in the CSV's order: one query a page, however deep, the next page's cursor opaque.

Every value comes from GitHub, and an access review opens the file in a spreadsheet: a cell that it
would run as a formula is written as text (OWASP, "CSV Injection"). JSON is not run: its values are
as stored.
"""

import base64
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from integrations.models import GitHubIntegration, GitHubMember, MemberChange

MEMBER_COLUMNS = ("github_id", "login", "name", "email", "role", "is_active", "left_at")
CHANGE_COLUMNS = ("at", "run", "kind", "github_id", "login", "before", "after")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ROWS_A_READ = 2000
_CHARACTERS_A_PIECE = 64 * 1024


class _Echo:
    """A file for csv.writer that hands each line back instead of keeping it (Django's streaming CSV recipe)."""

    def write(self, line: str) -> str:
        return line


def member_lines(integration: GitHubIntegration) -> Iterator[str]:
    """The header, then one line per member of the integration, active or not, by GitHub id; a
    piece of about 64 KB of lines at a time."""
    members = GitHubMember.objects.filter(integration=integration).order_by("github_id")
    return _pieces(_lines(MEMBER_COLUMNS, members.values_list(*MEMBER_COLUMNS)))


def change_lines(integration: GitHubIntegration) -> Iterator[str]:
    """The header, then one line per change the integration's runs made, oldest first; a piece of
    about 64 KB of lines at a time."""
    changes = MemberChange.objects.filter(integration=integration).order_by("at", "pk")
    fields = ("at", "run_id", "kind", "github_id", "login", "before", "after")
    return _pieces(_lines(CHANGE_COLUMNS, changes.values_list(*fields)))


def _lines(header, rows) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows.iterator(chunk_size=_ROWS_A_READ):
        yield writer.writerow([_cell(value) for value in row])


def _pieces(lines: Iterator[str]) -> Iterator[str]:
    """The lines joined into pieces of about _CHARACTERS_A_PIECE. The server hands each piece of a
    streaming response from Django's thread to the event loop and waits (config/threaded_wsgi.py):
    a line a piece, 100,000 members took 12 s to send (bench.exports)."""
    piece: list[str] = []
    length = 0
    for line in lines:
        piece.append(line)
        length += len(line)
        if length >= _CHARACTERS_A_PIECE:
            yield "".join(piece)
            piece, length = [], 0
    if piece:
        yield "".join(piece)


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


# The JSON export's page sizes: the default, and the most a page may ask for (a page is built in memory).
PER_PAGE = 1000
MAX_PER_PAGE = 5000


class BadExportRequest(ValueError):
    """A parameter the export cannot answer (the view answers 400 with this message)."""


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    after: str | None  # the cursor of the next page; None on the last


def member_page(integration: GitHubIntegration, *, after: str | None, per_page: int) -> Page:
    """Up to per_page members after the cursor, by GitHub id, as JSON values. One query."""
    members = GitHubMember.objects.filter(integration=integration)
    if after is not None:
        (github_id,) = _read_cursor(after, "members", int)
        members = members.filter(github_id__gt=github_id)
    rows = list(members.order_by("github_id").values_list(*MEMBER_COLUMNS)[: per_page + 1])
    shown = [dict(zip(MEMBER_COLUMNS, map(_json_value, row), strict=True)) for row in rows[:per_page]]
    more = len(rows) > per_page
    return Page(shown, _cursor("members", shown[-1]["github_id"]) if more else None)


def change_page(integration: GitHubIntegration, *, after: str | None, per_page: int) -> Page:
    """Up to per_page changes after the cursor, oldest first (by time, then id), as JSON values:
    before and after null when empty (an addition has no before), a profile's as an object. One query."""
    changes = MemberChange.objects.filter(integration=integration)
    if after is not None:
        when, pk = _read_cursor(after, "changes", str, int)
        try:
            at = datetime.fromisoformat(when)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise BadExportRequest("after is not a cursor of this export: follow the next link of a page.")
        # (at, id) > (the cursor's), with at >= its time on its own: a bound an index on at can seek to.
        changes = changes.filter(Q(at__gt=at) | Q(pk__gt=pk), at__gte=at)
    fields = ("pk", "at", "run_id", "kind", "github_id", "login", "before", "after")
    rows = list(changes.order_by("at", "pk").values_list(*fields)[: per_page + 1])
    shown = [_change(row) for row in rows[:per_page]]
    more = len(rows) > per_page
    return Page([change for _, change in shown], _cursor("changes", *shown[-1][0]) if more else None)


def _change(row) -> tuple[tuple[str, int], dict]:
    pk, at, run_id, kind, github_id, login, before, after = row
    sides = [_side(kind, side) for side in (before, after)]
    change = dict(zip(CHANGE_COLUMNS, (at.isoformat(), run_id, kind, github_id, login, *sides), strict=True))
    return (at.isoformat(), pk), change


def _side(kind: str, value: str) -> object:
    if not value:
        return None
    return json.loads(value) if kind == MemberChange.Kind.PROFILE_CHANGED else value


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def _cursor(kind: str, *values: object) -> str:
    """An opaque cursor: the export it pages and the sort key of the last row shown, in base64url."""
    return base64.urlsafe_b64encode(json.dumps([kind, *values]).encode()).decode().rstrip("=")


def _read_cursor(cursor: str, kind: str, *types: type) -> list:
    """The values of a cursor of this kind of export, each of its JSON type; else BadExportRequest."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        decoded = None
    valid = (
        isinstance(decoded, list)
        and len(decoded) == len(types) + 1
        and decoded[0] == kind
        # bool is an int to isinstance, not to a cursor.
        and all(type(value) is expected for value, expected in zip(decoded[1:], types, strict=True))
    )
    if not valid:
        raise BadExportRequest("after is not a cursor of this export: follow the next link of a page.")
    return decoded[1:]
