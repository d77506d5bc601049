"""The test suite's settings: config.settings, kept apart from anything else on this machine's
Redis (another test run, `make run`) by a Dramatiq namespace and an event channel prefix of its
own. Processes the tests start inherit both through the environment."""

import os

_RUN = f"test{os.getpid()}"
os.environ.setdefault("DRAMATIQ_NAMESPACE", _RUN)
os.environ.setdefault("EVENTS_CHANNEL_PREFIX", f"{_RUN}-")

from config.settings import *  # noqa: E402, F403
