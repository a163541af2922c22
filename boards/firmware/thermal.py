"""Thermal board firmware: temperature sensors and heater switches."""

from __future__ import annotations

from typing import Protocol

from boards.firmware.server import Handler, Platform, within
from hal.boardops import BY_KIND, Heater, Heaters
from hal.boards import ThermalHousekeeping


class ThermalPlatform(Platform, Protocol):
    heater_count: int

    def temperatures_c(self) -> dict[str, float]:
        """Each sensor's reading, by sensor name."""
        ...

    def heaters(self) -> tuple[bool, ...]: ...

    def set_heater(self, heater: int, on: bool) -> None: ...


class ThermalFirmware:
    kind = "thermal"
    ops = BY_KIND["thermal"]

    def __init__(self, platform: ThermalPlatform) -> None:
        self.platform = platform

    def handlers(self) -> dict[str, Handler]:
        return {"tlm": self.tlm, "heater": self.heater}

    def tlm(self, _: None) -> ThermalHousekeeping:
        return ThermalHousekeeping(temps_c=self.platform.temperatures_c(),
                                   heaters=tuple(self.platform.heaters()),
                                   uptime_s=self.platform.uptime_s())

    def heater(self, request: Heater) -> Heaters:
        index = within("heater", request.heater, 0, self.platform.heater_count - 1)
        self.platform.set_heater(index, request.on)
        return Heaters(tuple(self.platform.heaters()))
