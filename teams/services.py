"""Finding a user's teams and making new ones: what other apps ask of teams, written once here."""

import re
from functools import cache
from itertools import count

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils.text import slugify

from teams.models import Membership, Team

# A slug as the URLs allow it; anything else (a NUL byte, which PostgreSQL refuses to compare) names no team.
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")
# Leaves room in Team.slug's 100 characters for a "-N" suffix.
SLUG_BASE_LENGTH = 90
TEAM_NAME_LENGTH = Team._meta.get_field("name").max_length


def first_team_of(user) -> Team | None:
    """The team the user joined first: where they land after signing in."""
    return Team.objects.filter(memberships__user=user).order_by("memberships__created_at").first()


def membership_of(user, team_slug: str) -> Membership | None:
    """The user's membership of the team with this slug, with its team; None alike for no such team
    and not theirs, so that a team's existence does not leak."""
    if not SLUG.fullmatch(team_slug):
        return None
    # get(), not first(): one membership per team and user, and first() would order by the primary key
    # for nothing (0.1 ms of SQL compiling on every team page).
    try:
        return Membership.objects.select_related("team").get(user=user, team__slug=team_slug)
    except Membership.DoesNotExist:
        return None


def team_id_of(user, team_slug: str) -> int | None:
    """membership_of's team id alone, in one small read."""
    if not SLUG.fullmatch(team_slug):
        return None
    return Membership.objects.filter(user=user, team__slug=team_slug).values_list("team_id", flat=True).first()


def active_member_of(user_id, team_slug: str) -> tuple[int, str] | None:
    """The team's id and the user's password hash, if the user is active and a member of the team with
    this slug; None otherwise. One read, for a request that checks who may read a team's events
    without loading the user first (integrations/live/team_events.py): the hash verifies the session.
    Written out: through the ORM it cost 0.71 ms of CPU, as much as the rest of a stream's opening,
    and 0.13 ms so (docs/reliability.md, Restart storms)."""
    user_id = int(user_id)
    if not SLUG.fullmatch(team_slug) or not 0 < user_id < 2**63:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_active_member_sql(), [user_id, team_slug])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


@cache
def _active_member_sql() -> str:
    quote = connection.ops.quote_name
    membership, team, user = (quote(model._meta.db_table) for model in (Membership, Team, get_user_model()))
    # The tables' names are the models', quoted; the values are parameters.
    return (
        f"SELECT m.team_id, u.password FROM {membership} m "  # noqa: S608
        f"JOIN {team} t ON t.id = m.team_id JOIN {user} u ON u.id = m.user_id "
        "WHERE m.user_id = %s AND t.slug = %s AND u.is_active"
    )


def create_team(*, name: str, slug_from: str, admin) -> Team:
    """A new team administered by `admin`, its slug made from `slug_from` ("-N" added if taken)."""
    team = _create_with_free_slug(name=name[:TEAM_NAME_LENGTH], base=slugify(slug_from)[:SLUG_BASE_LENGTH].strip("-"))
    Membership.objects.create(team=team, user=admin, role=Membership.Role.ADMIN)
    return team


def _create_with_free_slug(*, name: str, base: str) -> Team:
    base = base or "team"
    taken = set(Team.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    for number in count(1):
        slug = base if number == 1 else f"{base}-{number}"
        if slug in taken:
            continue
        try:
            with transaction.atomic():
                return Team.objects.create(name=name, slug=slug)
        except IntegrityError:  # another request took it since the read above
            continue
    raise AssertionError("unreachable: count() never ends")
