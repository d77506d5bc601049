"""Access tokens the simulator accepts: an OAuth App's user tokens (gho_, with scopes), a GitHub App's
user tokens (ghu_) and installation tokens (ghs_, with the App's permissions and an expiry); and their
hourly rate-limit budgets."""

import secrets
import string
import time
from dataclasses import dataclass, field

RATE_LIMIT = 5_000
WINDOW_SECONDS = 3_600
# A broader scope grants the narrower ones:
# https://docs.github.com/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps
_IMPLIED_SCOPES = {
    "admin:org": ("write:org", "read:org"),
    "write:org": ("read:org",),
    "user": ("read:user", "user:email", "user:follow"),
}
_ALPHABET = string.ascii_letters + string.digits


@dataclass
class Budget:
    """Points used in the current window of one rate-limit resource ("core" or "graphql"). A limit
    of None: rate limiting is off, as GitHub Enterprise Server has it by default."""

    limit: int | None
    reset_at: int  # epoch seconds
    used: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    def headers(self, resource: str) -> list[tuple[str, str]]:
        # Enterprise Server without rate limiting sends no X-RateLimit-* header at all.
        if self.limit is None:
            return []
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset_at)),
            ("X-RateLimit-Used", str(self.used)),
            ("X-RateLimit-Resource", resource),
        ]


# A GitHub App's permission that stands for an OAuth scope the endpoints check.
_PERMISSION_FOR_SCOPE = {"read:org": "members"}


@dataclass
class Token:
    value: str
    scopes: tuple[str, ...]
    budgets: dict[str, Budget] = field(default_factory=dict)
    permissions: dict[str, str] | None = None  # a GitHub App's token: what the App may do instead of scopes
    installation: object = None  # an installation token's installation; it has no user
    expires_at: float | None = None
    client_id: str | None = None  # the OAuth client it was issued to; None: any OAuth App's (control API)

    @property
    def kind(self) -> str:
        """ "gho" (an OAuth App's, a person's), "ghu" (a GitHub App's user token, a person's) or "ghs"
        (an installation's, no person's): GitHub's own prefixes."""
        return self.value[:3]

    def grants(self, scope: str) -> bool:
        # An installation token may do what its installation may now, not what it could when minted.
        permissions = self.installation.permissions if self.installation is not None else self.permissions
        if permissions is not None:
            return _PERMISSION_FOR_SCOPE.get(scope, "") in permissions
        return any(scope == granted or scope in _IMPLIED_SCOPES.get(granted, ()) for granted in self.scopes)

    def sees_every_member(self, org) -> bool:
        """Whether concealed members show: to the organization's members, and to an App installed on it
        (its bot is no member)."""
        if self.installation is not None:
            return self.installation.org_id == org.id
        return org.viewer_is_member

    @property
    def scopes_header(self) -> str:
        return ", ".join(self.scopes)


@dataclass(frozen=True)
class Revoked:
    """A token revoked through GitHub's REST API: by its OAuth client (DELETE
    /applications/{client_id}/token) or by itself (DELETE /installation/token)."""

    token: str
    kind: str
    endpoint: str
    at: float


class Tokens:
    def __init__(self, lock, rate_limit: int | None = RATE_LIMIT):
        self._lock = lock
        self._rate_limit = rate_limit
        self._tokens: dict[str, Token] = {}
        # Revocations through the REST API, oldest first, for tests to read; emptied by reset().
        self.revoked: list[Revoked] = []

    @property
    def rate_limit(self) -> int | None:
        return self._rate_limit

    def set_rate_limit(self, limit: int | None) -> None:
        """Every token's hourly budget from now on (None: no rate limiting); the budgets start afresh."""
        with self._lock:
            self._rate_limit = limit
            self.reset_budgets()

    def issue(self, scopes, client_id: str | None = None) -> str:
        # The shape of an OAuth App's user token: "gho_" and 36 alphanumerics.
        return self._add(Token(_value("gho_"), tuple(dict.fromkeys(scopes)), client_id=client_id))

    def issue_for_app_user(self, permissions: dict[str, str], client_id: str | None = None) -> str:
        """A GitHub App's user access token: the user's, limited to the App's permissions, without scopes."""
        return self._add(Token(_value("ghu_"), (), permissions=dict(permissions), client_id=client_id))

    def issue_for_installation(self, installation, permissions: dict[str, str], lifetime_seconds: float) -> Token:
        token = Token(
            _value("ghs_"),
            (),
            permissions=dict(permissions),
            installation=installation,
            expires_at=time.time() + lifetime_seconds,
        )
        self._add(token)
        return token

    def revoke_installation(self, installation) -> None:
        with self._lock:
            for value in [value for value, token in self._tokens.items() if token.installation is installation]:
                del self._tokens[value]

    def _add(self, token: Token) -> str:
        with self._lock:
            self._tokens[token.value] = token
        return token.value

    def revoke(self, value: str) -> None:
        with self._lock:
            self._tokens.pop(value, None)

    def revoke_through_api(self, token: Token, endpoint: str) -> None:
        """Revoke as GitHub's REST API does, and record it (``revoked``)."""
        with self._lock:
            self._tokens.pop(token.value, None)
            self.revoked.append(Revoked(token.value, token.kind, endpoint, time.time()))

    def get(self, value: str) -> Token | None:
        """The token, None when unknown or expired (GitHub answers both 401 Bad credentials)."""
        with self._lock:
            token = self._tokens.get(value)
            return None if token is None or (token.expires_at or float("inf")) <= time.time() else token

    def budget(self, token: Token, resource: str) -> Budget:
        """The token's budget in the current window, a fresh one once the window is over."""
        now = int(time.time())
        with self._lock:
            budget = token.budgets.get(resource)
            if budget is None or budget.reset_at <= now:
                budget = token.budgets[resource] = Budget(self._rate_limit, now + WINDOW_SECONDS)
            return budget

    def charge(self, token: Token, resource: str, cost: int = 1) -> tuple[Budget, bool]:
        """Spends cost points if that many remain; returns the budget and whether they did."""
        with self._lock:
            budget = self.budget(token, resource)
            if budget.remaining is not None and budget.remaining < cost:
                return budget, False
            budget.used += cost
            return budget, True

    def reset_budgets(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.budgets.clear()


def _value(prefix: str) -> str:
    # GitHub's token shapes: a prefix naming the kind and 36 alphanumerics.
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(36))


def kind_of(authorization: str | None) -> str:
    """What kind of credential an Authorization header carries: a token's prefix ("gho", "ghu",
    "ghs"), "jwt" for the App's JSON Web Token, "basic" for an OAuth client's id and secret, "" for
    none."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if not scheme:
        return ""
    if scheme.lower() == "basic":
        return "basic"
    value = value.strip() if scheme.lower() in ("token", "bearer") else scheme
    if value.startswith(("gho_", "ghu_", "ghs_")):
        return value[:3]
    return "jwt" if value.count(".") == 2 else "unknown"
