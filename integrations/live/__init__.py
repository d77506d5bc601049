"""Live updates: a team's Server-Sent-Events stream, served by django-eventstream directly or held by
Pushpin (GRIP)."""
