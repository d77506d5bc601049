"""What can go wrong when talking to GitHub, one class per case a user can act on.

Each exception's ``str()`` is the message the UI shows: what happened and what to do about it. No
message ever contains a token, and text that came from GitHub goes into a message only after it
has been checked to be harmless (a URL on GitHub's own host, a scope name, an error code).
"""

import re
from datetime import UTC, datetime

APPROVE_OAUTH_APP_DOC = (
    "https://docs.github.com/en/organizations/managing-oauth-access-to-your-organizations-data/"
    "approving-oauth-apps-for-your-organization"
)
SAML_SSO_DOC = (
    "https://docs.github.com/en/authentication/authenticating-with-single-sign-on/"
    "authorizing-a-personal-access-token-for-use-with-single-sign-on"
)

_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
_SCOPE = re.compile(r"^[a-z_]{1,40}(:[a-z_]{1,40})?$")


class GitHubError(Exception):
    """Base class. ``transient`` tells the caller whether the same request may succeed later by itself."""

    transient: bool = False

    def __init__(self, message: str = "GitHub answered in a way this app did not expect. Try again later."):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message

    def __reduce__(self):
        # The subclasses' constructors take other arguments than the message, which the default
        # Exception pickling would pass back: rebuild from the instance's state instead.
        return _rebuild, (type(self), self.__dict__)


def _rebuild(cls, state):
    error = cls.__new__(cls)
    Exception.__init__(error, state["message"])
    error.__dict__.update(state)
    return error


class BadCredentials(GitHubError):
    def __init__(self):
        super().__init__(
            "GitHub no longer accepts the connection's access token: it was revoked or has expired. "
            "Reconnect GitHub to resume syncing."
        )


class SSORequired(GitHubError):
    def __init__(self, url: str):
        self.url = url
        super().__init__(
            "The organization uses SAML single sign-on and the GitHub token is not authorized for it. "
            f"Authorize it for the organization at {url}, then sync again."
        )


class AccessRestricted(GitHubError):
    def __init__(self, login: str = ""):
        self.login = login
        self.doc_url = APPROVE_OAUTH_APP_DOC
        organization = f"The organization {login}" if login else "The organization"
        super().__init__(
            f"{organization} has OAuth App access restrictions and has not approved this app. "
            f"An organization owner must approve it ({APPROVE_OAUTH_APP_DOC}), then sync again."
        )


class OrganizationNotFound(GitHubError):
    def __init__(self, login: str):
        self.login = login
        super().__init__(
            f"GitHub has no organization {login} that the connected account can see: it was renamed or "
            "deleted, or the account lost access to it. Reconnect GitHub with an account that belongs to "
            "the organization."
        )


class ScopeMissing(GitHubError):
    def __init__(self, scope: str = "read:org"):
        self.scope = scope if _SCOPE.match(scope) else "read:org"
        super().__init__(
            f"GitHub did not grant the {self.scope} permission this app needs to read the organization's "
            "members. Reconnect GitHub and grant it."
        )


class RateLimited(GitHubError):
    transient = True

    def __init__(self, reset_at: datetime):
        self.reset_at = reset_at.astimezone(UTC)
        super().__init__(
            f"GitHub rate limit reached; waiting until {self.reset_at:%H:%M} UTC, then the sync resumes by itself."
        )


class GitHubUnavailable(GitHubError):
    transient = True

    def __init__(self, reason: str = "it did not answer"):
        self.reason = reason
        super().__init__(f"GitHub is unavailable ({reason}). The sync will be retried; nothing to do for now.")


class MalformedResponse(GitHubError):
    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(
            f"GitHub sent an answer this app could not use ({detail}). Nothing was changed; "
            "try again later, and report it if it keeps happening."
        )


class OAuthError(GitHubError):
    _MESSAGES = {
        "bad_verification_code": "The GitHub authorization code is invalid or has expired. Connect GitHub again.",
        "incorrect_client_credentials": (
            "GitHub rejected this app's OAuth credentials. An operator must check GITHUB_CLIENT_ID and "
            "GITHUB_CLIENT_SECRET."
        ),
        "redirect_uri_mismatch": (
            "GitHub rejected the callback URL: it must match the OAuth App's registered callback URL. "
            "An operator must fix the OAuth App's settings."
        ),
        "access_denied": "GitHub access was not granted. Connect GitHub again and authorize the app.",
    }

    def __init__(self, code: str):
        self.code = code if _CODE.match(code) else "unknown_error"
        super().__init__(
            self._MESSAGES.get(self.code, f"GitHub could not complete the sign-in ({self.code}). Connect GitHub again.")
        )
