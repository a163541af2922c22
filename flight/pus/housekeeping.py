"""Service 3, housekeeping: one structure per component, its points in dictionary
order, reported [3,25] every collection interval; enable [3,5], disable [3,6],
one-shot [3,27], collection interval [3,31]."""

from __future__ import annotations

import struct
from typing import Any, ClassVar

from flight.bus import ALL, Sample
from flight.component import Telemetry, periodic
from flight.pus.service import Downlink, Refused, Run, Service, count_list, unknown_subtype
from hal import layout
from hal.layout import Layouts
from hal.pus import N
from hal.spacepacket import Telecommand

INTERVAL = struct.Struct(">HI")  # SID, collection interval in ms
MIN_INTERVAL_MS = 100


class Housekeeping(Service):
    """The latest value of every point, reported by structure."""

    name = "hk"
    service_type: ClassVar = 3
    telemetry: ClassVar = (
        Telemetry("enabled", "int", "Housekeeping structures reported periodically"),
    )

    def __init__(self, downlink: Downlink, layouts: Layouts) -> None:
        super().__init__(downlink)
        self.layouts = layouts
        self._latest: dict[str, Any] = {}
        self._hk = {sid: {"enabled": True, "interval_s": 1.0, "due_s": 0.0}
                    for sid in layouts.structures}

    def bind(self, bus: Any, clock: Any) -> None:
        super().bind(bus, clock)
        if self.downlink.connected:  # without a ground, nothing need be gathered
            self.subscribe(ALL, self._on_bus)

    def _on_bus(self, topic: str, message: Any) -> None:
        if isinstance(message, Sample):
            self._latest[topic] = message.value

    def accept(self, tc: Telecommand) -> Run:
        what = f"TC[3,{tc.subtype}]"
        if tc.subtype in (5, 6, 27):
            sids = [s for (s,) in count_list(tc.data, N, what)]
            self._known(sids)
            return lambda: self._control(tc.subtype, sids)
        if tc.subtype == 31:
            items = count_list(tc.data, INTERVAL, what)
            self._known([s for s, _ in items])
            if any(ms < MIN_INTERVAL_MS for _, ms in items):
                raise Refused("bad_arguments",
                              f"collection intervals are {MIN_INTERVAL_MS} ms at least")
            return lambda: self._intervals(items)
        raise unknown_subtype(tc)

    @periodic(10)
    def report(self) -> None:
        """Send every structure that is due."""
        if not self.downlink.connected:
            return
        now = self.clock.now_s()
        for sid, hk in self._hk.items():
            if hk["enabled"] and now >= hk["due_s"]:
                hk["due_s"] = now + hk["interval_s"]
                self._send(sid)

    @periodic(1)
    def housekeeping(self) -> None:
        self.publish_status("enabled", [hk["enabled"] for hk in self._hk.values()].count(True))

    def _known(self, sids: list[int]) -> None:
        for sid in sids:
            if sid not in self._hk:
                raise Refused("bad_arguments", f"no housekeeping structure 0x{sid:04x}")

    def _control(self, subtype: int, sids: list[int]) -> None:
        for sid in sids:
            if subtype == 27:
                self._send(sid)
            else:
                self._hk[sid]["enabled"] = subtype == 5
                self._hk[sid]["due_s"] = self.clock.now_s()

    def _intervals(self, items: list[tuple[int, int]]) -> None:
        for sid, ms in items:
            self._hk[sid]["interval_s"] = ms / 1000

    def _send(self, sid: int) -> None:
        structure = self.layouts.structures[sid]
        values = [self._latest.get(p.name) for p in structure.points]
        self.send(25, N.pack(sid) + layout.pack(structure.points, values))
