import json

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations import crypto, words
from teams.models import Team


def max_length(model: type[models.Model], name: str) -> int:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.max_length is None:
        raise TypeError(f"{model.__name__}.{name} has no max_length")
    return field.max_length


class MemberSyncStatus(models.TextChoices):
    PENDING = "pending", "Never synced"
    QUEUED = "queued", "Queued"
    SYNCING = "syncing", "Syncing"
    COMPLETE = "complete", "Complete"
    ERROR = "error", "Error"


ACTIVE_SYNC_STATUSES = [MemberSyncStatus.QUEUED, MemberSyncStatus.SYNCING]


class GitHubIntegration(models.Model):
    """A team's connection to one GitHub organization, and the state of its latest member sync."""

    class Connection(models.TextChoices):
        OAUTH = "oauth", "OAuth App (a person's token)"
        APP = "app", "GitHub App installation"

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="github_integration")
    organization_login = models.CharField(max_length=255)
    organization_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # How the team reaches GitHub (docs/interfaces.md#models); db_default so that code from before
    # this column can still insert rows while a deployment rolls out.
    connection = models.CharField(
        max_length=10, choices=Connection.choices, default=Connection.OAUTH, db_default=Connection.OAUTH
    )
    # The GitHub App installation on the organization, for Connection.APP: its tokens are minted
    # when needed (integrations/github/app.py), never stored.
    installation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    installation_suspended_at = models.DateTimeField(null=True, blank=True)
    # Set when GitHub says the connection is gone for good (the App uninstalled, the organization
    # deleted): the integration says so and is no longer synced.
    disconnected_at = models.DateTimeField(null=True, blank=True)
    disconnected_reason = models.TextField(blank=True, default="", db_default="")
    # The last webhook delivery that named this integration's organization (the members page says it).
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    # When the scheduled full re-sync is next due (MEMBER_SYNC_EVERY_SECONDS,
    # docs/deploy.md#2-environment-variables).
    next_full_sync_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Never the token itself: see access_token below and integrations/crypto.py.
    encrypted_access_token = models.TextField(blank=True, editable=False)
    scopes = models.CharField(max_length=500, blank=True, help_text="Scopes GitHub granted, comma-separated.")
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connected_at = models.DateTimeField(default=timezone.now)

    member_sync_status = models.CharField(
        max_length=10, choices=MemberSyncStatus.choices, default=MemberSyncStatus.PENDING
    )
    member_sync_started_at = models.DateTimeField(null=True, blank=True)
    member_sync_completed_at = models.DateTimeField(null=True, blank=True)
    member_sync_error = models.TextField(blank=True)
    member_sync_result = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "GitHub integration"

    def __str__(self):
        return f"{self.team} ↔ {self.organization_login}"

    @property
    def access_token(self) -> str:
        return crypto.decrypt(self.encrypted_access_token) if self.encrypted_access_token else ""

    @access_token.setter
    def access_token(self, token: str):
        self.encrypted_access_token = crypto.encrypt(token) if token else ""

    @property
    def has_access_token(self) -> bool:
        return bool(self.encrypted_access_token)

    @property
    def sync_stopped_reason(self) -> str:
        """Why members are no longer synced (GitHub said the connection is gone or suspended), or ""."""
        if self.disconnected_at:
            return self.disconnected_reason or words.CONNECTION_GONE
        if self.installation_suspended_at:
            return words.SYNCING_SUSPENDED
        return ""

    @property
    def description(self) -> str:
        """What the connection is, in a sentence's words: the page that asks to replace it says it."""
        if self.connection == self.Connection.APP:
            return f"the GitHub App's installation on {self.organization_login}"
        by = self.connected_by.get_username() if self.connected_by else "a former member"
        return f"{by}'s GitHub account (OAuth), reading {self.organization_login}"

    @property
    def installation_settings_url(self) -> str:
        """The App installation's page in the organization's settings on GitHub, where an owner
        unsuspends it or accepts its new permissions; "" without an installation."""
        if not self.installation_id:
            return ""
        organization = self.organization_login
        return f"{settings.GITHUB_WEB_URL}/organizations/{organization}/settings/installations/{self.installation_id}"


class MemberSyncRun(models.Model):
    """One member sync of one integration, from the request to its end: the run history."""

    Status = MemberSyncStatus

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        ONBOARDING = "onboarding", "Onboarding"
        WEBHOOK = "webhook", "Webhook"
        SCHEDULE = "schedule", "Schedule"

    # Defined once, in integrations.words, which GitHub's errors use too.
    ErrorKind = words.ErrorKind
    REMEDIES = words.REMEDIES

    integration = models.ForeignKey(GitHubIntegration, on_delete=models.CASCADE, related_name="member_sync_runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=MemberSyncStatus.choices, default=MemberSyncStatus.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    waiting_until = models.DateTimeField(
        null=True, blank=True, help_text="Set while the run waits for GitHub's rate limit to reset."
    )

    fetched = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    members_created = models.PositiveIntegerField(default=0)
    members_updated = models.PositiveIntegerField(default=0)
    members_deactivated = models.PositiveIntegerField(default=0)
    members_unchanged = models.PositiveIntegerField(default=0)
    members_held = models.PositiveIntegerField(
        default=0, help_text="Members missing from GitHub whose deactivation waits for an admin (too many at once)."
    )
    members_skipped = models.PositiveIntegerField(
        default=0, help_text="Members GitHub sent in a form that could not be read; nobody was then deactivated."
    )
    api_calls = models.PositiveIntegerField(default=0)
    # How many member changes of each kind the run recorded ({kind: count}), counted once when it
    # applies them: the members page and the notifications read it without counting the rows. NULL
    # (not {}) before then, so that code from before this column can still insert runs.
    change_counts = models.JSONField(null=True, blank=True)
    # GitHub's rate limit as the run last saw it, for the operator's metrics (ops/metrics.py).
    rate_limit_remaining = models.PositiveIntegerField(null=True, blank=True)
    rate_limit_reset_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["integration", "-queued_at"], name="member_sync_run_history")]
        constraints = [
            # The database, not the application, guarantees one queued-or-syncing run at a time:
            # a double click or two admins at once cannot start two.
            models.UniqueConstraint(
                fields=["integration"],
                condition=Q(status__in=ACTIVE_SYNC_STATUSES),
                name="one_active_member_sync_per_integration",
            ),
        ]

    def __str__(self):
        return f"Member sync #{self.pk} of {self.integration.organization_login} ({self.status})"

    @property
    def remedy(self) -> str:
        """What to do about the run's error, or "" without one."""
        return self.REMEDIES.get(self.error_kind, "")

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    def count_changes(self) -> dict[str, int]:
        """{kind: count} of the member changes recorded for this run, counted from the rows."""
        counts = self.member_changes.values_list("kind").annotate(count=models.Count("pk"))
        return dict(counts.values_list("kind", "count"))

    def result(self) -> dict | None:
        """The summary in events (`result`, docs/interfaces.md#the-member-sync-event) and member_sync_result."""
        if self.status != MemberSyncStatus.COMPLETE:
            return None
        return {
            "created": self.members_created,
            "updated": self.members_updated,
            "deactivated": self.members_deactivated,
            "unchanged": self.members_unchanged,
            "total": self.total,
            # Deactivations held for an admin, and members that could not be read.
            "held": self.members_held,
            "skipped": self.members_skipped,
        }


# CSS pixels: the size the member table shows avatars at (static/css/app.css says the same).
AVATAR_SIZE = 20


def avatar_thumbnail_url(avatar_url: str) -> str:
    """The avatar at twice the size the member table shows it, sharp on high-density screens and a
    fraction of the full image: GitHub's avatar hosts (and Gravatar) read the size from `s`."""
    if not avatar_url:
        return ""
    return f"{avatar_url}{'&' if '?' in avatar_url else '?'}s={2 * AVATAR_SIZE}"


class GitHubMember(models.Model):
    """A member of the connected organization, keyed by GitHub's numeric user id, which survives
    login renames. Members who leave are marked inactive, never deleted."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        # GitHub answered no role (null): a member all the same, shown so rather than guessed.
        UNKNOWN = "unknown", "Unknown role"

    # Indexed by github_member_counts below, whose first column it is.
    integration = models.ForeignKey(GitHubIntegration, on_delete=models.CASCADE, related_name="members", db_index=False)
    github_id = models.BigIntegerField(help_text="GitHub's databaseId for the user.")
    node_id = models.CharField(max_length=100, blank=True)
    login = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    avatar_url = models.CharField(max_length=500, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # Set while the member, missing from GitHub, stays active because a run would have deactivated
    # too many members at once (docs/architecture.md#who-may-deactivate): an admin confirms or
    # dismisses it.
    deactivation_held_at = models.DateTimeField(null=True, blank=True)
    # When a webhook last changed this member: a full sync that began reading before then keeps the
    # change rather than undo it with its older snapshot (docs/architecture.md#who-may-deactivate).
    webhook_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "GitHub member"
        ordering = ["login"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "github_id"], name="one_member_per_github_user"),
        ]
        # The members page counts a team's active (or former) members and lists them in login order, a
        # page at a time. Django writes is_active=True as a bare `"is_active"` in the WHERE clause, which
        # SQLite matches against a partial index WHERE "is_active" but not against an index column: the
        # listing is a partial index, the counts read (integration, is_active) alone. Held members are
        # a few rows of an index of their own.
        indexes = [
            models.Index(fields=["integration", "is_active"], name="github_member_counts"),
            models.Index(
                fields=["integration", "login", "id"], condition=Q(is_active=True), name="github_member_active_listing"
            ),
            models.Index(
                fields=["integration", "login", "id"],
                condition=Q(deactivation_held_at__isnull=False),
                name="github_member_held_listing",
            ),
        ]

    def __str__(self):
        return self.login


class MemberChange(models.Model):
    """One change a run made to a member (docs/interfaces.md#what-changed): its kind, and what it was
    and became. Kept by the member's GitHub id, as the members are: a login is a name of the moment."""

    class Kind(models.TextChoices):
        ADDED = "added", "Added"
        REACTIVATED = "reactivated", "Back"
        DEACTIVATED = "deactivated", "Left"
        HELD = "held", "Held"
        ROLE_CHANGED = "role_changed", "Role"
        LOGIN_CHANGED = "login_changed", "Renamed"
        PROFILE_CHANGED = "profile_changed", "Profile"
        KEPT = "kept", "Kept"  # a held deactivation an admin dismissed

    # No index of its own: the indexes below begin with it.
    integration = models.ForeignKey(GitHubIntegration, on_delete=models.CASCADE, related_name="+", db_index=False)
    run = models.ForeignKey(MemberSyncRun, on_delete=models.CASCADE, related_name="member_changes")
    github_id = models.BigIntegerField()
    login = models.CharField(max_length=255)  # the member's login once the change was made
    kind = models.CharField(max_length=20, choices=Kind.choices)
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    at = models.DateTimeField()
    # The person whose decision it was (confirming or dismissing held deactivations); None for a sync's.
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["run", "kind"], name="member_changes_of_a_run"),
            models.Index(fields=["integration", "github_id", "at"], name="member_change_history"),
            # The changes export, oldest first, paged by (at, id) (integrations/exports.py).
            models.Index(fields=["integration", "at", "id"], name="member_changes_exported"),
            # The schedule prunes rows older than MEMBER_CHANGES_KEEP_DAYS by this.
            models.Index(fields=["at"], name="member_changes_by_age"),
        ]

    def __str__(self):
        return f"{self.login}: {self.kind}"

    @property
    def sides(self) -> tuple[str, str]:
        """Before and after as a person reads them: of a profile, only the fields that changed."""
        if self.kind != self.Kind.PROFILE_CHANGED:
            return self.before, self.after
        before, after = json.loads(self.before), json.loads(self.after)
        changed = [field for field in before if before[field] != after.get(field)]

        def described(side: dict) -> str:
            return "; ".join(f"{field}: {side[field]}" for field in changed)

        return described(before), described(after)


class ConnectionChange(models.Model):
    """Who connected a team to GitHub, replaced or renewed its connection, and when GitHub ended it
    (docs/interfaces.md#what-changed): the connection's own history, beside its members'."""

    class Kind(models.TextChoices):
        CONNECTED = "connected", "Connected"
        REPLACED = "replaced", "Replaced"
        RECONNECTED = "reconnected", "Reconnected"
        DISCONNECTED = "disconnected", "Disconnected"  # by GitHub: the App uninstalled, the organization deleted

    integration = models.ForeignKey(GitHubIntegration, on_delete=models.CASCADE, related_name="connection_changes")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The person who did it; None when GitHub did.
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["integration", "-at"], name="connection_history")]

    def __str__(self):
        return f"{self.integration}: {self.kind}"

    @classmethod
    def record(cls, integration: GitHubIntegration, kind: str, *, by=None, before: str = "") -> "ConnectionChange":
        """Record a change of the integration's connection, now as it is after it."""
        after = integration.disconnected_reason if kind == cls.Kind.DISCONNECTED else integration.description
        return cls.objects.create(integration=integration, kind=kind, by=by, before=before, after=after)


class StagedMember(models.Model):
    """A member as one run read it from GitHub, kept until the run applies its pages in one
    transaction. Pages land here as they arrive, so a worker holds one page in memory, not the
    organization; a run that fails or is cut short leaves them unapplied, and they are deleted. A NULL
    name or email (GitHub did not say: its REST API lists neither) keeps the member's stored one.
    """

    run = models.ForeignKey(MemberSyncRun, on_delete=models.CASCADE, related_name="+")
    github_id = models.BigIntegerField()
    node_id = models.CharField(max_length=100)
    login = models.CharField(max_length=255)
    name = models.CharField(max_length=255, null=True)  # noqa: DJ001 (NULL: GitHub did not say)
    email = models.CharField(max_length=255, null=True)  # noqa: DJ001 (NULL: GitHub did not say)
    avatar_url = models.CharField(max_length=500)
    role = models.CharField(max_length=10)

    class Meta:
        constraints = [
            # A member GitHub lists twice while the organization changes under the cursor counts once.
            models.UniqueConstraint(fields=["run", "github_id"], name="one_staged_member_per_run"),
        ]

    def __str__(self):
        return self.login


class WebhookDelivery(models.Model):
    """A webhook delivery already received, by GitHub's X-GitHub-Delivery id and by the SHA-256 of its
    body: a delivery GitHub sends again, or the same body under a new id, is answered and not applied
    twice (docs/architecture.md#webhooks). Kept longer than GitHub lets an owner redeliver."""

    delivery_id = models.CharField(max_length=100, unique=True)
    # NULL for rows from before bodies were remembered; NULLs never collide.
    body_sha256 = models.CharField(max_length=64, unique=True, null=True, blank=True)
    event = models.CharField(max_length=50)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.event} {self.delivery_id}"


class WebhookHealing(models.Model):
    """One pass of webhook healing (integrations/member_sync/healing.py): the App's recent deliveries read from
    GitHub, and those that failed asked for again. The members page shows the latest."""

    # The period the pass is for (its start in seconds since the epoch, divided by the period): unique, so
    # that of the workers that look at once one inserts the row and heals, and the others find it taken.
    slot = models.BigIntegerField(unique=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Deliveries GitHub listed in the window the pass looked at.
    deliveries_seen = models.PositiveIntegerField(default=0)
    redelivered_count = models.PositiveIntegerField(default=0)
    # What was asked for again, at most healing.REDELIVERED_KEPT of them:
    # [{"guid", "event", "action", "installation_id", "delivered_at"}].
    redelivered = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-slot"]

    def __str__(self):
        return f"Webhook healing at {self.started_at:%Y-%m-%d %H:%M}"


class NotificationEndpoint(models.Model):
    """Where a team's notifications go (docs/interfaces.md#notifications): a URL the team's admins
    chose and the secret its deliveries are signed with, as the Standard Webhooks specification says.
    The secret is stored encrypted like the tokens (integrations/crypto.py) and never shown again."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="notification_endpoint")
    url = models.CharField(max_length=2000)
    # Never the secret itself: see `secret` below. Not editable, so that no form (the admin's) shows it.
    encrypted_secret = models.TextField(editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self):
        return f"Notifications of {self.team}"

    @property
    def secret(self) -> str:
        """`whsec_<base64>`; raises crypto.TokenUnreadable when no configured key wrote it."""
        return crypto.decrypt(self.encrypted_secret)

    @secret.setter
    def secret(self, secret: str) -> None:
        self.encrypted_secret = crypto.encrypt(secret)


class NotificationDelivery(models.Model):
    """One notification sent, or being sent, to an endpoint: the delivery log its page shows. The
    body is kept as sent, so that every attempt and a redelivery sign and send the same bytes. Kept
    for DELIVERIES_KEPT (integrations/notifications/deliveries.py), pruned by age through an index."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(NotificationEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The Standard Webhooks message id (the `webhook-id` header): the same on every attempt and on a
    # redelivery, so that a receiver can tell the message it already handled.
    message_id = models.CharField(max_length=64)
    type = models.CharField(max_length=40)
    body = models.TextField()
    # The run it announces, for the log's link; None for a test or a connection a webhook said broke.
    run = models.ForeignKey(MemberSyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The last attempt: its HTTP status (None: no answer), and the first characters of the answer's
    # body, or what went wrong.
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    answer = models.TextField(blank=True)
    # Every attempt, oldest first: [{"at", "status_code", "answer"}].
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # While pending: when the next attempt is due. A worker that takes an attempt holds it until
    # claimed_until, so that two never make the same attempt.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "notification deliveries"
        indexes = [
            # The page's log: an endpoint's latest deliveries.
            models.Index(fields=["endpoint", "-created_at"], name="notification_delivery_log"),
            # Pruning by age.
            models.Index(fields=["created_at"], name="notification_delivery_age"),
            # Pending deliveries whose message was lost, looked for by the worker's periodic check.
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="notification_delivery_pending"
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.message_id} ({self.status})"
