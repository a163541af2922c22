"""The hardware clock: the host's monotonic clock."""

from __future__ import annotations

import time


class MonotonicClock:
    """hal.clock.Clock on real hardware: seconds since this object was made."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def sleep_until(self, t_s: float) -> None:
        delay = t_s - self.now_s()
        if delay > 0:
            time.sleep(delay)
