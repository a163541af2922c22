"""The accelerator's control plane: power state, clock and health."""

from __future__ import annotations

from typing import Annotated, ClassVar

from flight.boardwatch import BoardComponent
from flight.component import Arg, Event, Telemetry, command, periodic
from hal.boards import AcceleratorBoard, AcceleratorState
from hal.dictionary import Severity


class AcceleratorComponent(BoardComponent):
    """Owns the accelerator board's control plane."""

    name = "accelerator"
    telemetry: ClassVar = (
        Telemetry("state", "str", "Power state: off, idle or on"),
        Telemetry("clock_pct", "int", "Compute clock, percent of full speed", "%"),
        Telemetry("temp_c", "float", "Die temperature", "degC"),
        Telemetry("power_w", "float", "Power drawn by the board", "W"),
        Telemetry("error_count", "int", "Errors the board has counted"),
    )
    events: ClassVar = (
        Event("state_changed", Severity.INFO, "The accelerator changed power state"),
    )

    def __init__(self, board: AcceleratorBoard, rail: int | None = None) -> None:
        super().__init__(rail)
        self.board = board

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
        self.publish("state", hk.state.value)
        self.publish("clock_pct", hk.clock_pct)
        self.publish("temp_c", hk.temp_c)
        self.publish("power_w", hk.power_w)
        self.publish("error_count", hk.error_count)
