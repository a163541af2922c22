"""The one clock interface: virtual in the sim, monotonic on hardware."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Seconds since an arbitrary epoch that never goes backwards."""

    def now_s(self) -> float:
        """The current time."""
        ...

    def sleep_until(self, t_s: float) -> None:
        """Return once `now_s() >= t_s`; at once when that time has passed."""
        ...
