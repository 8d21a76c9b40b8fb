"""Per-API-key rate limit: a fixed window counted in the cache (O(1) per request).

Without REDIS_URL the cache is per process, so with N web processes a key may get up to
N times the limit; set REDIS_URL to share the count (README, deployment).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

PERIODS = {"second": 1, "minute": 60, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """'1200/minute' -> (1200, 60)."""
    count, _, period = rate.partition("/")
    if not count.strip().isdigit() or period.strip() not in PERIODS:
        raise ValueError(f"rate must look like '100/second', '1200/minute', not {rate!r}")
    return int(count), PERIODS[period.strip()]


class APIKeyRateThrottle(BaseThrottle):
    """Counts requests per authenticated credential (``request.auth.pk``)."""

    def allow_request(self, request, view) -> bool:
        if request.auth is None:
            return True
        limit, period = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        key = f"throttle:{request.auth.pk}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=period + 1)
            count = 1
        self._wait = (window + 1) * period - now
        return count <= limit

    def wait(self) -> float:
        return self._wait
