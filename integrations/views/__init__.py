"""The GitHub integration's pages and actions, thin: each finds the team, checks who may act, and calls
the member sync or the connecting service (the event stream's view is integrations.live's)."""
