"""Moments on pages: a <time> element in UTC, with the UTC time on hover. The page's script shows it
in the reader's time zone; without the script the UTC time stays, and says so."""

from datetime import UTC

from django import template
from django.utils.html import format_html

register = template.Library()

SHOWN = {
    "date": "%Y-%m-%d",
    "time": "%H:%M UTC",  # a moment within the day ahead
    "day": "%b %-d at %H:%M UTC",  # a moment within the year
    "minute": "%Y-%m-%d %H:%M UTC",
    "second": "%Y-%m-%d %H:%M:%S UTC",
}
# How static/js/local_times.js shows each in the reader's time zone.
LOCAL = {"date": "date", "time": "time", "day": "datetime", "minute": "datetime", "second": "datetime"}


@register.simple_tag
def utc_time(moment, precision="minute"):
    """Return the moment as a <time> element, shown as SHOWN names it."""
    if moment is None:
        return "—"
    moment = moment.astimezone(UTC)
    return format_html(
        '<time data-local="{}" datetime="{}" title="{}">{}</time>',
        LOCAL[precision],
        moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        moment.strftime(SHOWN[precision]),
    )
