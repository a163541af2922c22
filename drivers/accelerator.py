"""Accelerator board driver: the control plane over the board protocol."""

from __future__ import annotations

from drivers.board import BoardDriver
from hal.boardops import SetClock, SetState
from hal.boards import AcceleratorHousekeeping, AcceleratorState


class AcceleratorDriver(BoardDriver):
    kind = "accelerator"

    def housekeeping(self) -> AcceleratorHousekeeping:
        return self.call("tlm")

    def set_state(self, state: AcceleratorState) -> None:
        self.call("set_state", SetState(AcceleratorState(state)))

    def set_clock(self, clock_pct: int) -> None:
        self.call("set_clock", SetClock(int(clock_pct)))
