"""Accelerator board firmware: the control plane (power state, clock, health)."""

from __future__ import annotations

from typing import Any, Protocol

from boards.firmware.server import Handler, OpError, Platform, require

STATES = ("off", "idle", "on")
MIN_CLOCK_PCT = 10  # below this the accelerator's PLL does not lock


class AcceleratorPlatform(Platform, Protocol):
    def state(self) -> str: ...

    def set_state(self, state: str) -> None: ...

    def clock_pct(self) -> int: ...

    def set_clock_pct(self, pct: int) -> None: ...

    def temp_c(self) -> float: ...

    def power_w(self) -> float: ...

    def error_count(self) -> int: ...


class AcceleratorFirmware:
    kind = "accelerator"

    def __init__(self, platform: AcceleratorPlatform) -> None:
        self.platform = platform

    def handlers(self) -> dict[str, Handler]:
        return {"tlm": self.tlm, "set_state": self.set_state, "set_clock": self.set_clock}

    def tlm(self, args: dict[str, Any]) -> dict[str, Any]:
        p = self.platform
        return {
            "state": p.state(),
            "clock_pct": p.clock_pct(),
            "temp_c": p.temp_c(),
            "power_w": p.power_w(),
            "error_count": p.error_count(),
        }

    def set_state(self, args: dict[str, Any]) -> dict[str, Any]:
        state = require(args, "state", str)
        if state not in STATES:
            raise OpError(f"state must be one of {', '.join(STATES)}; got {state!r}")
        self.platform.set_state(state)
        return {"state": self.platform.state()}

    def set_clock(self, args: dict[str, Any]) -> dict[str, Any]:
        pct = require(args, "clock_pct", int, MIN_CLOCK_PCT, 100)
        self.platform.set_clock_pct(pct)
        return {"clock_pct": self.platform.clock_pct()}
