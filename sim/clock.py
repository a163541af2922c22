"""The sim's virtual clock: time moves only when the executive sleeps, as fast as the
CPU allows and identically on every run."""

from __future__ import annotations

from collections.abc import Callable


class VirtualClock:
    """hal.clock.Clock for the sim. Sleeping advances time; whatever listens (the
    world's physics) is brought up to the new time before `sleep_until` returns."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = start_s
        self._listeners: list[Callable[[float], None]] = []

    def now_s(self) -> float:
        return self._now_s

    def sleep_until(self, t_s: float) -> None:
        if t_s <= self._now_s:
            return
        for listener in self._listeners:
            listener(t_s)
        self._now_s = t_s

    def on_advance(self, listener: Callable[[float], None]) -> None:
        """Call `listener(t_s)` each time the clock is about to move to `t_s`."""
        self._listeners.append(listener)
