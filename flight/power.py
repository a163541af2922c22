"""Electrical power: battery and solar housekeeping, and the load switches."""

from __future__ import annotations

from typing import Annotated, ClassVar

from flight.boardwatch import BoardComponent
from flight.component import Arg, Event, Telemetry, command, periodic
from hal.boards import PowerBoard
from hal.dictionary import Severity
from hal.errors import BoardError


class PowerComponent(BoardComponent):
    """Owns the power board."""

    name = "power"
    telemetry: ClassVar = (
        Telemetry("batt_v", "float", "Battery terminal voltage", "V",
                  yellow=(26.0, 33.6), red=(24.0, 34.0)),
        Telemetry("batt_a", "float", "Battery current, positive while charging", "A"),
        Telemetry("soc_pct", "float", "Battery state of charge (fuel gauge)", "%",
                  yellow=(40.0, None), red=(30.0, None)),
        Telemetry("solar_power_w", "float", "Power from the solar array", "W"),
        Telemetry("load_power_w", "float", "Power drawn by all switched loads", "W"),
        Telemetry("switches", "int", "Load switch states, bit n for channel n"),
        Telemetry("latchups", "int", "Over-current trips the power board has counted"),
    )
    events: ClassVar = (
        Event("switch_changed", Severity.INFO, "A load channel was switched",
              channel="int", on="bool"),
        Event("latchup", Severity.WARNING, "The power board tripped a channel on over-current",
              channel="int", count="int"),
        Event("low_voltage_disconnect", Severity.ERROR,
              "The power board shed every load but the flight computer: battery at its floor",
              batt_v="float", soc_pct="float"),
    )

    def __init__(self, board: PowerBoard) -> None:
        super().__init__()
        self.board = board
        self._latchups: tuple[int, ...] | None = None  # as last seen, to report new ones
        self._lvd_trips: int | None = None

    @command
    def switch(self, channel: Annotated[int, Arg("Load output channel", min=0, max=7)],
               on: Annotated[bool, Arg("True powers the load, false cuts it")]) -> None:
        """Switch a load channel of the power board on or off."""
        self.board.set_switch(channel, on)
        self.emit("switch_changed", channel=channel, on=on)

    def cycle(self, channel: int) -> None:
        """Cut a channel and restore it: the cure for a hung or latched-up load.
        Raises BoardError when the power board does not do it."""
        self.switch(channel, False)
        self.switch(channel, True)

    def kick_watchdog(self) -> float | None:
        """Tell the power board the flight computer is alive: its watchdog's timeout
        (s), or None when the board did not hear it (its silence is FDIR's business,
        seen by the polls)."""
        try:
            return self.board.kick_watchdog()
        except BoardError:
            return None

    def boot_cause(self) -> str:
        """Why the flight computer last started, as the power board saw it."""
        try:
            return self.board.housekeeping().fc_boot_cause
        except BoardError:
            return "unknown"

    @periodic(1)
    def poll(self) -> None:
        hk = self.read(self.board.housekeeping)
        if hk is None:
            return
        self.publish("batt_v", hk.batt_v)
        self.publish("batt_a", hk.batt_a)
        self.publish("soc_pct", hk.soc_pct)
        self.publish("solar_power_w", hk.solar_power_w)
        self.publish("load_power_w", hk.load_power_w)
        self.publish_status("switches", sum(1 << i for i, on in enumerate(hk.switches) if on))
        self.publish_status("latchups", sum(hk.latchups))
        if self._latchups is not None:
            for channel, (old, new) in enumerate(zip(self._latchups, hk.latchups, strict=False)):
                if new > old:
                    self.emit("latchup", channel=channel, count=new)
        if self._lvd_trips is not None and hk.lvd_trips > self._lvd_trips:
            self.emit("low_voltage_disconnect", batt_v=hk.batt_v, soc_pct=hk.soc_pct)
        self._latchups, self._lvd_trips = hk.latchups, hk.lvd_trips
