"""Thermal control: temperatures from the thermal board, and its heaters.

The battery heater is a thermostat: on below `battery_heater_on_c`, off above
`battery_heater_off_c` (the gap keeps it from chattering). In practice it works in
eclipse, when the battery cools.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from flight.boardwatch import BoardComponent
from flight.component import Arg, Event, Parameter, Telemetry, command, periodic
from hal.boards import ThermalBoard
from hal.dictionary import Severity

SENSORS = ("accelerator", "radiator", "structure", "flight_computer", "battery")
# Yellow and red bounds of the sensors that have them; the structure is slow, so each is
# held 30 s before it counts.
LIMITS_C = {
    "battery": ((0.0, 40.0), (-10.0, 50.0)),
    "structure": ((-20.0, 50.0), (-40.0, 70.0)),
    "flight_computer": ((-10.0, 60.0), (-25.0, 75.0)),
}


class ThermalComponent(BoardComponent):
    """Owns the thermal board."""

    name = "thermal"
    telemetry: ClassVar = tuple(
        Telemetry(f"{s}_temp_c", "float", f"Temperature at the {s} sensor", "degC",
                  yellow=LIMITS_C[s][0] if s in LIMITS_C else None,
                  red=LIMITS_C[s][1] if s in LIMITS_C else None, persistence_s=30.0)
        for s in SENSORS
    ) + (Telemetry("heaters", "int", "Heater states, bit n for heater n (0 battery, "
                   "1 structure)"),)
    events: ClassVar = (
        Event("heater_changed", Severity.INFO, "A heater was switched",
              heater="int", on="bool", temp_c="float"),
    )
    parameters: ClassVar = (
        Parameter("battery_heater_on_c", "float", 5.0, "Battery heater on below", "degC",
                  -40.0, 40.0),
        Parameter("battery_heater_off_c", "float", 10.0, "Battery heater off above", "degC",
                  -40.0, 50.0),
    )
    BATTERY_HEATER = 0

    def __init__(self, board: ThermalBoard, rail: int | None = None) -> None:
        super().__init__(rail)
        self.board = board

    @command
    def heater(self, heater: Annotated[int, Arg("Heater: 0 battery, 1 structure", min=0,
                                                max=1)],
               on: Annotated[bool, Arg("True heats")]) -> None:
        """Switch a heater on or off."""
        self.board.set_heater(heater, on)
        self.emit("heater_changed", heater=heater, on=on)

    @periodic(1)
    def poll(self) -> None:
        hk = self.read(self.board.housekeeping)
        if hk is None:
            return
        for sensor in SENSORS:
            if sensor in hk.temps_c:
                self.publish(f"{sensor}_temp_c", hk.temps_c[sensor])
        self.publish_status("heaters", sum(1 << i for i, on in enumerate(hk.heaters) if on))
        self._battery_thermostat(hk.temps_c.get("battery"), hk.heaters)

    def _battery_thermostat(self, temp_c: float | None, heaters: tuple[bool, ...]) -> None:
        if temp_c is None or len(heaters) <= self.BATTERY_HEATER:
            return
        on = heaters[self.BATTERY_HEATER]
        want = (temp_c < self.param("battery_heater_on_c") if not on
                else temp_c <= self.param("battery_heater_off_c"))
        if want != on:
            self.read(lambda: self.board.set_heater(self.BATTERY_HEATER, want))
            self.emit("heater_changed", heater=self.BATTERY_HEATER, on=want, temp_c=temp_c)
