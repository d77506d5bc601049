"""Live updates: a team's Server-Sent-Events stream, served by django-eventstream directly or held by
Pushpin (GRIP).

- channels: a team's channel, its current event id, and who may read it.
- streams: how many streams a user may hold, and how long one lives.
- team_events: the stream's view, behind those rules.
- eventstream: django-eventstream behind one module, the only one to import it: the storage, the Redis
  listener that survives Redis going away, closing a user's streams when access ends.
"""
