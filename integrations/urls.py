from django.urls import path
from django_eventstream.views import events

from integrations.views import members

app_name = "integrations"

urlpatterns = [
    path("t/<slug:team_slug>/github/members/", members.github_members, name="github_members"),
    path("t/<slug:team_slug>/github/members/sync/", members.github_members_sync, name="github_members_sync"),
    path(
        "t/<slug:team_slug>/github/members/sync/progress/",
        members.github_members_sync_progress,
        name="github_members_sync_progress",
    ),
    # The team's Server-Sent-Events stream; integrations.channels decides who may read it.
    path("t/<slug:team_slug>/events/", events, name="github_member_events"),
]
