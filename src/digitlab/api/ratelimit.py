"""A token bucket per client address: the limit on anonymous corrections.

Each address may spend a burst of `per_minute` at once, then one more every 60/per_minute
seconds. The buckets live in the process: with several worker processes each keeps its
own, so the service as a whole allows up to workers x per_minute. Addresses idle long
enough to have a full bucket again are dropped, so the table stays small under a flood
of addresses.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# Past this many addresses, those whose bucket has refilled are dropped (a full bucket
# is the same as none).
SWEEP_EVERY = 1024


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)
        self._lock = threading.Lock()  # handlers run in the thread pool

    def take(self, client: str) -> float:
        """Spend one token of `client`: 0.0 when allowed, else the seconds to wait."""
        if self.capacity <= 0:
            return math.inf
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.refill_per_s)
            if len(self._buckets) > SWEEP_EVERY:
                self._sweep(now)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.refill_per_s

    def peek(self, client: str) -> float:
        """Like `take` without spending: 0.0 while `client` has a token left, else the
        seconds until it has one."""
        if self.capacity <= 0:
            return math.inf
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.refill_per_s)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.refill_per_s

    def _sweep(self, now: float) -> None:
        full_after = self.capacity / self.refill_per_s
        for client, (_, when) in list(self._buckets.items()):
            if now - when >= full_after:
                del self._buckets[client]
