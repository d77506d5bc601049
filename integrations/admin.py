from django.contrib import admin
from django_dramatiq.models import Task

from integrations.models import (
    ConnectionChange,
    GitHubIntegration,
    GitHubMember,
    MemberChange,
    MemberSyncRun,
    NotificationDelivery,
    NotificationEndpoint,
)

# django_dramatiq's task list, filled only by its AdminMiddleware, which the broker does not use
# (config/settings.py): it would list no message. The runs' admin below is the history.
admin.site.unregister(Task)


@admin.register(GitHubIntegration)
class GitHubIntegrationAdmin(admin.ModelAdmin):
    list_display = ["organization_login", "team", "member_sync_status", "member_sync_completed_at", "connected_at"]
    list_filter = ["member_sync_status"]
    search_fields = ["organization_login", "team__name", "team__slug"]
    list_select_related = ["team"]
    # The encrypted token column is not editable, so no form shows it; only whether one is stored.
    readonly_fields = [
        "has_access_token",
        "scopes",
        "connected_by",
        "connected_at",
        "member_sync_status",
        "member_sync_started_at",
        "member_sync_completed_at",
        "member_sync_error",
        "member_sync_result",
    ]
    fields = ["team", "organization_login", "organization_id", *readonly_fields]
    raw_id_fields = ["team"]

    def save_model(self, request, obj, form, change):
        # Only what the form changed: a sync or a reconnect may have written the rest meanwhile.
        obj.save(update_fields=form.changed_data if change else None)

    @admin.display(boolean=True, description="Token stored")
    def has_access_token(self, obj):
        return obj.has_access_token


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MemberSyncRun)
class MemberSyncRunAdmin(ReadOnlyAdmin):
    """Run history, for operators: read only, since runs are written by the worker alone."""

    list_display = [
        "id",
        "integration",
        "trigger",
        "status",
        "requested_by",
        "queued_at",
        "duration",
        "fetched",
        "total",
        "api_calls",
    ]
    list_filter = ["status", "trigger"]
    search_fields = ["integration__organization_login", "integration__team__slug", "error"]
    list_select_related = ["integration", "requested_by"]
    date_hierarchy = "queued_at"


@admin.register(GitHubMember)
class GitHubMemberAdmin(ReadOnlyAdmin):
    """Members as the last sync left them: read only, since the next sync would undo any edit."""

    list_display = ["login", "name", "role", "is_active", "integration", "first_seen_at", "left_at"]
    list_filter = ["is_active", "role"]
    search_fields = ["login", "name", "email", "github_id"]
    list_select_related = ["integration"]
    raw_id_fields = ["integration"]


@admin.register(MemberChange)
class MemberChangeAdmin(ReadOnlyAdmin):
    """What runs changed, member by member: read only, a record."""

    list_display = ["at", "kind", "login", "github_id", "integration", "run", "by"]
    list_filter = ["kind"]
    search_fields = ["login", "github_id", "integration__organization_login"]
    list_select_related = ["integration", "by"]
    raw_id_fields = ["integration", "run", "by"]
    date_hierarchy = "at"


@admin.register(ConnectionChange)
class ConnectionChangeAdmin(ReadOnlyAdmin):
    """Who connected, replaced or renewed each connection, and when GitHub ended one: read only, a record."""

    list_display = ["at", "kind", "integration", "by", "after"]
    list_filter = ["kind"]
    search_fields = ["integration__organization_login", "integration__team__slug"]
    list_select_related = ["integration", "by"]
    raw_id_fields = ["integration", "by"]


@admin.register(NotificationEndpoint)
class NotificationEndpointAdmin(ReadOnlyAdmin):
    """Where each team's notifications go. Never the secret: its encrypted column is not editable,
    so no form shows it, and no column here names it. Team admins change it on their page."""

    list_display = ["team", "url", "updated_at", "updated_by"]
    search_fields = ["team__slug", "team__name", "url"]
    list_select_related = ["team", "updated_by"]
    fields = ["team", "url", "updated_at", "updated_by"]


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log of every team, kept 30 days: read only, written by the worker alone."""

    list_display = ["id", "endpoint", "type", "status", "attempts", "last_status_code", "created_at", "last_attempt_at"]
    list_filter = ["status", "type"]
    search_fields = ["message_id", "endpoint__team__slug"]
    list_select_related = ["endpoint__team"]
    raw_id_fields = ["endpoint", "run"]
    date_hierarchy = "created_at"
