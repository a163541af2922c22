"""Accelerator board firmware: the control plane (power state, clock, health)."""

from __future__ import annotations

from typing import Protocol

from boards.firmware.server import Handler, Platform
from hal.boardops import BY_KIND, Clock, SetClock, SetState
from hal.boards import AcceleratorHousekeeping, AcceleratorState


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
    ops = BY_KIND["accelerator"]

    def __init__(self, platform: AcceleratorPlatform) -> None:
        self.platform = platform

    def handlers(self) -> dict[str, Handler]:
        return {"tlm": self.tlm, "set_state": self.set_state, "set_clock": self.set_clock}

    def tlm(self, _: None) -> AcceleratorHousekeeping:
        p = self.platform
        return AcceleratorHousekeeping(state=AcceleratorState(p.state()),
                                       clock_pct=p.clock_pct(), temp_c=p.temp_c(),
                                       power_w=p.power_w(), error_count=p.error_count(),
                                       uptime_s=p.uptime_s())

    def set_state(self, request: SetState) -> SetState:
        self.platform.set_state(request.state.value)
        return SetState(AcceleratorState(self.platform.state()))

    def set_clock(self, request: SetClock) -> Clock:
        # hal.boardops bounds the clock from 10 %: below it the PLL does not lock.
        self.platform.set_clock_pct(request.clock_pct)
        return Clock(self.platform.clock_pct())
