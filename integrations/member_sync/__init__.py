"""The member sync: everything about a run, from the request to its last event.

- tasks: requesting a run and its message on the queue; the Dramatiq actors.
- runs: the run's state machine, every transition guarded by a conditional UPDATE.
- sync, member_writes: reading an organization's members from GitHub and applying them.
- run_events: what a page shows of a run, and the event that carries it, built in one place.
- sync_status: what a page shows of a team's sync.
- held_deactivations: the guard's held deactivations, confirmed or dismissed by an admin.
- large_syncs, schedule, periodic: fairness between organizations, the scheduled full sync, and the
  worker's periodic checks.
- webhook_inbox, webhooks, healing: GitHub's deliveries received, applied as hints, and healed.
- run_logging: the run and team on every log line of a sync.
"""
