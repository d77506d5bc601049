"""Deterministic organizations and the membership changes made to them between runs.

Member i of an organization is computed from the organization's seed and i, so the same login and size
give the same members every time and a 50,000-member organization costs no memory: only explicit
changes are stored. Member 0 of every organization is the viewer, octocat, until remove_viewer().
"""

import base64
import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice

ADMIN = "ADMIN"
MEMBER = "MEMBER"

# Some names beyond ASCII, so that the product sees names like the ones real organizations have.
FIRST_NAMES = (
    "Ada Alan Amara Anders Aoife Ayşe Bjørn Carmen Chen Chloé Dmitri Emeka Emma Farah François Grace Hana Hiroshi "
    "Ingrid Isabela Jamal Jiří José Kai Katherine Kwame Léa Linus Łukasz Margaret Mateo Mei Mohammed Nadia Niamh "
    "Oluwaseun Omar Priya Radia Rafael Saanvi Sigrún Sofía Tariq Thandiwe Tomás Yuki Zoë"
).split()
LAST_NAMES = (
    "Abara|Andersson|Babbage|Bălan|Chowdhury|Curie|Dąbrowski|Dijkstra|Díaz|Eze|Fernández|García|Hamilton|Hopper|"
    "Ibrahim|Jansen|Johnson|Kim|Kowalczyk|Lamarr|Liskov|Lovelace|Müller|Nakamura|Nguyen|Novák|O'Brien|Okafor|"
    "Perlman|Petrović|Ramanujan|Rossi|Sato|Schmidt|Silva|Singh|Søndergaard|Tanaka|Torvalds|Turing|Van der Berg|"
    "Wang|Wójcik|Yılmaz|Zhang"
).split("|")

_MASK = (1 << 64) - 1
_ORG_IDS = range(1_000_000, 10_000_000)
# Each organization's members get a block of ids of their own; every id stays below 2**31 because
# databaseId is a GraphQL Int.
_MEMBER_IDS_START = 10_000_000
_BLOCK = 2_000_000
_BLOCKS = 1_000


@dataclass(frozen=True, slots=True)
class Member:
    index: int  # the member's place in the organization's order, which cursors point at
    database_id: int
    node_id: str
    login: str
    name: str | None
    email: str  # "" without a public email, as GitHub answers
    avatar_url: str
    role: str
    public: bool  # a public membership shows to anyone, a concealed one to members only
    verified_email: bool  # has an email on one of the organization's verified domains


def node_id(prefix: str, database_id: int) -> str:
    """Return GitHub's next-generation global id: the type's prefix and the msgpack of [0, databaseId]."""
    packed = b"\x92\x00" + (b"\xce" + database_id.to_bytes(4, "big") if database_id > 0x7F else bytes([database_id]))
    return f"{prefix}_{base64.urlsafe_b64encode(packed).decode().rstrip('=')}"


def avatar_url(database_id: int) -> str:
    return f"https://avatars.githubusercontent.com/u/{database_id}?v=4"


def slug(name: str) -> str:
    """Return the ASCII letters a login is made of: "Søndergaard" gives "sondergaard"."""
    name = name.translate(str.maketrans({"ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "ı": "i"}))
    return re.sub(r"[^a-z]", "", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower())


VIEWER = Member(0, 1, node_id("U", 1), "octocat", "The Octocat", "octocat@github.com", avatar_url(1), ADMIN, True, True)


def _seed(login: str) -> int:
    return int.from_bytes(hashlib.blake2b(login.lower().encode(), digest_size=8).digest(), "big")


def _mix(value: int) -> int:
    """splitmix64: spreads consecutive member indices over unrelated-looking attributes."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _base36(value: int) -> str:
    digits = ""
    while value:
        value, digit = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits or "0"


def _random_name(random: int) -> tuple[str, str, str]:
    first, last = FIRST_NAMES[random % len(FIRST_NAMES)], LAST_NAMES[(random >> 12) % len(LAST_NAMES)]
    return f"{first} {last}", slug(first), slug(last)


class SimulatedOrg:
    """One organization: its members in a stable order, and the changes made to them since creation."""

    def __init__(self, registry: "Organizations", login: str, size: int, database_id: int, member_block: int):
        if not 1 <= size <= _BLOCK:
            raise ValueError(f"An organization has 1 to {_BLOCK} members (octocat is always one of them).")
        self._registry = registry
        self._lock = registry.lock
        self.login = login
        self.id = database_id
        self.node_id = node_id("O", database_id)
        self.member_block = member_block
        self.created_seed = _seed(login)
        # Verified domains are the organization's own: a rename keeps them.
        self.verified_domain = f"{login.lower()}.example"
        self._first_member_id = _MEMBER_IDS_START + member_block * _BLOCK
        self._end = size  # members are the indices below _end that were not removed
        self._removed: set[int] = set()
        self._changed: dict[int, dict] = {}
        self._renamed: dict[str, int] = {}  # lowercase login -> index, for members whose login changed
        self._changes = 0  # makes each change call pick other members than the previous one
        self._public_count: int | None = None  # counting a big organization's public members takes a while

    def __repr__(self):
        return f"<SimulatedOrg {self.login} ({self.size} members)>"

    @property
    def name(self) -> str:
        return self.login.replace("-", " ").title()

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

    def member(self, index: int) -> Member:
        generated = self._generated(index)
        changed = self._changed.get(index)
        return replace(generated, **changed) if changed else generated

    def role_of(self, index: int) -> str:
        """Return a member's role without building the whole member: REST filters big organizations by role."""
        changed = self._changed.get(index)
        if changed and "role" in changed:
            return changed["role"]
        return ADMIN if index == 0 else self._role(_mix(self.created_seed + index))

    def member_by_login(self, login: str) -> Member | None:
        key = login.lower()
        with self._lock:
            index = self._renamed.get(key, self._generated_index(key))
            if index is None or not self._exists(index):
                return None
            member = self.member(index)
            return member if member.login.lower() == key else None

    def indices(self, *, public_only=False, start=0) -> Iterator[int]:
        """Yield every member's index from start on, in order; public members only for a viewer outside."""
        removed = self._removed
        indices = (index for index in range(start, self._end) if index not in removed)
        return (index for index in indices if self._is_public(index)) if public_only else indices

    def count(self, *, public_only=False) -> int:
        if not public_only:
            return self.size
        with self._lock:
            if self._public_count is None:
                self._public_count = sum(1 for _ in self.indices(public_only=True))
            return self._public_count

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
            if self._end + n > _BLOCK:
                raise ValueError(f"An organization has at most {_BLOCK} members.")
            added = range(self._end, self._end + n)
            self._end += n
            self._public_count = None
            return [self.member(index) for index in added]

    def remove_members(self, n: int) -> list[Member]:
        with self._lock:
            removed = [self.member(index) for index in self._pick(n)]
            self._removed.update(member.index for member in removed)
            self._public_count = None
            return removed

    def remove_viewer(self) -> None:
        """Take octocat out of the organization: from then on it sees only the public members, as GitHub
        shows a token whose user is no member."""
        with self._lock:
            self._removed.add(0)
            self._public_count = None

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
                name, first, last = _random_name(_mix(self.created_seed ^ (index << 20) ^ self._changes))
                if name == self.member(index).name:
                    name = f"{name} II"
                self._change(index, name=name, email=f"{first}.{last}@example.org")
            return [self.member(index) for index in picked]

    def rename_member(self, login: str, new_login: str) -> Member:
        with self._lock:
            member = self.member_by_login(login)
            if member is None:
                raise KeyError(f"{login} is not a member of {self.login}.")
            if self.member_by_login(new_login) is not None:
                raise ValueError(f"{new_login} is already the login of a member of {self.login}.")
            self._set_login(member.index, new_login)
            return self.member(member.index)

    def rename(self, new_login: str) -> None:
        """Rename the organization itself; it keeps its id, and its old login stops resolving."""
        self._registry.rename(self, new_login)

    def _exists(self, index: int) -> bool:
        return 0 <= index < self._end and index not in self._removed

    def _is_public(self, index: int) -> bool:
        return index == 0 or _mix(self.created_seed + index) % 3 == 0

    def _pick(self, n: int) -> list[int]:
        """Return n members other than the viewer, spread over the organization, different from call to call."""
        candidates = list(self.indices(start=1))
        if n > len(candidates):
            raise ValueError(f"{self.login} has only {len(candidates)} members besides octocat.")
        self._changes += 1
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
        if login == VIEWER.login:
            return 0
        try:
            database_id = int(login.rpartition("-")[2], 36)
        except ValueError:
            return None
        return database_id - self._first_member_id

    @staticmethod
    def _role(random: int) -> str:
        return ADMIN if (random >> 40) % 10 == 0 else MEMBER

    def _generated(self, index: int) -> Member:
        if index == 0:
            return VIEWER
        random = _mix(self.created_seed + index)
        name, first, last = _random_name(random)
        database_id = self._first_member_id + index
        return Member(
            index=index,
            database_id=database_id,
            node_id=node_id("U", database_id),
            login=f"{first}-{last}-{_base36(database_id)}",
            name=None if (random >> 24) % 8 == 0 else name,
            email=f"{first}.{last}@example.com" if (random >> 32) % 3 == 0 else "",
            avatar_url=avatar_url(database_id),
            role=self._role(random),
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

    def add(self, login: str, size: int) -> SimulatedOrg:
        """Create an organization; one with the same login is replaced (and keeps its id)."""
        with self.lock:
            if (existing := self.find(login)) is not None:
                del self._by_id[existing.id]
            seed = _seed(login)
            taken_ids = {org_id - _ORG_IDS.start for org_id in self._by_id}
            org_id = _ORG_IDS.start + self._free(seed, taken_ids, len(_ORG_IDS))
            block = self._free(seed, {org.member_block for org in self._by_id.values()}, _BLOCKS)
            org = SimulatedOrg(self, login, size, org_id, block)
            self._by_id[org_id] = org
            return org

    def find(self, login: str) -> SimulatedOrg | None:
        key = login.lower()
        with self.lock:
            return next((org for org in self._by_id.values() if org.login.lower() == key), None)

    def find_by_id(self, org_id: int) -> SimulatedOrg | None:
        with self.lock:
            return self._by_id.get(org_id)

    def rename(self, org: SimulatedOrg, new_login: str) -> None:
        with self.lock:
            if (other := self.find(new_login)) is not None and other is not org:
                raise ValueError(f"Another organization is already called {new_login}.")
            org.login = new_login

    def clear(self) -> None:
        with self.lock:
            self._by_id.clear()

    @staticmethod
    def _free(seed: int, taken: set[int], capacity: int) -> int:
        """Return the first free slot from the seed's on: deterministic, so that the same organizations
        created in the same order get the same ids."""
        if len(taken) >= capacity:
            raise ValueError("The simulator has no room for another organization.")
        slot = seed % capacity
        while slot in taken:
            slot = (slot + 1) % capacity
        return slot
