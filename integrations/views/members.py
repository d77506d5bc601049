"""The members page of a team's GitHub integration, and the Sync Now action."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from integrations import words
from integrations.github import app
from integrations.member_sync.held_deactivations import (
    confirm_held_deactivations,
    dismiss_held_deactivations,
    held_members,
)
from integrations.member_sync.runs import SyncAlreadyChanging
from integrations.member_sync.sync_status import integration_of, status_context
from integrations.member_sync.tasks import request_member_sync
from integrations.models import GitHubIntegration, GitHubMember, MemberChange, MemberSyncRun, avatar_thumbnail_url
from teams.decorators import login_and_team_required, team_admin_required

MEMBERS_PER_PAGE = 50
HELD_SHOWN = 100
CHANGES_SHOWN = 500
ROLE_LABELS = dict(GitHubMember.Role.choices)


# The header the page's script sends for the status partial; a plain form POST (no JavaScript) gets a redirect.
PARTIAL_HEADER = "X-Member-Sync-Partial"


def _wants_partial(request):
    return request.headers.get(PARTIAL_HEADER) == "status"


@require_GET
@login_and_team_required
def github_members(request, team_slug):
    context = status_context(request)
    integration = context["integration"]
    if integration is not None:
        context.update(member_list_context(request, integration))
        held = held_members(integration).order_by("login", "pk").values_list("login", flat=True)
        shown = list(held[:HELD_SHOWN])
        # Counted only when there are more than shown: most pages have none, and no statement for it.
        context.update(held_count=held.count() if len(shown) == HELD_SHOWN else len(shown), held_members=shown)
    # The App's connection belongs to the organization, not to a person: offered to a team without it,
    # or whose installation is gone or suspended.
    context["offer_github_app"] = (
        context["is_admin"]
        and app.configured()
        and (
            integration is None
            or integration.connection != GitHubIntegration.Connection.APP
            or bool(integration.sync_stopped_reason)
        )
    )
    return render(request, "integrations/github_members.html", context)


def member_list_context(request, integration):
    members = GitHubMember.objects.filter(integration=integration)
    # PostgreSQL cannot compare text with a NUL in it: no login or name has one anyway.
    query = request.GET.get("q", "").replace("\x00", "").strip()[:100]
    role = request.GET.get("role", "")
    state = request.GET.get("state", "active")
    if query:
        members = members.filter(Q(login__icontains=query) | Q(name__icontains=query))
    if role in GitHubMember.Role.values:
        members = members.filter(role=role)
    members = members.filter(is_active=(state != "inactive"))
    # Only the columns the table shows, as dictionaries: model instances took twice as long to build,
    # and the template twice as long to read (get_role_display rebuilds the choices at each call).
    shown = members.values("github_id", "login", "name", "role", "avatar_url", "left_at").order_by("login", "pk")
    page = Paginator(shown, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            **member,
            "role_label": ROLE_LABELS.get(member["role"], member["role"]),
            "avatar_thumbnail_url": avatar_thumbnail_url(member["avatar_url"]),
        }
        for member in page
    ]
    return {"members_page": page, "members": rows, "query": query, "role": role, "state": state}


@require_POST
@team_admin_required
def github_members_sync(request, team_slug):
    integration = integration_of(request.team)
    refusal = words.NOT_CONNECTED if integration is None else integration.sync_stopped_reason
    if refusal or integration is None:
        if _wants_partial(request):
            return render(request, "integrations/partials/member_sync_status.html", {"error": refusal}, status=409)
        messages.error(request, refusal)
        return redirect("integrations:github_members", team_slug=team_slug)
    try:
        run, created = request_member_sync(
            integration=integration, trigger=MemberSyncRun.Trigger.MANUAL, requested_by=request.user
        )
    except SyncAlreadyChanging:
        # Runs of this integration started and ended under this request: one is under way, or just was.
        run, created = None, False
    error = run.error if run is not None and created and run.status == MemberSyncRun.Status.ERROR else ""
    if _wants_partial(request):
        response = render(request, "integrations/partials/member_sync_status.html", status_context(request))
        response.status_code = 202 if created and not error else 200
        return response
    if not created:
        messages.info(request, "A sync is already under way.")
    elif error:
        messages.error(request, error)
    return redirect("integrations:github_members", team_slug=team_slug)


@require_GET
@login_and_team_required
def github_members_sync_progress(request, team_slug):
    return render(request, "integrations/partials/member_sync_status.html", status_context(request))


@require_GET
@team_admin_required
def github_member_sync_run(request, team_slug, run_id):
    """One member sync of the team, in full: what started it, how it went, and what to do about it."""
    runs = MemberSyncRun.objects.filter(integration__team=request.team)
    run = get_object_or_404(runs.select_related("integration", "requested_by"), pk=run_id)
    context = {"team": request.team, "run": run, "held_members": None}
    # Holds stay on the members until an admin decides, whichever run held them: the latest complete
    # run's count is theirs, an earlier run's count is history.
    latest_complete = runs.filter(status=MemberSyncRun.Status.COMPLETE).values_list("pk", flat=True).first()
    if run.members_held and run.pk == latest_complete:
        context["held_members"] = held_members(run.integration).order_by("login", "pk")[:HELD_SHOWN]
    context.update(_changes_context(run, request.GET.get("kind", "")))
    return render(request, "integrations/member_sync_run.html", context)


def _changes_context(run, kind):
    """The run's changes, of one kind if asked, the first CHANGES_SHOWN by kind and login, with the
    count of each kind for the filter."""
    counts = run.change_counts if run.change_counts is not None else run.count_changes()
    kinds = [(value, label, counts[value]) for value, label in MemberChange.Kind.choices if value in counts]
    kind = kind if kind in counts else ""
    changes = run.member_changes.filter(kind=kind) if kind else run.member_changes.all()
    return {
        "change_kinds": kinds,
        "change_kind": kind,
        "changes": changes.select_related("by").order_by("kind", "login", "pk")[:CHANGES_SHOWN],
        "changes_total": counts.get(kind, 0) if kind else sum(counts.values()),
    }


@require_POST
@team_admin_required
def github_members_held_confirm(request, team_slug):
    """Deactivate the members a sync held back (docs/architecture.md#who-may-deactivate)."""
    confirm_held_deactivations(integration=get_object_or_404(GitHubIntegration, team=request.team), by=request.user)
    return redirect("integrations:github_members", team_slug=team_slug)


@require_POST
@team_admin_required
def github_members_held_dismiss(request, team_slug):
    """Keep the members a sync held back active."""
    dismiss_held_deactivations(integration=get_object_or_404(GitHubIntegration, team=request.team), by=request.user)
    return redirect("integrations:github_members", team_slug=team_slug)
