"""The base of components that own a board: polled housekeeping, and events when the
board stops answering and when it comes back.

A board fed by a switched power rail is not polled while the power component reports
that rail off: an unpowered board is silent by design, not by fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from flight.bus import Bus, Sample
from flight.component import Component, Counter, Event, Parameter, Telemetry
from hal.clock import Clock
from hal.dictionary import EventSpec, Severity
from hal.errors import BoardError

T = TypeVar("T")
RAIL_STATES = "power.switches"  # published by the power component, bit n = channel n


class BoardComponent(Component):
    telemetry: ClassVar[tuple[Telemetry, ...]] = (
        Counter("board_errors", "Board operations that failed (timeouts, faults)"),
    )
    events: ClassVar[tuple[EventSpec, ...]] = (
        Event("board_silent", Severity.WARNING, "The board stopped answering",
              reason="text", op="str", polls="int"),
        Event("board_back", Severity.INFO, "The board answers again"),
    )
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("silent_after", "int", 3,
                  "Consecutive failed polls before the board is reported silent", None, 1, 60),
    )

    def __init__(self, rail: int | None = None) -> None:
        super().__init__()
        self.rail = rail  # power-board channel feeding this board; None: always powered
        self.powered = True
        self.reachable = True
        self.failures = 0  # consecutive

    def bind(self, bus: Bus, clock: Clock) -> None:
        super().bind(bus, clock)
        if self.rail is not None:
            self.subscribe(RAIL_STATES, self._on_rails)

    def _on_rails(self, topic: str, sample: Sample) -> None:
        self.powered = bool(sample.value >> self.rail & 1)
        if not self.powered:
            self.reachable = True  # silence while unpowered says nothing of the board
            self.failures = 0

    def read(self, op: Callable[[], T]) -> T | None:
        """`op()`'s result, or None after counting and reporting a board error.
        None without trying while the board's rail is off."""
        if not self.powered:
            return None
        try:
            value = op()
        except BoardError as e:
            self.counters["board_errors"] += 1
            self.publish("board_errors", self.counters["board_errors"])
            self.failures += 1
            if self.reachable and self.failures >= self.param("silent_after"):
                self.reachable = False
                self.emit("board_silent", reason=e.reason, op=e.op, polls=self.failures)
            return None
        self.failures = 0
        if not self.reachable:
            self.reachable = True
            self.emit("board_back")
        return value
