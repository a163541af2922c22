"""Thermal board firmware: temperature sensors and heater switches."""

from __future__ import annotations

from typing import Any, Protocol

from boards.firmware.server import Handler, Platform, require


class ThermalPlatform(Platform, Protocol):
    heater_count: int

    def temperatures_c(self) -> dict[str, float]:
        """Each sensor's reading, by sensor name."""
        ...

    def heaters(self) -> tuple[bool, ...]: ...

    def set_heater(self, heater: int, on: bool) -> None: ...


class ThermalFirmware:
    kind = "thermal"

    def __init__(self, platform: ThermalPlatform) -> None:
        self.platform = platform

    def handlers(self) -> dict[str, Handler]:
        return {"tlm": self.tlm, "heater": self.heater}

    def tlm(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"temps_c": self.platform.temperatures_c(), "heaters": list(self.platform.heaters())}

    def heater(self, args: dict[str, Any]) -> dict[str, Any]:
        index = require(args, "heater", int, 0, self.platform.heater_count - 1)
        on = require(args, "on", bool)
        self.platform.set_heater(index, on)
        return {"heaters": list(self.platform.heaters())}
