"""OAuth scopes: which ones a token holds, which imply which, and which one to ask a user for.

https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps
"""

import re
from collections.abc import Sequence

from integrations.github.errors import ScopeMissing

READ_ORG = "read:org"

# A scope grants the scopes listed with it ("Normalized scopes" in GitHub's scope documentation):
# asking for read:org from a user who already granted admin:org yields a token with admin:org.
_IMPLIED = {
    "admin:org": ("write:org", "read:org"),
    "write:org": ("read:org",),
    "user": ("read:user", "user:email", "user:follow"),
}


def scope_list(value: str) -> list[str]:
    """The scopes of a comma-separated list, as X-OAuth-Scopes and the token answer give them.

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps
    """
    return [scope.strip() for scope in value.split(",") if scope.strip()]


def grants(granted: Sequence[str], scope: str) -> bool:
    """https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps#normalized-scopes"""
    return any(scope == held or scope in _IMPLIED.get(held, ()) for held in granted)


def require(headers, scope: str):
    """GitHub lists the token's scopes in X-OAuth-Scopes (OAuth and classic tokens only; others
    send no such header). Without read:org GitHub quietly leaves private members out.

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps
    """
    granted = headers.get("x-oauth-scopes")
    if granted is not None and not grants(scope_list(granted), scope):
        raise ScopeMissing(scope)


def missing_accepted(headers) -> str | None:
    """The scope to ask for when X-Accepted-OAuth-Scopes names scopes the token has none of.

    https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps
    """
    accepted = scope_list(headers.get("x-accepted-oauth-scopes", ""))
    granted = headers.get("x-oauth-scopes")
    if not accepted or granted is None or any(grants(scope_list(granted), scope) for scope in accepted):
        return None
    return READ_ORG if READ_ORG in accepted else accepted[0]


def named_in_message(message: str) -> str:
    """INSUFFICIENT_SCOPES messages name the scopes the field needs: "… requires one of the
    following scopes: ['read:org'], …"."""
    match = re.search(r"following scopes: \[([^\]]*)\]", message)
    needed = re.findall(r"'([a-z_:]+)'", match.group(1)) if match else []
    return READ_ORG if READ_ORG in needed or not needed else needed[0]
