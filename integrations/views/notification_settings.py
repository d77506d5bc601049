"""A team's notification settings (github_notifications, admins only): the endpoint's URL and secret,
Send test, and the delivery log with Redeliver (docs/interfaces.md#notifications)."""

from django import forms
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from integrations import words
from integrations.models import NotificationDelivery, NotificationEndpoint
from integrations.notifications import deliveries, outbox, signing
from integrations.notifications.url_safety import destination_problem
from teams.decorators import team_admin_required
from teams.models import Membership

DELIVERIES_SHOWN = 50


class EndpointForm(forms.Form):
    """The URL, and the secret, which is write-only: never rendered back, blank keeps the stored one."""

    url = forms.CharField(label="Endpoint URL", max_length=2000, required=False, strip=True)
    secret = forms.CharField(
        label="Secret",
        required=False,
        strip=True,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, has_secret: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_secret = has_secret
        self.fields["url"].widget.attrs.update(placeholder="https://hooks.example.com/member-sync", inputmode="url")
        if has_secret:
            self.fields["secret"].help_text = "A secret is stored. Leave this blank to keep it."

    def clean_url(self):
        url = self.cleaned_data["url"]
        if url and (problem := _url_problem(url)):
            raise forms.ValidationError(problem)
        return url

    @sensitive_variables("secret")
    def clean_secret(self):
        secret = self.cleaned_data["secret"]
        if secret and (problem := signing.secret_problem(secret)):
            raise forms.ValidationError(problem)
        return secret

    def clean(self):
        cleaned = super().clean() or {}
        if cleaned.get("url") and not cleaned.get("secret") and not self.has_secret and "secret" not in self.errors:
            self.add_error("secret", words.SIGNING_KEY_REQUIRED)
        return cleaned


def _url_problem(url: str) -> str:
    if any(character.isspace() or ord(character) < 32 for character in url):
        return words.URL_NOT_VALID
    return destination_problem(url)


@sensitive_post_parameters("secret")
@require_http_methods(["GET", "POST"])
@team_admin_required
def github_notifications(request, team_slug):
    endpoint = NotificationEndpoint.objects.filter(team=request.team).first()
    form = EndpointForm(
        request.POST if request.method == "POST" else None,
        has_secret=endpoint is not None,
        initial={"url": endpoint.url if endpoint else ""},
    )
    if request.method == "POST" and form.is_valid():
        _save(request, endpoint, url=form.cleaned_data["url"], secret=form.cleaned_data["secret"])
        return redirect("integrations:github_notifications", team_slug=team_slug)
    context = {
        "team": request.team,
        "form": form,
        "endpoint": endpoint,
        "deliveries": deliveries.recent(endpoint, DELIVERIES_SHOWN) if endpoint else [],
        # Offered to copy, random at each render; stored only once saved.
        "new_secret": signing.new_secret(),
        "event_types": outbox.TYPES,
        # Mail reaches only the admins with an address: the page says how many have none.
        "admins_without_email": Membership.objects.filter(
            team=request.team, role=Membership.Role.ADMIN, user__is_active=True, user__email=""
        ).count(),
    }
    return render(request, "integrations/notification_settings.html", context, status=400 if form.errors else 200)


@sensitive_variables("secret")
def _save(request, endpoint: NotificationEndpoint | None, *, url: str, secret: str) -> None:
    if not url:
        if endpoint is not None:
            endpoint.delete()
        messages.info(request, words.NOTIFICATIONS_OFF)
        return
    endpoint = endpoint or NotificationEndpoint(team=request.team)
    endpoint.url, endpoint.updated_at, endpoint.updated_by = url, timezone.now(), request.user
    if secret:
        endpoint.secret = secret
    try:
        with transaction.atomic():
            endpoint.save()
    except IntegrityError:  # another admin saved the team's first endpoint meanwhile: this later save wins
        NotificationEndpoint.objects.filter(team=request.team).update(
            url=url, updated_at=endpoint.updated_at, updated_by=request.user, encrypted_secret=endpoint.encrypted_secret
        )
    messages.success(request, words.NOTIFICATIONS_SAVED.format(url=url))


@require_POST
@team_admin_required
def github_notifications_test(request, team_slug):
    """Send one test message now and say how the receiver answered (at most a few seconds' wait)."""
    endpoint = NotificationEndpoint.objects.filter(team=request.team).first()
    if endpoint is None:
        messages.error(request, words.NOTIFICATIONS_NOT_SET)
    else:
        delivery = outbox.send_test(endpoint)
        if delivery.status == NotificationDelivery.Status.DELIVERED:
            messages.success(request, words.TEST_DELIVERED.format(status=delivery.last_status_code))
        else:
            messages.error(request, words.TEST_NOT_DELIVERED.format(answer=answer_text(delivery)))
    return redirect("integrations:github_notifications", team_slug=team_slug)


def answer_text(delivery: NotificationDelivery) -> str:
    status = words.DELIVERY_HTTP_STATUS.format(status=delivery.last_status_code) if delivery.last_status_code else ""
    return ": ".join(part for part in (status, delivery.answer) if part)


@require_POST
@team_admin_required
def github_notifications_redeliver(request, team_slug, delivery_id):
    """The same message sent again, as a new delivery with its own retries."""
    delivery = get_object_or_404(NotificationDelivery, pk=delivery_id, endpoint__team=request.team)
    deliveries.redeliver(delivery)
    messages.info(request, words.REDELIVERY_QUEUED)
    return redirect("integrations:github_notifications", team_slug=team_slug)
