"""The accelerator's control plane: power state, clock and health."""

from __future__ import annotations

from typing import Annotated, ClassVar

from flight.boardwatch import BoardComponent
from flight.component import Arg, Event, Telemetry, command, periodic
from flight.power import PowerComponent
from hal.boards import AcceleratorBoard, AcceleratorState
from hal.compute import DeviceError
from hal.dictionary import Severity


class AcceleratorComponent(BoardComponent):
    """Owns the accelerator board's control plane."""

    name = "accelerator"
    telemetry: ClassVar = (
        Telemetry("state", "enum", "Power state",
                  values=tuple(s.value for s in AcceleratorState)),
        Telemetry("clock_pct", "int", "Compute clock, percent of full speed", "%"),
        # Red low is the survival temperature: switched off, the accelerator has no heater.
        Telemetry("temp_c", "float", "Die temperature", "degC",
                  yellow=(-20.0, 80.0), red=(-40.0, 90.0)),
        Telemetry("power_w", "float", "Power drawn by the board", "W"),
        Telemetry("error_count", "int", "Errors the board has counted"),
    )
    events: ClassVar = (
        Event("state_changed", Severity.INFO, "The accelerator changed power state",
              state="str"),
    )

    def __init__(self, board: AcceleratorBoard, rail: int | None = None,
                 power: PowerComponent | None = None) -> None:
        super().__init__(rail)
        self.board = board
        self.power = power  # the owner of the rail that feeds this board

    def power_cycle(self) -> None:
        """Cut the accelerator's rail, restore it and bring it back to computing: the
        cure for a hung accelerator."""
        if self.rail is None or self.power is None:
            raise DeviceError("the accelerator has no switched rail to power-cycle")
        self.power.cycle(self.rail)
        self.set_state(AcceleratorState.ON)

    @command
    def set_state(self, state: Annotated[AcceleratorState, Arg("off, idle or on")]) -> None:
        """Set the accelerator's power state (its rail must be switched on)."""
        self.board.set_state(state)
        self.emit("state_changed", state=state.value)

    @command
    def set_clock(self, clock_pct: Annotated[int, Arg("Clock", unit="%", min=10, max=100)]) -> None:
        """Throttle the compute clock."""
        self.board.set_clock(clock_pct)

    @periodic(1)
    def poll(self) -> None:
        hk = self.read(self.board.housekeeping)
        if hk is None:
            return
        self.publish_status("state", hk.state.value)
        self.publish_status("clock_pct", hk.clock_pct)
        self.publish("temp_c", hk.temp_c)
        self.publish("power_w", hk.power_w)
        self.publish_status("error_count", hk.error_count)
