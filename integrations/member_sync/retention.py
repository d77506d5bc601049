"""How long the change records are kept (docs/interfaces.md#what-changed): the schedule's pass prunes
MemberChange rows older than MEMBER_CHANGES_KEEP_DAYS, the oldest first.

A table of a few large organizations' changes can hold millions of rows, and the first pass after a
deployment may find a year's backlog: one DELETE of every old row would hold its locks (on SQLite, the
whole database's) for as long as it takes. So each pass deletes a bounded number of batches, each one
DELETE of the oldest rows by primary key, found by the index on `at` (member_changes_by_age), in its
own short transaction; what is left the next pass takes. Every worker process runs the pass: two at
once delete different rows, or one waits for the other's batch and finds its rows gone.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from integrations.models import MemberChange

BATCH_SIZE = 1000
BATCHES_A_PASS = 10


def prune_member_changes(
    *, now: datetime | None = None, batch_size: int = BATCH_SIZE, batches: int = BATCHES_A_PASS
) -> int:
    """Delete up to batches x batch_size of the changes older than MEMBER_CHANGES_KEEP_DAYS, oldest
    first (none when it is 0: kept forever); return how many. One statement a batch."""
    days = settings.MEMBER_CHANGES_KEEP_DAYS
    if days <= 0:
        return 0
    old = MemberChange.objects.filter(at__lt=(now or timezone.now()) - timedelta(days=days))
    pruned = 0
    for _ in range(batches):
        oldest = old.order_by("at").values("pk")[:batch_size]
        # Nothing refers to a change and no signal listens for its deletion: Django sends this as
        # one DELETE … WHERE id IN (SELECT id … ORDER BY at LIMIT batch_size).
        deleted, _ = MemberChange.objects.filter(pk__in=oldest).delete()
        pruned += deleted
        if deleted < batch_size:
            break
    return pruned
