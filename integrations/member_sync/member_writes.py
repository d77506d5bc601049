"""Bulk writes of organization members in a fixed number of SQL statements, whatever their count.

Django's bulk_create and bulk_update split their work into batches on SQLite (999 parameters a
statement), so the statement count would grow with the organization. Here the rows travel as one
JSON parameter and the database unpacks them (json_each on SQLite, jsonb_to_recordset on
PostgreSQL): one INSERT a page into the stage of a run. Applying a run's stage to the members is
set-based, table to table: one INSERT for the new members, one UPDATE for the changed ones, one for
those who left, whatever their number. Each leaves alone the members a webhook changed after the
run began reading: the stage is older than they are.
"""

import json

from django.db import connection

from integrations.models import GitHubMember, MemberChange, StagedMember

PROFILE_FIELDS = ("node_id", "login", "name", "email", "avatar_url", "role")

_POSTGRES_TYPES = {"id": "bigint", "github_id": "bigint", "is_active": "boolean"}


def _table(model=GitHubMember):
    return connection.ops.quote_name(model._meta.db_table)


def _rows(fields, sql_vendor):
    """The FROM clause that turns the JSON parameter into rows with the given fields, and a function
    that names one field of such a row."""
    if sql_vendor == "postgresql":
        columns = ", ".join(f"{field} {_POSTGRES_TYPES.get(field, 'text')}" for field in fields)
        return f"jsonb_to_recordset(%s::jsonb) AS x({columns})", lambda field: f"x.{field}"
    return "json_each(%s) AS x", lambda field: f"json_extract(x.value, '$.{field}')"


def stage_members(*, run_id, members):
    """Add one page of members to the run's stage, given as dicts with github_id and the profile
    fields (name and email None when GitHub did not say). A member already staged by the run is
    replaced: the later answer wins. One statement."""
    if not members:
        return
    fields = ("github_id", *PROFILE_FIELDS)
    source, column = _rows(fields, connection.vendor)
    replaced = ", ".join(f"{field} = excluded.{field}" for field in PROFILE_FIELDS)
    # "WHERE true": without it SQLite would read ON CONFLICT as the ON of a join.
    sql = (
        f"INSERT INTO {_table(StagedMember)} (run_id, {', '.join(fields)}) "
        f"SELECT %s, {', '.join(column(field) for field in fields)} FROM {source} WHERE true "
        f"ON CONFLICT (run_id, github_id) DO UPDATE SET {replaced}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_id, json.dumps(members)])


# A staged member differs from the stored one. A NULL name or email in the stage means GitHub did
# not say, which changes nothing; an empty one does mean empty.
_DIFFERS = (
    "(NOT m.is_active OR m.node_id <> s.node_id OR m.login <> s.login OR m.name <> COALESCE(s.name, m.name) "
    "OR m.email <> COALESCE(s.email, m.email) OR m.avatar_url <> s.avatar_url OR m.role <> s.role)"
)


# A stored member the stage may rewrite: no webhook changed it after the run began reading (the
# parameter), so the stage is not older than what is stored
# (docs/architecture.md#who-may-deactivate).
_OVERWRITABLE = "(m.webhook_changed_at IS NULL OR m.webhook_changed_at <= %s)"


def staged_counts(*, run_id, integration_id, read_since) -> dict:
    """How the run's stage compares with the stored members: total, created, updated, and released
    (members whose deactivation was held, listed by GitHub again). Members a webhook changed after
    `read_since` are left as they are, so they count as unchanged."""
    sql = (
        "SELECT COUNT(*), "
        "COALESCE(SUM(CASE WHEN m.id IS NULL THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN m.id IS NOT NULL AND {_DIFFERS} AND {_OVERWRITABLE} THEN 1 ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN m.deactivation_held_at IS NOT NULL AND {_OVERWRITABLE} THEN 1 ELSE 0 END), 0) "
        f"FROM {_table(StagedMember)} AS s LEFT JOIN {_table()} AS m "
        "ON m.integration_id = %s AND m.github_id = s.github_id WHERE s.run_id = %s"
    )
    since = connection.ops.adapt_datetimefield_value(read_since)
    with connection.cursor() as cursor:
        cursor.execute(sql, [since, since, integration_id, run_id])
        total, created, updated, released = cursor.fetchone()
    return {"total": total, "created": created, "updated": updated, "released": released}


def insert_staged(*, run_id, integration_id, now):
    """Create the staged members who are not stored yet. One a webhook stored meanwhile (after the
    NOT EXISTS looked) is kept as the webhook left it."""
    timestamp = connection.ops.adapt_datetimefield_value(now)
    fields = ("github_id", *PROFILE_FIELDS)
    values = ", ".join(f"COALESCE(s.{field}, '')" if field in ("name", "email") else f"s.{field}" for field in fields)
    sql = (
        f"INSERT INTO {_table()} (integration_id, {', '.join(fields)}, is_active, first_seen_at, left_at, updated_at) "
        f"SELECT %s, {values}, %s, %s, NULL, %s FROM {_table(StagedMember)} AS s WHERE s.run_id = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {_table()} AS m WHERE m.integration_id = %s AND m.github_id = s.github_id) "
        "ON CONFLICT (integration_id, github_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [integration_id, True, timestamp, timestamp, run_id, integration_id])


def update_staged(*, run_id, integration_id, now, read_since):
    """Rewrite the stored members who differ from their staged form, bring back those who had left
    and release those whose deactivation was held: each is then active, with no time of leaving and
    no hold. Members a webhook changed after `read_since` keep the webhook's state."""
    timestamp = connection.ops.adapt_datetimefield_value(now)
    assignments = ", ".join(
        f"{field} = COALESCE(s.{field}, m.{field})" if field in ("name", "email") else f"{field} = s.{field}"
        for field in PROFILE_FIELDS
    )
    sql = (
        f"UPDATE {_table()} AS m SET {assignments}, is_active = %s, left_at = NULL, deactivation_held_at = NULL, "
        f"updated_at = CASE WHEN {_DIFFERS} THEN %s ELSE m.updated_at END "
        f"FROM {_table(StagedMember)} AS s WHERE s.run_id = %s AND m.integration_id = %s "
        f"AND m.github_id = s.github_id AND ({_DIFFERS} OR m.deactivation_held_at IS NOT NULL) AND {_OVERWRITABLE}"
    )
    since = connection.ops.adapt_datetimefield_value(read_since)
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, timestamp, run_id, integration_id, since])


_CHANGE_COLUMNS = "integration_id, run_id, github_id, login, kind, before, after, at"


def _profile(vendor, name, email, avatar_url):
    build = "json_build_object" if vendor == "postgresql" else "json_object"
    cast = "::text" if vendor == "postgresql" else ""
    return f"{build}('name', {name}, 'email', {email}, 'avatar_url', {avatar_url}){cast}"


def record_staged_changes(*, run_id, integration_id, now, read_since):
    """Record what applying the run's stage will change, one row a change, before it is applied: the
    members it adds and brings back, and the roles, logins and profiles it rewrites (those a webhook
    changed after `read_since` it leaves alone, and so records nothing of). One INSERT."""
    kinds = MemberChange.Kind
    name, email = "COALESCE(s.name, m.name)", "COALESCE(s.email, m.email)"
    branches = [
        (kinds.ADDED, "''", "s.login", "m.id IS NULL"),
        (kinds.REACTIVATED, "''", "''", "m.id IS NOT NULL AND NOT m.is_active"),
        (kinds.ROLE_CHANGED, "m.role", "s.role", "m.role <> s.role"),
        (kinds.LOGIN_CHANGED, "m.login", "s.login", "m.login <> s.login"),
        (
            kinds.PROFILE_CHANGED,
            _profile(connection.vendor, "m.name", "m.email", "m.avatar_url"),
            _profile(connection.vendor, name, email, "s.avatar_url"),
            f"(m.name <> {name} OR m.email <> {email} OR m.avatar_url <> s.avatar_url)",
        ),
    ]
    timestamp = connection.ops.adapt_datetimefield_value(now)
    since = connection.ops.adapt_datetimefield_value(read_since)
    selects, params = [], []
    for kind, before, after, condition in branches:
        stored = "" if kind == kinds.ADDED else f" AND {_OVERWRITABLE}"
        selects.append(
            f"SELECT %s, %s, s.github_id, s.login, %s, {before}, {after}, %s "
            f"FROM {_table(StagedMember)} AS s LEFT JOIN {_table()} AS m "
            f"ON m.integration_id = %s AND m.github_id = s.github_id WHERE s.run_id = %s AND {condition}{stored}"
        )
        params += [integration_id, run_id, kind.value, timestamp, integration_id, run_id]
        if stored:
            params.append(since)
    sql = f"INSERT INTO {_table(MemberChange)} ({_CHANGE_COLUMNS}) {' UNION ALL '.join(selects)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def record_changes_of(members, *, run_id, kind, now, by_id=None):
    """Record one change of `kind` (deactivated, held, kept) for each member of the queryset, made by
    the user `by_id` if a person decided it. One INSERT."""
    # No ORDER BY: the rows go into a table, and the members' default order would sort them for nothing.
    select, params = members.order_by().values_list("integration_id", "github_id", "login").query.sql_with_params()
    sql = (
        f"INSERT INTO {_table(MemberChange)} ({_CHANGE_COLUMNS}, by_id) "
        f"SELECT x.integration_id, %s, x.github_id, x.login, %s, '', '', %s, %s FROM ({select}) AS x"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_id, kind, connection.ops.adapt_datetimefield_value(now), by_id, *params])
