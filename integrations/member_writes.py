"""Bulk writes of organization members in a fixed number of SQL statements, whatever their count.

Django's bulk_create and bulk_update split their work into batches on SQLite (999 parameters a
statement), so the statement count would grow with the organization. Here the rows travel as one
JSON parameter and the database unpacks them (json_each on SQLite, jsonb_to_recordset on
PostgreSQL): one INSERT for the new members, one UPDATE for the changed ones.
"""

import json

from django.db import connection

from integrations.models import GitHubMember

PROFILE_FIELDS = ("node_id", "login", "name", "email", "avatar_url", "role")

_POSTGRES_TYPES = {"id": "bigint", "github_id": "bigint", "is_active": "boolean"}


def _table():
    return connection.ops.quote_name(GitHubMember._meta.db_table)


def _rows(fields, sql_vendor):
    """The FROM clause that turns the JSON parameter into rows with the given fields, and a function
    that names one field of such a row."""
    if sql_vendor == "postgresql":
        columns = ", ".join(f"{field} {_POSTGRES_TYPES.get(field, 'text')}" for field in fields)
        return f"jsonb_to_recordset(%s::jsonb) AS x({columns})", lambda field: f"x.{field}"
    return "json_each(%s) AS x", lambda field: f"json_extract(x.value, '$.{field}')"


def insert_members(*, integration_id, members, now):
    """Create members, given as dicts with github_id and the profile fields."""
    if not members:
        return
    fields = ("github_id", *PROFILE_FIELDS)
    source, column = _rows(fields, connection.vendor)
    timestamp = connection.ops.adapt_datetimefield_value(now)
    # Only names from this module go into the text; every value is a parameter.
    sql = (
        f"INSERT INTO {_table()} (integration_id, {', '.join(fields)}, is_active, first_seen_at, left_at, updated_at) "
        f"SELECT %s, {', '.join(column(field) for field in fields)}, %s, %s, NULL, %s FROM {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [integration_id, True, timestamp, timestamp, json.dumps(members)])


def update_members(*, members, now):
    """Rewrite members, given as dicts with id, is_active and the profile fields. A member who turns
    inactive keeps the time they were first seen gone; one who comes back loses it."""
    if not members:
        return
    fields = ("id", "is_active", *PROFILE_FIELDS)
    source, column = _rows(fields, connection.vendor)
    timestamp = connection.ops.adapt_datetimefield_value(now)
    assignments = ", ".join(f"{field} = {column(field)}" for field in ("is_active", *PROFILE_FIELDS))
    sql = (
        f"UPDATE {_table()} AS m SET {assignments}, "
        f"left_at = CASE WHEN {column('is_active')} THEN NULL ELSE COALESCE(m.left_at, %s) END, updated_at = %s "
        f"FROM {source} WHERE m.id = {column('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timestamp, timestamp, json.dumps(members)])
