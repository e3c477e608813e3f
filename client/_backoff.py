"""Reconnect pacing for long-lived watches: exponential backoff with jitter, and how long to keep trying.

Shared by `wait_for_deployment` (sync and async) and the `TrafficRouter`, which
both resume a server stream after the controller went away. The channel's own
retry policy only covers the moment a call starts; these loops cover a stream
that broke after it had delivered messages.
"""

from __future__ import annotations

import random
import time
from typing import Callable

#: First pause after a failure, and the ceiling the pauses double up to.
INITIAL_BACKOFF = 0.2
MAX_BACKOFF = 5.0


class Backoff:
    """Counts consecutive failures; `delay()` is the pause before the next attempt.

    Each pause is drawn between half and all of `initial * 2**(failures-1)` (capped),
    so that many clients cut off by one restart do not all come back at the same instant.
    `give_up_after` bounds how long a connection may stay lost (None: forever);
    `failed()` returns False once it is spent.
    """

    def __init__(self, *, initial: float = INITIAL_BACKOFF, maximum: float = MAX_BACKOFF,
                 give_up_after: float | None = None, clock: Callable[[], float] = time.monotonic,
                 rng: Callable[[float, float], float] = random.uniform) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.give_up_after = give_up_after
        self._clock = clock
        self._rng = rng
        self.failures = 0
        self._lost_since: float | None = None

    def succeeded(self) -> None:
        """The connection works again: the next failure starts from the first pause."""
        self.failures = 0
        self._lost_since = None

    def failed(self) -> bool:
        """Record a failure; False when the connection has been lost for longer than `give_up_after`."""
        now = self._clock()
        if self._lost_since is None:
            self._lost_since = now
        self.failures += 1
        return self.give_up_after is None or now - self._lost_since <= self.give_up_after

    def delay(self) -> float:
        if self.failures == 0:
            return 0.0
        ceiling = min(self.maximum, self.initial * 2 ** min(self.failures - 1, 30))
        return self._rng(ceiling / 2, ceiling)
