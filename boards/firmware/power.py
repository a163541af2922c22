"""Power board firmware: battery and solar sensing, switchable load outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from boards.firmware.server import Handler, Platform, require


@dataclass(frozen=True, slots=True)
class PowerSense:
    batt_v: float
    batt_a: float
    soc_pct: float
    solar_power_w: float
    channel_a: tuple[float, ...]


class PowerPlatform(Platform, Protocol):
    channel_count: int

    def sense(self) -> PowerSense: ...

    def switches(self) -> tuple[bool, ...]: ...

    def set_switch(self, channel: int, on: bool) -> None: ...


class PowerFirmware:
    kind = "power"

    def __init__(self, platform: PowerPlatform) -> None:
        self.platform = platform

    def handlers(self) -> dict[str, Handler]:
        return {"tlm": self.tlm, "switch": self.switch}

    def tlm(self, args: dict[str, Any]) -> dict[str, Any]:
        s = self.platform.sense()
        return {
            "batt_v": s.batt_v,
            "batt_a": s.batt_a,
            "soc_pct": s.soc_pct,
            "solar_power_w": s.solar_power_w,
            "load_power_w": s.batt_v * sum(s.channel_a),
            "switches": list(self.platform.switches()),
            "channel_a": list(s.channel_a),
        }

    def switch(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = require(args, "channel", int, 0, self.platform.channel_count - 1)
        on = require(args, "on", bool)
        self.platform.set_switch(channel, on)
        return {"switches": list(self.platform.switches())}
