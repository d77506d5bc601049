"""Access tokens the simulator accepts, their scopes, and their hourly rate-limit budgets."""

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
    """Points used in the current window of one rate-limit resource ("core" or "graphql")."""

    limit: int
    reset_at: int  # epoch seconds
    used: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, resource: str) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset_at)),
            ("X-RateLimit-Used", str(self.used)),
            ("X-RateLimit-Resource", resource),
        ]


@dataclass
class Token:
    value: str
    scopes: tuple[str, ...]
    budgets: dict[str, Budget] = field(default_factory=dict)

    def grants(self, scope: str) -> bool:
        return any(scope == granted or scope in _IMPLIED_SCOPES.get(granted, ()) for granted in self.scopes)

    @property
    def scopes_header(self) -> str:
        return ", ".join(self.scopes)


class Tokens:
    def __init__(self, lock, rate_limit: int = RATE_LIMIT):
        self._lock = lock
        self._rate_limit = rate_limit
        self._tokens: dict[str, Token] = {}

    def issue(self, scopes) -> str:
        # The shape of an OAuth App's user token: "gho_" and 36 alphanumerics.
        value = "gho_" + "".join(secrets.choice(_ALPHABET) for _ in range(36))
        with self._lock:
            self._tokens[value] = Token(value, tuple(dict.fromkeys(scopes)))
        return value

    def revoke(self, value: str) -> None:
        with self._lock:
            self._tokens.pop(value, None)

    def get(self, value: str) -> Token | None:
        with self._lock:
            return self._tokens.get(value)

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
            if budget.remaining < cost:
                return budget, False
            budget.used += cost
            return budget, True

    def reset_budgets(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.budgets.clear()
