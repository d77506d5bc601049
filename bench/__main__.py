"""`make bench`: every benchmark, each printing its table and its bars."""

import os
import subprocess
import sys

from bench.support import ROOT

BENCHES = (
    "member_sync",
    "pipeline",
    "members_page",
    "exports",
    "schedule",
    "webhooks",
    "cluster_streams",
    "pushpin_restart",
    "sync_now_load",
)

# The environment `make bench` started with: each bench changes its own for Django's settings.
STARTED_WITH = dict(os.environ)


def run_alone(name):
    """One bench in a process of its own: it sets Django up on a database of its own, and Django,
    once set up in a process, stays on the first bench's (deleted by then)."""
    sys.stdout.flush()  # the tables printed so far come before its own
    subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, env=STARTED_WITH, check=True)


if __name__ == "__main__":
    for name in BENCHES:
        run_alone(name)
