"""Live updates: a team's Server-Sent-Events stream, served by django-eventstream directly or held by
Pushpin (GRIP).

- channels: a team's channel, its current event id, and who may read it.
- streams: how many streams a user may hold, how long one lives, and the Redis listener that
  survives Redis going away.
- team_events: the stream's view, behind those rules.
"""
