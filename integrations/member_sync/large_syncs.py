"""The slots of large organizations' syncs: at most MEMBER_SYNC_LARGE_CONCURRENCY of them run at
once across every worker, so that the other worker threads stay free for small teams
(docs/architecture.md#processes).

A slot is held by a run, by its id, in one Redis hash. A worker killed in the middle of a sync never
gives its slot back, but the run is not lost with it: the broker hands its message to another worker,
and the run's next attempt takes its own slot back; the stalled-run check frees the slots of runs
that ended (integrations/member_sync/periodic.py). Dramatiq's ConcurrentRateLimiter, used before, counts holders
without names: a killed holder's slot stayed taken until the counter's key expired, the sync time
limit plus a minute later, and the run's next attempt waited for it behind its own slot.
"""

from functools import cache

import redis
from django.conf import settings
from django.utils import timezone

from integrations.models import ACTIVE_SYNC_STATUSES, MemberSyncRun

# One step, so that two workers asking at once never both take the last slot: a run that holds a
# slot keeps it; otherwise it takes one if one is free.
_CLAIM = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 1
end
if redis.call('HLEN', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _key() -> str:
    return f"{settings.DRAMATIQ_NAMESPACE}:member-sync-large-running"


def claim(run_id: int) -> bool:
    """Take a slot for the run, or keep the one it holds; False when every slot is another run's."""
    claimed_at = timezone.now().isoformat()
    return bool(_redis().eval(_CLAIM, 1, _key(), run_id, settings.MEMBER_SYNC_LARGE_CONCURRENCY, claimed_at))


def release(run_id: int) -> None:
    _redis().hdel(_key(), run_id)


def holders() -> set[int]:
    return {int(run_id) for run_id in _redis().hkeys(_key())}


def release_ended() -> int:
    """Free the slots of runs that are no longer queued or syncing (their worker was killed, and the
    stalled-run check ended them) or no longer exist. Returns how many were freed."""
    held = holders()
    if not held:
        return 0
    active = set(
        MemberSyncRun.objects.filter(pk__in=held, status__in=ACTIVE_SYNC_STATUSES).values_list("pk", flat=True)
    )
    ended = held - active
    if ended:
        _redis().hdel(_key(), *ended)
    return len(ended)


def clear() -> None:
    """Free every slot (for tests)."""
    _redis().delete(_key())
