"""Thermal board driver: temperatures and heater switches over the board protocol."""

from __future__ import annotations

from drivers.board import BoardDriver, decodes
from hal.boards import ThermalHousekeeping
from hal.errors import BoardMalformed


class ThermalDriver(BoardDriver):
    kind = "thermal"

    @decodes("tlm")
    def housekeeping(self) -> ThermalHousekeeping:
        r = self.link.call("tlm")
        temps = self._field(r, "tlm", "temps_c", dict)
        if not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                   for k, v in temps.items()):
            raise BoardMalformed(self.name, "tlm",
                                 f"temps_c is not a map of names to numbers: {temps!r}")
        return ThermalHousekeeping(
            temps_c={k: float(v) for k, v in temps.items()},
            heaters=tuple(self._items(r, "tlm", "heaters", bool)),
            uptime_s=float(self._field(r, "tlm", "uptime_s", (int, float))),
        )

    def set_heater(self, heater: int, on: bool) -> None:
        self.link.call("heater", {"heater": heater, "on": bool(on)})
