"""Thermal control: temperatures from the thermal board, and its heaters."""

from __future__ import annotations

from typing import Annotated, ClassVar

from flight.boardwatch import BoardComponent
from flight.component import Arg, Event, Telemetry, command, periodic
from hal.boards import ThermalBoard
from hal.dictionary import Severity

SENSORS = ("accelerator", "radiator", "bus", "battery")


class ThermalComponent(BoardComponent):
    """Owns the thermal board."""

    name = "thermal"
    telemetry: ClassVar = tuple(
        Telemetry(f"{s}_temp_c", "float", f"Temperature at the {s} sensor", "degC")
        for s in SENSORS
    ) + (Telemetry("heaters", "int", "Heater states, bit n for heater n (0 battery, 1 bus)"),)
    events: ClassVar = (
        Event("heater_changed", Severity.INFO, "A heater was switched"),
    )

    def __init__(self, board: ThermalBoard, rail: int | None = None) -> None:
        super().__init__(rail)
        self.board = board

    @command
    def heater(self, heater: Annotated[int, Arg("Heater: 0 battery, 1 bus", min=0, max=1)],
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
        self.publish("heaters", sum(1 << i for i, on in enumerate(hk.heaters) if on))
