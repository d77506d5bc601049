"""Notifications: what a team's admins hear without watching a page. The end of a run and a
connection that broke, POSTed to the team's endpoint signed as the Standard Webhooks specification
says, retried with backoff for about a day, each attempt in a delivery log; and mail to the team's
admins when one of them must act (docs/interfaces.md#notifications).

Below the member sync, which announces each run's end here (`outbox`); it reads the models and
knows nothing of runs' transitions, events or GitHub.
"""
