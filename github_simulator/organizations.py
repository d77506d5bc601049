"""Deterministic organizations and the membership changes made to them between runs.

Member i of an organization is computed from the organization's seed and i, so the same login and size
give the same members every time and a 50,000-member organization costs no memory: only explicit
changes are stored. Member 0 of every organization is the viewer, octocat, until remove_viewer().
"""

import hashlib
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice

from github_simulator.ids import mix as _mix
from github_simulator.ids import node_id
from github_simulator.teams import Teams

ADMIN = "ADMIN"
MEMBER = "MEMBER"

# A few names beyond ASCII, so that the product sees names like the ones real organizations have.
FIRST_NAMES = "Ada Alan Amara Chloé Emeka Grace Hiroshi Jiří José Linus Margaret Priya Radia Zoë".split()
LAST_NAMES = "Curie Díaz Dijkstra Hopper Lamarr Liskov Lovelace Müller Nakamura Okafor Perlman Turing".split()

_FIRST_ORG_ID = 1_000_000
# Each organization's members get a block of ids of their own; every id stays below 2**31 because
# databaseId is a GraphQL Int.
_FIRST_MEMBER_ID = 10_000_000
_BLOCK = 2_000_000
_BLOCKS = 1_000  # organizations at most
HOLD_LIMIT_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Member:
    index: int  # the member's place in the organization's order, which cursors point at
    database_id: int
    node_id: str
    login: str
    name: str | None
    email: str  # "" without a public email, as GitHub answers
    role: str
    public: bool  # a public membership shows to anyone, a concealed one to members only
    verified_email: bool  # has an email on one of the organization's verified domains


def slug(name: str) -> str:
    """Return the ASCII letters a login is made of: "Zoë" gives "zoe"."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


VIEWER = Member(0, 1, node_id("U", 1), "octocat", "The Octocat", "octocat@github.com", ADMIN, True, True)


def _seed(login: str) -> int:
    return int.from_bytes(hashlib.blake2b(login.lower().encode(), digest_size=8).digest(), "big")


def _base36(value: int) -> str:
    digits = ""
    while value:
        value, digit = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits or "0"


def _role(random: int) -> str:
    return ADMIN if (random >> 40) % 10 == 0 else MEMBER


def _random_name(random: int) -> tuple[str, str, str]:
    first, last = FIRST_NAMES[random % len(FIRST_NAMES)], LAST_NAMES[(random >> 12) % len(LAST_NAMES)]
    return f"{first} {last}", slug(first), slug(last)


class SimulatedOrg:
    """One organization: its members in a stable order, and the changes made to them since creation."""

    def __init__(self, lock, login: str, size: int, slot: int, teams: int = 0):
        self._lock = lock
        self.login = login
        self.slot = slot
        self.id = _FIRST_ORG_ID + slot
        self.node_id = node_id("O", self.id)
        self.seed = _seed(login)
        # A verified domain stays with the organization when it is renamed, as on GitHub.
        self.verified_domain = f"{login.lower()}.example"
        self._first_member_id = _FIRST_MEMBER_ID + slot * _BLOCK
        self._end = size  # members are the indices below _end that were not removed
        self._removed: set[int] = set()
        self._changed: dict[int, dict] = {}
        self._renamed: dict[str, int] = {}  # lowercase login -> index, for members whose login changed
        self._changes = 0  # makes each change call pick other members than the previous one
        self._held_from: int | None = None  # the first member index whose page waits for release()
        # On the simulator's lock, which every request holds while it is answered: a held request
        # gives it up while it waits, so that the others go on.
        self._released = threading.Condition(lock)
        self.teams = Teams(lock, self)
        self.teams.generate(teams, size, self.seed)

    @property
    def name(self) -> str:
        return self.login.replace("-", " ").title()

    def hold(self, after: int = 0) -> None:
        """Answer the pages of the first `after` members, and keep each request for a later page
        waiting until release(): a sync of this organization then stays under way, with its total
        known once after > 0, for exactly as long as a test needs, however slow the machine."""
        with self._released:
            self._held_from = after
            self._released.notify_all()  # a request for a page before the new limit goes on

    def release(self) -> None:
        with self._released:
            self._held_from = None
            self._released.notify_all()

    def wait_while_held(self, start: int) -> None:
        """Wait while the page starting at member `start` is held. Called with the simulator's lock
        held, as every request is answered. Bounded, so that a test that forgets to release holds
        no request thread for ever."""
        self._released.wait_for(lambda: self._held_from is None or start < self._held_from, timeout=HOLD_LIMIT_SECONDS)

    @property
    def size(self) -> int:
        return self._end - len(self._removed)

    @property
    def viewer_is_member(self) -> bool:
        return 0 not in self._removed

    @property
    def members(self) -> list[Member]:
        with self._lock:
            return [self.member(index) for index in self.indices()]

    def is_member(self, index: int) -> bool:
        return 0 <= index < self._end and index not in self._removed

    def member(self, index: int) -> Member:
        generated = self._generated(index)
        changed = self._changed.get(index)
        return replace(generated, **changed) if changed else generated

    def role_of(self, index: int) -> str:
        """Return a member's role without building the whole member: REST filters big organizations by role."""
        if "role" in (changed := self._changed.get(index, {})):
            return changed["role"]
        return ADMIN if index == 0 else _role(_mix(self.seed + index))

    def member_by_login(self, login: str) -> Member | None:
        key = login.lower()
        with self._lock:
            index = self._renamed.get(key, self._generated_index(key))
            if index is None or not (0 <= index < self._end and index not in self._removed):
                return None
            member = self.member(index)
            return member if member.login.lower() == key else None

    def user_by_id(self, database_id: int) -> Member | None:
        """The account with this id that is or was one of the organization's members: it stays a
        GitHub user after it leaves."""
        index = 0 if database_id == VIEWER.database_id else database_id - self._first_member_id
        with self._lock:
            return self.member(index) if 0 <= index < self._end else None

    def indices(self, *, public_only=False, start=0) -> Iterator[int]:
        """Yield every member's index from start on, in order; public members only for a viewer outside."""
        indices = (index for index in range(start, self._end) if index not in self._removed)
        return (index for index in indices if self._is_public(index)) if public_only else indices

    def count(self, *, public_only=False) -> int:
        return sum(1 for _ in self.indices(public_only=True)) if public_only else self.size

    def page(self, first: int, after: int | None, *, public_only=False) -> tuple[list[Member], bool]:
        """Return the first members after the index after, as a GraphQL connection pages them, and whether
        more follow."""
        with self._lock:
            following = self.indices(public_only=public_only, start=0 if after is None else after + 1)
            indices = list(islice(following, first + 1))
            return [self.member(index) for index in indices[:first]], len(indices) > first

    # Membership changes between runs. Each returns the members it affected, as they are afterwards.

    def add_members(self, n: int) -> list[Member]:
        with self._lock:
            added = range(self._end, self._end + n)
            self._end += n
            return [self.member(index) for index in added]

    def remove_members(self, n: int) -> list[Member]:
        with self._lock:
            removed = [self.member(index) for index in self._pick(n)]
            for member in removed:
                self._leave(member.index)
            return removed

    def remove_member(self, login: str) -> Member:
        with self._lock:
            if (member := self.member_by_login(login)) is None:
                raise KeyError(f"{login} is not a member of {self.login}.")
            self._leave(member.index)
            return member

    def remove_viewer(self) -> None:
        """Take octocat out of the organization: from then on it sees only the public members, as GitHub
        shows a token whose user is no member."""
        with self._lock:
            self._leave(0)

    def set_viewer_role(self, role: str) -> None:
        """Make octocat an owner ("admin", as at the start) or a plain member ("member") of the
        organization: /user/memberships/orgs/{org} then answers that role."""
        if role.lower() not in ("admin", "member"):
            raise ValueError("The viewer's role is admin or member.")
        with self._lock:
            self._change(0, role=role.upper())

    def rename_members(self, n: int) -> list[Member]:
        with self._lock:
            for index in (picked := self._pick(n)):
                login = self.member(index).login
                suffix = self._changes
                while self.member_by_login(f"{login}-{suffix}") is not None:
                    suffix += 1
                self._set_login(index, f"{login}-{suffix}")
            return [self.member(index) for index in picked]

    def change_roles(self, n: int) -> list[Member]:
        with self._lock:
            for index in (picked := self._pick(n)):
                self._change(index, role=MEMBER if self.member(index).role == ADMIN else ADMIN)
            return [self.member(index) for index in picked]

    def update_profiles(self, n: int) -> list[Member]:
        with self._lock:
            for index in (picked := self._pick(n)):
                name, first, last = _random_name(_mix(self.seed ^ (index << 20) ^ self._changes))
                if name == self.member(index).name:
                    name = f"{name} II"
                self._change(index, name=name, email=f"{first}.{last}@example.org")
            return [self.member(index) for index in picked]

    def rename_member(self, login: str, new_login: str) -> Member:
        with self._lock:
            if (member := self.member_by_login(login)) is None:
                raise KeyError(f"{login} is not a member of {self.login}.")
            self._set_login(member.index, new_login)
            return self.member(member.index)

    def rename(self, new_login: str) -> None:
        """Rename the organization itself; it keeps its id, and its old login stops resolving."""
        with self._lock:
            self.login = new_login

    def _leave(self, index: int) -> None:
        """The member leaves the organization, and so every team of it, as on GitHub."""
        self._removed.add(index)
        self.teams.forget_member(index)

    def _is_public(self, index: int) -> bool:
        return index == 0 or _mix(self.seed + index) % 3 == 0

    def _pick(self, n: int) -> list[int]:
        """Return n members other than the viewer, spread over the organization, different from call to call."""
        candidates = list(self.indices(start=1))
        self._changes += 1
        n = min(n, len(candidates))
        if n <= 0:
            return []
        stride = len(candidates) // n
        start = (self._changes * 7919) % len(candidates)
        return [candidates[(start + k * stride) % len(candidates)] for k in range(n)]

    def _change(self, index: int, **fields) -> None:
        self._changed.setdefault(index, {}).update(fields)

    def _set_login(self, index: int, login: str) -> None:
        self._renamed.pop(self.member(index).login.lower(), None)
        self._renamed[login.lower()] = index
        self._change(index, login=login)

    def _generated_index(self, login: str) -> int | None:
        """Return the index a generated login (first-last-<database id in base 36>) stands for."""
        if login == VIEWER.login:
            return 0
        try:
            return int(login.rpartition("-")[2], 36) - self._first_member_id
        except ValueError:
            return None

    def _generated(self, index: int) -> Member:
        if index == 0:
            return VIEWER
        random = _mix(self.seed + index)
        name, first, last = _random_name(random)
        database_id = self._first_member_id + index
        return Member(
            index=index,
            database_id=database_id,
            node_id=node_id("U", database_id),
            login=f"{first}-{last}-{_base36(database_id)}",
            name=None if (random >> 24) % 8 == 0 else name,
            email=f"{first}.{last}@example.com" if (random >> 32) % 3 == 0 else "",
            role=_role(random),
            public=self._is_public(index),
            verified_email=(random >> 48) % 4 == 0,
        )


class Organizations:
    """Every simulated organization, found by login (case-insensitive, as GitHub does) or by id."""

    def __init__(self, lock):
        self.lock = lock
        self._by_id: dict[int, SimulatedOrg] = {}

    def __iter__(self) -> Iterator[SimulatedOrg]:
        with self.lock:
            return iter(sorted(self._by_id.values(), key=lambda org: org.login.lower()))

    def add(self, login: str, size: int, teams: int = 0) -> SimulatedOrg:
        """Create an organization, with `teams` generated teams; one with the same login is replaced
        (and keeps its id)."""
        with self.lock:
            if (existing := self.find(login)) is not None:
                existing.release()
                del self._by_id[existing.id]
            # The first free slot from the login's seed on: the same organizations created in the same
            # order get the same ids.
            taken = {org.slot for org in self._by_id.values()}
            slot = _seed(login) % _BLOCKS
            while slot in taken:
                slot = (slot + 1) % _BLOCKS
            org = self._by_id[_FIRST_ORG_ID + slot] = SimulatedOrg(self.lock, login, size, slot, teams)
            return org

    def find(self, login: str) -> SimulatedOrg | None:
        key = login.lower()
        with self.lock:
            return next((org for org in self._by_id.values() if org.login.lower() == key), None)

    def find_by_id(self, org_id: int) -> SimulatedOrg | None:
        with self.lock:
            return self._by_id.get(org_id)

    def remove(self, org: SimulatedOrg) -> None:
        with self.lock:
            self._by_id.pop(org.id, None)

    def clear(self) -> None:
        with self.lock:
            for org in self._by_id.values():
                org.release()
            self._by_id.clear()
