"""Refuse a client address that keeps failing to authenticate (guessing tokens)."""

from __future__ import annotations

import math
import time

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from reliability_studio.api.problems import TooManyRequestsError


class AuthThrottle:
    """Counts failed authentications per client address, and calls to the sign-in
    endpoints per address and per token, per process."""

    def __init__(self, limit: str, endpoint_limit: str = "60/minute") -> None:
        self._text = limit
        self._limit = limits.parse(limit)
        self._endpoint_text = endpoint_limit
        self._endpoint_limit = limits.parse(endpoint_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def endpoint(self, key: str) -> None:
        """Count one call to a sign-in or token endpoint by `key` (an address, or a token);
        429 with Retry-After over the limit."""
        if self._limiter.hit(self._endpoint_limit, "endpoint", key):
            return
        stats = self._limiter.get_window_stats(self._endpoint_limit, "endpoint", key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequestsError(
            f"too many sign-in or token requests (limit {self._endpoint_text}); "
            f"retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    def check(self, address: str) -> None:
        """429 with Retry-After while `address` is over its failure limit."""
        if self._limiter.test(self._limit, address):
            return
        stats = self._limiter.get_window_stats(self._limit, address)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequestsError(
            f"too many failed authentications from this address (limit {self._text}); "
            f"retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    def failed(self, address: str) -> None:
        """Count one failed authentication from `address`."""
        self._limiter.hit(self._limit, address)
