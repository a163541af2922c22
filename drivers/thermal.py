"""Thermal board driver: temperatures and heater switches over the board protocol."""

from __future__ import annotations

from drivers.board import BoardDriver
from hal.boardops import Heater
from hal.boards import ThermalHousekeeping


class ThermalDriver(BoardDriver):
    kind = "thermal"

    def housekeeping(self) -> ThermalHousekeeping:
        return self.call("tlm")

    def set_heater(self, heater: int, on: bool) -> None:
        self.call("heater", Heater(heater, bool(on)))
