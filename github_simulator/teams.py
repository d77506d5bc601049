"""An organization's teams, as GitHub keeps them: nested (a team has at most one parent, to any depth),
closed or secret, and their memberships (a member or a maintainer of the team).

GitHub's rules, from its REST description and docs ("About teams", "Creating a team"): a team's slug
is made from its name and follows it when it is renamed; two teams of an organization cannot share a
slug; only closed ("visible") teams nest, so a secret team has no parent and no child team; a team
cannot become its own descendant's child; deleting a team deletes its child teams too; and a member
who leaves the organization leaves every team of it.

Teams are generated from the organization's seed and their position, like its members, so the same
`LOGIN=N` and number of teams give the same tree every time.
"""

import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from github_simulator.ids import mix, node_id

CLOSED = "closed"
SECRET = "secret"  # noqa: S105 (a privacy, not a password)
MAINTAINER = "maintainer"
MEMBER = "member"

_FIRST_TEAM_ID = 100_000_000
_TEAM_BLOCK = 100_000  # team ids of one organization; every id stays below 2**31 (databaseId is an Int)

_WORDS = (
    "Platform Payments Search Identity Mobile Data Security Growth Infrastructure Design Support Billing "
    "Équipe Zoë Research Developer-Experience Observability Release Frontend Backend"
).split()


def team_slug(name: str) -> str:
    """Return the slug GitHub makes of a team's name: letters transliterated to ASCII and lowercased,
    every run of other characters one hyphen, none at either end ("Équipe Zoë!" gives "equipe-zoe")."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9_]+", "-", ascii_name).strip("-")


@dataclass
class Team:
    id: int
    node_id: str
    name: str
    slug: str
    description: str | None
    privacy: str  # CLOSED or SECRET, as REST says it (GraphQL: VISIBLE or SECRET)
    parent_id: int | None
    created_at: float
    updated_at: float
    # Immediate members: member index -> MEMBER or MAINTAINER.
    members: dict[int, str] = field(default_factory=dict)


class Teams:
    """One organization's teams. Every method runs under the simulator's lock (the organization's)."""

    def __init__(self, lock, org):
        self._lock = lock
        self._org = org
        self._by_id: dict[int, Team] = {}
        self._next_id = _FIRST_TEAM_ID + org.slot * _TEAM_BLOCK + 1

    # Reading.

    def __iter__(self) -> Iterator[Team]:
        """Every team in GitHub's listing order: by slug."""
        with self._lock:
            return iter(sorted(self._by_id.values(), key=lambda team: (team.slug, team.id)))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, team_id: int) -> Team | None:
        with self._lock:
            return self._by_id.get(team_id)

    def find(self, slug: str) -> Team | None:
        key = slug.lower()
        with self._lock:
            return next((team for team in self._by_id.values() if team.slug == key), None)

    def by_slug(self, slug: str) -> Team:
        if (team := self.find(slug)) is None:
            raise KeyError(f"{self._org.login} has no team {slug}.")
        return team

    def parent(self, team: Team) -> Team | None:
        return None if team.parent_id is None else self._by_id.get(team.parent_id)

    def children(self, team: Team) -> list[Team]:
        with self._lock:
            return self._children_by_parent().get(team.id, [])

    def descendants(self, team: Team) -> list[Team]:
        """Its child teams, theirs, and so on, in listing order."""
        with self._lock:
            by_parent = self._children_by_parent()
            found, frontier = [], [team]
            while frontier:
                children = [child for parent in frontier for child in by_parent.get(parent.id, ())]
                found += children
                frontier = children
            return sorted(found, key=lambda child: (child.slug, child.id))

    def _children_by_parent(self) -> dict[int, list[Team]]:
        by_parent: dict[int, list[Team]] = {}
        for team in sorted(self._by_id.values(), key=lambda team: (team.slug, team.id)):
            if team.parent_id is not None:
                by_parent.setdefault(team.parent_id, []).append(team)
        return by_parent

    def ancestors(self, team: Team) -> list[Team]:
        """The parent, its parent, and so on up to the root."""
        found, current = [], self.parent(team)
        while current is not None:
            found.append(current)
            current = self.parent(current)
        return found

    def memberships(self, team: Team, membership: str = "IMMEDIATE") -> dict[int, str]:
        """Member index -> role, in member order. IMMEDIATE: the team's own members; CHILD_TEAM: the
        members of its descendants who are not its own; ALL: both. A member who is in the team only
        through a child team is a MEMBER of it, whatever its role in the child team."""
        with self._lock:
            immediate = {index: role for index, role in team.members.items() if self._org.is_member(index)}
            inherited: dict[int, str] = {}
            if membership != "IMMEDIATE":
                for child in self.descendants(team):
                    for index in child.members:
                        if index not in immediate and self._org.is_member(index):
                            inherited[index] = MEMBER
            chosen = {"IMMEDIATE": immediate, "CHILD_TEAM": inherited, "ALL": {**inherited, **immediate}}[membership]
            return dict(sorted(chosen.items()))

    def teams_of(self, index: int) -> list[Team]:
        """The teams the member is an immediate member of."""
        with self._lock:
            return [team for team in self if index in team.members]

    def visible_to(self, token) -> list[Team]:
        """The teams GitHub lists to the token: every team to an owner of the organization and to an App
        installed on it; to a plain member the closed teams and the secret teams it is a member of;
        to anyone outside the organization none."""
        org = self._org
        if token.installation is not None:
            return list(self) if token.installation.org_id == org.id else []
        if not org.viewer_is_member:
            return []
        if org.role_of(0) == "ADMIN":
            return list(self)
        return [team for team in self if team.privacy == CLOSED or 0 in team.members]

    # Changes: the control API's. Each raises ValueError where GitHub answers 422, KeyError for what
    # does not exist, and returns the team as it is afterwards.

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        privacy: str | None = None,
        parent: str | None = None,
        maintainers: tuple[str, ...] = (),
        members: tuple[str, ...] = (),
        at: float | None = None,
    ) -> Team:
        with self._lock:
            slug = self._free_slug(name)
            parent_team = None if parent is None else self.by_slug(parent)
            # GitHub's default: secret, and closed for a child team; a secret team cannot nest.
            privacy = privacy or (CLOSED if parent_team else SECRET)
            self._check_privacy(privacy)
            if parent_team is not None:
                self._check_nesting(privacy, parent_team)
            now = time.time() if at is None else at
            team = Team(
                id=self._next_id,
                node_id=node_id("T", self._next_id),
                name=name,
                slug=slug,
                description=description,
                privacy=privacy,
                parent_id=None if parent_team is None else parent_team.id,
                created_at=now,
                updated_at=now,
            )
            self._next_id += 1
            self._by_id[team.id] = team
            for login in maintainers:
                self._add(team, login, MAINTAINER)
            for login in members:
                self._add(team, login, MEMBER)
            return team

    def edit(self, slug: str, **changes) -> tuple[Team, dict]:
        """Change the team's name (and so its slug), description, privacy or parent (`parent`: a slug,
        or None to make it a root team). Returns the team and GitHub's `changes` (each changed
        attribute's previous value, as the team edited webhook describes it)."""
        with self._lock:
            team = self.by_slug(slug)
            unknown = set(changes) - {"name", "description", "privacy", "parent"}
            if unknown:
                raise ValueError(f"A team has no {', '.join(sorted(unknown))} to change.")
            before: dict = {}
            if "name" in changes and changes["name"] != team.name:
                new_slug = self._free_slug(changes["name"], allow=team)
                before["name"] = {"from": team.name}
                team.name, team.slug = changes["name"], new_slug
            if "description" in changes and changes["description"] != team.description:
                before["description"] = {"from": team.description or ""}  # a string, GitHub's description says
                team.description = changes["description"]
            privacy = changes.get("privacy", team.privacy)
            self._check_privacy(privacy)
            parent_team = self.parent(team)
            if "parent" in changes:
                parent_team = None if changes["parent"] is None else self.by_slug(changes["parent"])
                if parent_team is not None and (parent_team is team or team in self.ancestors(parent_team)):
                    raise ValueError("A team cannot be nested under itself or one of its child teams.")
            if privacy == SECRET and self.children(team):
                raise ValueError("A team with child teams cannot be secret.")
            if parent_team is not None:
                self._check_nesting(privacy, parent_team)
            if privacy != team.privacy:
                before["privacy"] = {"from": team.privacy}
                team.privacy = privacy
            if (None if parent_team is None else parent_team.id) != team.parent_id:
                # Not a change the team edited webhook's `changes` describes; it is sent all the same.
                team.parent_id = None if parent_team is None else parent_team.id
            team.updated_at = time.time()
            return team, before

    def delete(self, slug: str) -> list[Team]:
        """Delete the team and its child teams, as GitHub does; returns them, the team first."""
        with self._lock:
            team = self.by_slug(slug)
            deleted = [team, *self.descendants(team)]
            for gone in deleted:
                del self._by_id[gone.id]
            return deleted

    def set_membership(self, slug: str, login: str, role: str = MEMBER) -> tuple[Team, int, str | None]:
        """Add the organization's member to the team with the role, or change its role. Returns the
        team, the member's index and its previous role (None: it was not in the team)."""
        with self._lock:
            team = self.by_slug(slug)
            before = team.members.get(index := self._member_index(login))
            self._add(team, login, role)
            return team, index, before

    def remove_membership(self, slug: str, login: str) -> tuple[Team, int]:
        with self._lock:
            team = self.by_slug(slug)
            index = self._member_index(login)
            if index not in team.members:
                raise KeyError(f"{login} is not a member of the team {slug}.")
            del team.members[index]
            return team, index

    def forget_member(self, index: int) -> list[Team]:
        """The member left the organization: it leaves each of its teams. Returns those teams."""
        with self._lock:
            left = [team for team in self._by_id.values() if team.members.pop(index, None) is not None]
            return left

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()

    # Generation.

    def generate(self, count: int, members: int, seed: int) -> None:
        """`count` teams, about three deep: a tenth roots, three tenths their children, the rest theirs;
        one team in fifteen secret (a root without children). Each member but octocat is in one team,
        one in five in two; each team's first member is a maintainer, and so is one member in twelve.
        Octocat is a maintainer of the first root team and of the first secret team."""
        secret = count // 15
        nested = count - secret
        roots = max(1, round(nested * 0.1)) if nested else 0
        middle = min(nested - roots, max(1, round(nested * 0.3))) if nested > 1 else 0
        created: list[Team] = []
        for k in range(count):
            word = _WORDS[mix(seed + k) % len(_WORDS)]
            name = f"{word} {k + 1}"
            if k >= nested:
                parent = None
            elif k < roots:
                parent = None
            elif k < roots + middle:
                parent = created[(k - roots) % roots].slug
            else:
                parent = created[roots + (k - roots - middle) % middle].slug
            privacy = SECRET if k >= nested else CLOSED
            created.append(self.create(name, description=f"The {word} team", privacy=privacy, parent=parent, at=0.0))
        if not created:
            return
        for index in range(1, members):
            random = mix(seed ^ (index * 0x9E37))
            for choice in (random, random >> 20) if random % 5 == 0 else (random,):
                team = created[choice % len(created)]
                maintainer = not team.members or (random >> 8) % 12 == 0
                team.members.setdefault(index, MAINTAINER if maintainer else MEMBER)
        created[0].members[0] = MAINTAINER
        if secret:
            created[nested].members[0] = MAINTAINER
        for team in created:
            team.members = dict(sorted(team.members.items()))

    # Helpers.

    def _add(self, team: Team, login: str, role: str) -> None:
        if role not in (MEMBER, MAINTAINER):
            raise ValueError("A team member's role is member or maintainer.")
        index = self._member_index(login)
        team.members[index] = role
        team.members = dict(sorted(team.members.items()))

    def _member_index(self, login: str) -> int:
        if (member := self._org.member_by_login(login)) is None:
            raise KeyError(f"{login} is not a member of {self._org.login}.")
        return member.index

    def _free_slug(self, name: str, allow: Team | None = None) -> str:
        if not isinstance(name, str) or not (slug := team_slug(name)):
            raise ValueError("A team's name needs a letter or a digit.")
        if (existing := self.find(slug)) is not None and existing is not allow:
            raise ValueError(f"Name must be unique for this org: the team {existing.name} has the slug {slug}.")
        return slug

    @staticmethod
    def _check_privacy(privacy: str) -> None:
        if privacy not in (CLOSED, SECRET):
            raise ValueError("A team's privacy is closed or secret.")

    @staticmethod
    def _check_nesting(privacy: str, parent: Team) -> None:
        if privacy == SECRET:
            raise ValueError("A secret team cannot have a parent team.")
        if parent.privacy == SECRET:
            raise ValueError("A secret team cannot have child teams.")
