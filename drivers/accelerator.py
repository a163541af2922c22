"""Accelerator board driver: the control plane over the board protocol."""

from __future__ import annotations

from drivers.board import BoardDriver, decodes
from hal.boards import AcceleratorHousekeeping, AcceleratorState
from hal.errors import BoardMalformed

NUMBER = (int, float)


class AcceleratorDriver(BoardDriver):
    kind = "accelerator"

    @decodes("tlm")
    def housekeeping(self) -> AcceleratorHousekeeping:
        r = self.link.call("tlm")
        f = self._field
        state = f(r, "tlm", "state", str)
        try:
            parsed = AcceleratorState(state)
        except ValueError:
            raise BoardMalformed(self.name, "tlm",
                                 f"unknown accelerator state {state!r}") from None
        return AcceleratorHousekeeping(
            state=parsed,
            clock_pct=f(r, "tlm", "clock_pct", int),
            temp_c=float(f(r, "tlm", "temp_c", NUMBER)),
            power_w=float(f(r, "tlm", "power_w", NUMBER)),
            error_count=f(r, "tlm", "error_count", int),
            uptime_s=float(f(r, "tlm", "uptime_s", NUMBER)),
        )

    def set_state(self, state: AcceleratorState) -> None:
        self.link.call("set_state", {"state": AcceleratorState(state).value})

    def set_clock(self, clock_pct: int) -> None:
        self.link.call("set_clock", {"clock_pct": int(clock_pct)})
