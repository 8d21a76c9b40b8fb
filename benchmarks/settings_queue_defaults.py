"""Tranche's settings with django-q2's own defaults for the cluster, for benchmarks/queue.py.

Only the broker (the ORM, on Tranche's database), the name (the signing salt, shared with the
process that enqueues) and the worker count (the same as Tranche's in the comparison) are
set; every other Q_CLUSTER value is left to django-q2 (timeout none, retry 60, save_limit
250, queue_limit workers², bulk 1, poll 0.2, max_attempts 0 = forever, catch_up True).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import Q_CLUSTER as TRANCHE_Q_CLUSTER

Q_CLUSTER = {
    "name": TRANCHE_Q_CLUSTER["name"],
    "orm": "default",
    "workers": int(os.environ.get("Q_WORKERS", "2")),
}
