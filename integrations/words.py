"""What a person reads, written once: the headlines of a member sync, why a run failed or waits and
what fixes it, what connecting GitHub says when it cannot go on, and the one ErrorKind. A GitHub
answer's message stays beside the answer it maps (integrations/github/errors.py).

A leaf: it imports nothing of the product, so every layer may read it.
"""

from django.conf import settings
from django.db import models


class ErrorKind(models.TextChoices):
    """Why a run ended in error, by who can fix it: the page offers the one fix that applies."""

    CREDENTIALS = "credentials", "GitHub no longer accepts the connection"  # reconnecting fixes it
    INSTALLATION = "installation", "The GitHub App is no longer installed"  # installing it again
    SUSPENDED = "suspended", "The GitHub App's installation is suspended"  # an owner unsuspends it
    PERMISSIONS = "permissions", "The GitHub App lacks the Members permission"  # an owner grants or accepts it
    ORGANIZATION = "organization", "The organization does not let this app read its members"  # an owner
    GITHUB = "github", "GitHub failed or answered in part"  # syncing again later
    INTERRUPTED = "interrupted", "The sync was interrupted"  # syncing again
    UNEXPECTED = "unexpected", "Unexpected error"


# What an admin does about each kind of error, in one line: the run detail page says it.
REMEDIES: dict[str, str] = {
    ErrorKind.CREDENTIALS: "Connect GitHub again: a new connection gives the team a token GitHub accepts.",
    ErrorKind.INSTALLATION: "Install the GitHub App on the organization again.",
    ErrorKind.SUSPENDED: (
        "Ask an owner of the organization to unsuspend the GitHub App (organization settings, GitHub Apps); "
        "syncing resumes by itself."
    ),
    ErrorKind.PERMISSIONS: (
        "Ask an owner of the organization to accept the GitHub App's requested permissions (organization "
        "settings, GitHub Apps): it needs read access to Members. Syncing resumes by itself."
    ),
    ErrorKind.ORGANIZATION: "Ask an owner of the organization to allow this app to read its members.",
    ErrorKind.GITHUB: "Nothing to change here: sync again later, once GitHub answers in full.",
    ErrorKind.INTERRUPTED: "Sync again: a new run starts from the beginning.",
    ErrorKind.UNEXPECTED: "Sync again; if it fails the same way, tell the people who run this service.",
}

# The errors a person can fix from this app, and how: the page offers that fix and no other.
HINTS: dict[str, str] = {
    ErrorKind.CREDENTIALS: "reconnect",
    ErrorKind.INSTALLATION: "reinstall",
    # Only an owner of the organization can: the page links them to the installation's settings.
    ErrorKind.SUSPENDED: "owner",
    ErrorKind.PERMISSIONS: "owner",
}

# A member sync's headline by the run's status (integrations.models.MemberSyncStatus).
HEADLINES = {
    "pending": "Members from {organization} have not been imported yet.",
    "queued": "Importing members from {organization}…",
    "syncing": "Importing members from {organization}…",
    "complete": "Imported {imported} members from {organization}.",
    "error": "Importing members from {organization} failed.",
}

# Why a run failed or waits, when GitHub did not say.
_LIMIT = settings.MEMBER_SYNC_TIME_LIMIT_SECONDS
TIMED_OUT = (
    f"The sync took longer than {f'{_LIMIT // 60} minutes' if _LIMIT >= 120 else f'{_LIMIT} seconds'} and was "
    "stopped. Press Sync Now to try again."
)
SHUTTING_DOWN = "The worker is restarting; the sync will start again shortly."
SHUT_DOWN_TOO_OFTEN = "Workers restarted during this sync too many times. Press Sync Now to try again."
UNEXPECTED = "The sync failed unexpectedly. Press Sync Now to try again; if it fails again, contact support."
INTERRUPTED = "The sync was interrupted before it finished. Press Sync Now to run it again."
RECONNECT_NEEDED = "The stored GitHub token can no longer be read. Reconnect GitHub."
QUEUE_UNAVAILABLE = "The sync queue is unavailable, so the sync could not start. Try again in a minute."
WAITING_FOR_LARGE_SYNCS = "Other large organizations are syncing; this sync starts when one of them is done."
WORKER_LOST = "The worker running this sync stopped before it finished. Press Sync Now to run it again."
WEBHOOK_FAILED = "A change GitHub announced could not be applied; it is tried again, and the next full sync brings it."
QUEUED_TOO_LONG = "This sync waited too long for a worker and was cancelled. Press Sync Now to run it again."

# Why members are no longer synced.
NOT_CONNECTED = "Connect GitHub before syncing members."
CONNECTION_GONE = "The connection to GitHub is gone. Connect GitHub again."
SYNCING_SUSPENDED = "The GitHub App's installation is suspended: an organization owner can unsuspend it."
ORGANIZATION_DELETED = "The GitHub organization {login} was deleted."
APP_UNINSTALLED = "The GitHub App was uninstalled from {login}. Install it again to keep members in sync."

# Connecting through OAuth (Connect GitHub): the problem pages' titles, then their words.
NOT_CONNECTED_TITLE = "GitHub was not connected"
GITHUB_NOT_CONFIGURED_TITLE = "GitHub is not configured"
GITHUB_BUSY = "GitHub is busy"
GITHUB_UNAVAILABLE_TITLE = "GitHub is unavailable"
GITHUB_NOT_CONFIGURED = (
    "GitHub is not configured on this server, so it cannot be connected. "
    "An operator must set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET."
)
SIGN_IN_NOT_STARTED = "This GitHub sign-in was not started here, or was already used. Start again with Connect GitHub."
SIGN_IN_WRONG_STATE = (
    "GitHub's answer does not belong to the sign-in started here, so it was refused. Start again with Connect GitHub."
)
SIGN_IN_EXPIRED = "The GitHub sign-in took longer than {minutes} minutes and expired. Start again with Connect GitHub."
NO_CODE = "GitHub sent no authorization code. Start again with Connect GitHub."
GITHUB_UNAVAILABLE = "GitHub did not answer as expected, so nothing was connected. Try again in a few minutes."
SIGN_IN_UNREADABLE = "The GitHub sign-in can no longer be read on this server. Start again with Connect GitHub."
# The team page greets with it, above the live banner (the seed plan's words).
CONNECTED = "Connected to {organization}. Members syncing in background."
REPLACEMENT_UNCONFIRMED = (
    "The team got a GitHub connection while you were on GitHub, and you did not confirm replacing it, "
    "so nothing was changed. Start again to replace it."
)
ORGANIZATION_NOT_YOURS = "That organization is not one of your GitHub organizations. Choose one from the list."
NOT_THE_ORGANIZATIONS = (
    "The GitHub account you authorized does not belong to {login}. Connect GitHub again with an account that does."
)

# Connecting through the GitHub App (Install the GitHub App).
APP_NOT_CONNECTED = "The GitHub App was not connected"
APP_NOT_CONFIGURED = "The GitHub App is not configured"
INSTALL_NOT_STARTED = (
    "This GitHub App installation was not started here, or was already used. Start again with Install the GitHub App."
)
INSTALL_WRONG_STATE = (
    "GitHub's answer does not belong to the installation started here, so it was refused. "
    "Start again with Install the GitHub App."
)
NO_INSTALLATION = "GitHub named no installation of the App. Start again with Install the GitHub App."
INSTALL_REQUESTED = (
    "Your request to install the GitHub App was sent to the organization's owners. Once an owner "
    "installs it, start again with Install the GitHub App."
)
INSTALLATION_NOT_REACHABLE = (
    "That installation of the GitHub App is not one your GitHub account can reach, so nothing was "
    "connected. Install the GitHub App on your organization, then try again."
)
NOT_AN_ORGANIZATION = (
    "The GitHub App was installed on a personal account, not an organization, so there are no members "
    "to import. Install it on an organization."
)
INSTALLATION_SUSPENDED = (
    "The App's installation on {login} is suspended, so it cannot read the members. An organization "
    "owner must unsuspend it (Settings › GitHub Apps), then start again."
)
NOT_AN_OWNER = (
    "Only an owner of {login} can connect its GitHub App installation: it reads every member, "
    "concealed ones and their emails included. Nothing was connected. Ask an owner of {login} to connect it."
)
APP_REPLACEMENT_UNCONFIRMED = (
    "{team} reads GitHub through {now}. Replacing that needs your confirmation, so nothing was changed: "
    "press Install the GitHub App on {team}'s members page and confirm."
)
WRONG_ORGANIZATION = (
    "This team is connected to {connected}, but the GitHub App was installed on {installed}. "
    "Install it on {connected} instead."
)

# Answered to GitHub's delivery log, which whoever set the webhook up reads.
WEBHOOKS_NOT_CONFIGURED = "Webhooks are not configured on this server (no GITHUB_WEBHOOK_SECRET)."


# What a run changed, in one line (the members page): its kinds in this order, each "+2", "−3" or "1 renamed".
_CHANGE_SUMMARY = (
    (("added", "reactivated"), "+{count}"),
    (("deactivated",), "−{count}"),
    (("held",), "{count} held"),
    (("kept",), "{count} kept"),
    (("login_changed",), "{count} renamed"),
    (("role_changed",), "{count} role changed"),
    (("profile_changed",), "{count} profile changed"),
)
NO_CHANGES = "no changes"


def change_summary(counts: dict[str, int]) -> str:
    """ "+2 · −3 · 1 renamed" for {kind: count} of a run's changes; NO_CHANGES for none."""
    parts = []
    for kinds, text in _CHANGE_SUMMARY:
        count = sum(counts.get(kind, 0) for kind in kinds)
        if count:
            parts.append(text.format(count=count))
    return " · ".join(parts) or NO_CHANGES


# Notifications (integrations/notifications/): why the settings page refuses a secret or a URL.
SIGNING_KEY_FORM = "The secret must be whsec_ followed by base64, as the Standard Webhooks specification says."
SIGNING_KEY_LENGTH = "The secret must hold 24 to 64 bytes (whsec_ and 32 to 88 base64 characters)."
URL_NOT_VALID = "Enter a full URL, such as https://hooks.example.com/member-sync."
URL_WITH_USERINFO = "The URL may not hold a user name or password: the signature authenticates each delivery."
URL_NOT_HTTPS = "The URL must start with https://: notifications are not sent in the clear."
URL_OWN_SITE = "The URL points at this site itself; give your receiver's."
URL_HOST_UNKNOWN = "{host} could not be resolved to an address."
URL_PRIVATE_ADDRESS = (
    "{host} resolves to {address}, a private, loopback or otherwise internal address: notifications go only "
    "to public addresses."
)

# A delivery's attempt, as its log says it (integrations/notifications/deliveries.py).
SIGNING_KEY_UNREADABLE = "The stored secret can no longer be read with this server's keys: save a new secret."
DELIVERY_HTTP_STATUS = "HTTP {status}"
DELIVERY_TIMED_OUT = "No answer within {seconds} seconds."
DELIVERY_NO_CONNECTION = "Could not connect: {reason}"
DELIVERY_REDIRECT = "Redirected to {location}, which is not followed: set the final URL."

# Mail to a team's admins, when one of them must act (integrations/notifications/admin_mail.py).
MAIL_HELD_SUBJECT = "{team}: {held} deactivations wait for your decision"
MAIL_HELD = (
    "A sync of {organization} would have deactivated {held} members at once, more than this team allows "
    "without a decision, so they stay active until an admin confirms or dismisses it on the members page:\n\n"
    "{members_url}\n\nThe sync: {run_url}\n"
)
MAIL_BROKEN_SUBJECT = "{team}: the connection to GitHub stopped working"
MAIL_BROKEN = "Members of {organization} are no longer kept in sync.\n\n{error}\n\nWhat to do: {remedy}\n\n{url}\n"
MAIL_FAILING_SUBJECT = "{team}: the last {streak} syncs of {organization} failed"
MAIL_FAILING = (
    "The last {streak} member syncs of {organization} failed. The latest said:\n\n{error}\n\n"
    "What to do: {remedy}\n\n{url}\n"
)
MAIL_FOOTER = "\n--\nYou receive this as an admin of {team} on Member Sync."

# The notification settings page's answers (integrations/views/notification_settings.py).
SIGNING_KEY_REQUIRED = "Give a secret: copy the one offered below, or your receiver's."
NOTIFICATIONS_SAVED = "Notifications will be sent to {url}."
NOTIFICATIONS_OFF = "Notifications are off: no URL is set."
NOTIFICATIONS_NOT_SET = "Save a URL and a secret before sending a test."
TEST_DELIVERED = "The test was delivered: HTTP {status}."
TEST_NOT_DELIVERED = "The test was not delivered: {answer}"
REDELIVERY_QUEUED = "The notification is being sent again; its new row below shows how it goes."
