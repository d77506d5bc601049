from django.urls import path

from integrations.live import team_events
from integrations.views import github_app, github_webhook, member_changes, members, notification_settings, onboarding

app_name = "integrations"

urlpatterns = [
    # Not team-scoped: during onboarding there is no team yet.
    path("github/connect/", onboarding.github_connect, name="github_connect"),
    path("github/callback/", onboarding.github_callback, name="github_callback"),
    path("github/organizations/", onboarding.github_select_org, name="github_select_org"),
    # The GitHub App's install link, and its setup URL (also its user authorization callback URL).
    path("github/app/install/", github_app.github_app_install, name="github_app_install"),
    path("github/app/setup/", github_app.github_app_setup, name="github_app_setup"),
    # Not team-scoped either: GitHub sends every delivery to one URL; the payload names the organization.
    path("github/webhook/", github_webhook.github_webhook, name="github_webhook"),
    path("t/<slug:team_slug>/github/members/", members.github_members, name="github_members"),
    path("t/<slug:team_slug>/github/members/sync/", members.github_members_sync, name="github_members_sync"),
    path(
        "t/<slug:team_slug>/github/members/<int:github_id>/",
        member_changes.github_member_history,
        name="github_member_history",
    ),
    path(
        "t/<slug:team_slug>/github/members/export/", member_changes.github_members_export, name="github_members_export"
    ),
    path(
        "t/<slug:team_slug>/github/members/sync/progress/",
        members.github_members_sync_progress,
        name="github_members_sync_progress",
    ),
    path(
        "t/<slug:team_slug>/github/members/held/confirm/",
        members.github_members_held_confirm,
        name="github_members_held_confirm",
    ),
    path(
        "t/<slug:team_slug>/github/members/held/dismiss/",
        members.github_members_held_dismiss,
        name="github_members_held_dismiss",
    ),
    path(
        "t/<slug:team_slug>/github/members/runs/<int:run_id>/",
        members.github_member_sync_run,
        name="github_member_sync_run",
    ),
    # Where the team's notifications go, Send test, and the delivery log.
    path(
        "t/<slug:team_slug>/github/notifications/",
        notification_settings.github_notifications,
        name="github_notifications",
    ),
    path(
        "t/<slug:team_slug>/github/notifications/test/",
        notification_settings.github_notifications_test,
        name="github_notifications_test",
    ),
    path(
        "t/<slug:team_slug>/github/notifications/deliveries/<int:delivery_id>/redeliver/",
        notification_settings.github_notifications_redeliver,
        name="github_notifications_redeliver",
    ),
    # The team's Server-Sent-Events stream; integrations.live.channels decides who may read it.
    path("t/<slug:team_slug>/events/", team_events.team_events, name="github_member_events"),
]
