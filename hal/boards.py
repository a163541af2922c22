"""Board interfaces: what the flight software may ask of power, thermal and
accelerator boards, and the typed values they return.

Drivers implement these over the board protocol. Methods raise BoardTimeout,
BoardFault or BoardLinkError (hal.errors), each naming board, operation and reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from hal.values import quick


@dataclass(frozen=True, slots=True)
class BoardInfo:
    name: str
    kind: str
    firmware_version: str
    serial_number: str


@quick
@dataclass(frozen=True, slots=True)
class PowerHousekeeping:
    batt_v: float
    batt_a: float  # positive while charging
    soc_pct: float  # fuel-gauge state of charge
    solar_power_w: float
    load_power_w: float
    switches: tuple[bool, ...]
    channel_a: tuple[float, ...]
    uptime_s: float
    fc_boot_cause: str = "power_on"  # why the flight computer last started: or "watchdog"
    watchdog_resets: int = 0
    latchups: tuple[int, ...] = ()  # over-current trips, per channel
    lvd_trips: int = 0  # low-voltage disconnects


@quick
@dataclass(frozen=True, slots=True)
class ThermalHousekeeping:
    temps_c: dict[str, float]
    heaters: tuple[bool, ...]
    uptime_s: float


@enum.unique
class AcceleratorState(enum.Enum):
    OFF = "off"  # powered but compute rails down
    IDLE = "idle"  # clocks gated, memory retained
    ON = "on"  # computing


@quick
@dataclass(frozen=True, slots=True)
class AcceleratorHousekeeping:
    state: AcceleratorState
    clock_pct: int
    temp_c: float
    power_w: float
    error_count: int
    uptime_s: float


class Board(Protocol):
    name: str

    def ping(self) -> float:
        """The board's uptime in seconds."""
        ...

    def info(self) -> BoardInfo: ...

    def reset(self) -> None:
        """Reboot the board's firmware."""
        ...


class PowerBoard(Board, Protocol):
    channel_count: int

    def housekeeping(self) -> PowerHousekeeping: ...

    def set_switch(self, channel: int, on: bool) -> None:
        """Switch output `channel` (0-based) on or off."""
        ...

    def kick_watchdog(self) -> float:
        """Tell the power board the flight computer is alive; left unkicked, it
        power-cycles the flight computer. Its watchdog's timeout (s), as it says."""
        ...


class ThermalBoard(Board, Protocol):
    def housekeeping(self) -> ThermalHousekeeping: ...

    def set_heater(self, heater: int, on: bool) -> None: ...


class AcceleratorBoard(Board, Protocol):
    """The accelerator's control plane (the data plane is a separate interface)."""

    def housekeeping(self) -> AcceleratorHousekeeping: ...

    def set_state(self, state: AcceleratorState) -> None: ...

    def set_clock(self, clock_pct: int) -> None:
        """Throttle the compute clock to `clock_pct` percent of full speed."""
        ...
