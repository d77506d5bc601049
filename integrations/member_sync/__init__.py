"""The member sync: everything about a run, from the request to its last event."""
