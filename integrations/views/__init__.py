"""The pages and actions of the GitHub integration, thin: each finds the team, checks who may act,
and calls the member sync or the connecting service. The event stream's view is in
integrations.live.
"""
