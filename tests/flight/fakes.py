"""In-memory HAL boards for testing flight code without drivers or the sim."""

from __future__ import annotations

from hal.boards import (
    AcceleratorHousekeeping,
    AcceleratorState,
    BoardInfo,
    PowerHousekeeping,
    ThermalHousekeeping,
)
from hal.errors import BoardFault, BoardTimeout


class FakeBoard:
    def __init__(self, name: str) -> None:
        self.name = name
        self.silent = False
        self.calls: list[str] = []

    def _check(self, op: str) -> None:
        self.calls.append(op)
        if self.silent:
            raise BoardTimeout(self.name, op, "board silent")

    def ping(self) -> float:
        self._check("ping")
        return 0.0

    def info(self) -> BoardInfo:
        return BoardInfo(self.name, "fake", "0", "0")

    def reset(self) -> None:
        self._check("reset")


class FakePower(FakeBoard):
    channel_count = 8

    def __init__(self) -> None:
        super().__init__("power")
        self.switches = [True, True] + [False] * 6
        self.latchups = [0] * 8

    def housekeeping(self) -> PowerHousekeeping:
        self._check("tlm")
        return PowerHousekeeping(30.0, 1.0, 80.0, 1000.0, 500.0, tuple(self.switches),
                                 (0.0,) * 8, 1.0, latchups=tuple(self.latchups))

    def set_switch(self, channel: int, on: bool) -> None:
        self._check("switch")
        self.switches[channel] = on

    def kick_watchdog(self) -> float:
        self._check("kick")
        return 30.0


class FakeThermal(FakeBoard):
    """Heater 0 (battery) works; heater 1 is open-circuit."""

    def __init__(self) -> None:
        super().__init__("thermal")
        self.temps_c = {"accelerator": 40.0, "structure": 20.0, "battery": 20.0}
        self.heaters = [False, False]

    def housekeeping(self) -> ThermalHousekeeping:
        self._check("tlm")
        return ThermalHousekeeping(dict(self.temps_c), tuple(self.heaters), 1.0)

    def set_heater(self, heater: int, on: bool) -> None:
        self._check("heater")
        if heater == 1:
            raise BoardFault(self.name, "heater", f"heater {heater} is open-circuit")
        self.heaters[heater] = on


class FakeAccelerator(FakeBoard):
    def __init__(self) -> None:
        super().__init__("accelerator")
        self.state = AcceleratorState.OFF

    def housekeeping(self) -> AcceleratorHousekeeping:
        self._check("tlm")
        return AcceleratorHousekeeping(self.state, 100, 45.0, 80.0, 0, 1.0)

    def set_state(self, state: AcceleratorState) -> None:
        self._check("set_state")
        self.state = state

    def set_clock(self, clock_pct: int) -> None:
        self._check("set_clock")
