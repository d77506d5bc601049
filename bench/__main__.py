"""`make bench`: every benchmark, each printing its table and its bars."""

import os
import subprocess
import sys

from bench import member_sync, members_page, pipeline, schedule, webhooks
from bench.support import ROOT

# The environment `make bench` started with: the benches run here change it for the next.
STARTED_WITH = dict(os.environ)


def run_alone(module):
    """A bench against `make cluster`, in a process of its own: it sets Django up on the cluster's
    PostgreSQL database, and Django, once set up in a process by an earlier bench, stays on its own."""
    sys.stdout.flush()  # the tables printed so far come before its own
    subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=STARTED_WITH, check=True)


if __name__ == "__main__":
    member_sync.main()
    pipeline.main()
    members_page.main()
    schedule.main()
    webhooks.main()
    run_alone("bench.cluster_streams")
    run_alone("bench.sync_now_load")
