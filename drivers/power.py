"""Power board driver: housekeeping and load switches over the board protocol."""

from __future__ import annotations

from drivers.board import BoardDriver, decodes
from hal.boards import PowerHousekeeping

NUMBER = (int, float)


class PowerDriver(BoardDriver):
    kind = "power"
    channel_count = 8

    @decodes("tlm")
    def housekeeping(self) -> PowerHousekeeping:
        r = self.link.call("tlm")
        f = self._field
        return PowerHousekeeping(
            batt_v=float(f(r, "tlm", "batt_v", NUMBER)),
            batt_a=float(f(r, "tlm", "batt_a", NUMBER)),
            soc_pct=float(f(r, "tlm", "soc_pct", NUMBER)),
            solar_power_w=float(f(r, "tlm", "solar_power_w", NUMBER)),
            load_power_w=float(f(r, "tlm", "load_power_w", NUMBER)),
            switches=tuple(self._items(r, "tlm", "switches", bool)),
            channel_a=tuple(float(a) for a in self._items(r, "tlm", "channel_a", NUMBER)),
            uptime_s=float(f(r, "tlm", "uptime_s", NUMBER)),
            fc_boot_cause=f(r, "tlm", "fc_boot_cause", str),
            watchdog_resets=f(r, "tlm", "watchdog_resets", int),
            latchups=tuple(self._items(r, "tlm", "latchups", int)),
            lvd_trips=f(r, "tlm", "lvd_trips", int),
        )

    def kick_watchdog(self) -> None:
        self.link.call("kick")

    def set_switch(self, channel: int, on: bool) -> None:
        if not 0 <= channel < self.channel_count:
            raise ValueError(f"{self.name}: channel {channel} out of range "
                             f"0..{self.channel_count - 1}")
        # Setting a switch to a state (not toggling it) is idempotent, so it may be retried.
        self.link.call("switch", {"channel": channel, "on": bool(on)})
