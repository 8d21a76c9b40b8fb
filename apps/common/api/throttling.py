"""Rate limits: fixed windows counted in the cache (O(1) per request), per API key or,
for public calls, per client address.

Without REDIS_URL the cache is per process, so with N web processes a key may get up to
N times the limit; set REDIS_URL to share the count (README, deployment).
"""

from __future__ import annotations

import abc
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


class FixedWindowThrottle(BaseThrottle, abc.ABC):
    """Counts requests per `identity` in fixed windows of the configured rate's period."""

    rate_setting = "API_RATE_LIMIT"

    @abc.abstractmethod
    def identity(self, request) -> str | None:
        """Who is counted; None lets the request through uncounted."""

    def allow_request(self, request, view) -> bool:
        identity = self.identity(request)
        if identity is None:
            return True
        limit, period = parse_rate(getattr(settings, self.rate_setting))
        now = time.time()
        window = int(now // period)
        key = f"throttle:{identity}:{window}"
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


class APIKeyRateThrottle(FixedWindowThrottle):
    """Counts requests per API key (``request.auth.pk``)."""

    def identity(self, request) -> str | None:
        return None if request.auth is None else f"key:{request.auth.pk}"


class PublicRateThrottle(FixedWindowThrottle):
    """Counts requests made with the public merchant id (no secret: ``request.auth`` is
    None) per merchant and client address, so one abusive client cannot exhaust a
    merchant's shoppers."""

    rate_setting = "PUBLIC_API_RATE_LIMIT"

    def identity(self, request) -> str | None:
        if request.auth is not None:
            return None
        # get_ident: REMOTE_ADDR, or X-Forwarded-For behind TRUSTED_PROXIES proxies.
        return f"public:{request.user.pk}:{self.get_ident(request)}"
