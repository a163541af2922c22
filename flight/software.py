"""The flight software: its components on one bus, commanded through one dispatcher,
run by one executive. Built from hal interfaces alone; what sits behind them is the
composition root's business."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, cast

from flight import topology
from flight.bus import Bus
from flight.component import Component
from flight.dictionary import build_dictionary
from flight.dispatcher import Dispatcher
from flight.executive import Executive
from flight.nvm import Records
from flight.pus.service import Downlink, Router
from flight.pus.uplink import Uplink
from flight.system import SCRUB_AT_BOOT, SystemComponent
from flight.topology import TOPOLOGY, Instance
from hal.auth import DEFAULT_SPACECRAFT
from hal.boards import AcceleratorBoard, PowerBoard, ThermalBoard
from hal.clock import Clock
from hal.compute import ComputeDevice
from hal.dictionary import Dictionary
from hal.layout import Layouts
from hal.packetlink import PacketLink
from hal.storage import Storage


class FlightSoftware:
    TOPOLOGY: ClassVar[tuple[Instance, ...]] = TOPOLOGY

    def __init__(self, clock: Clock, *, power: PowerBoard, thermal: ThermalBoard,
                 accelerator: AcceleratorBoard, rails: dict[str, int] | None = None,
                 compute: ComputeDevice | None = None, storage: Storage | None = None,
                 work_dir: str | Path | None = None, link: PacketLink | None = None,
                 keys: dict[int, bytes] | None = None, active_key: int = 1,
                 spacecraft_id: int = DEFAULT_SPACECRAFT) -> None:
        """`rails` maps a board kind to the power-board channel that feeds it; `compute` is
        the accelerator's data plane, `storage` where results go, `work_dir` where job
        checkpoints are written; `link` the space link to the ground, and `keys` (by id)
        what its telecommands may be signed with, `active_key` the one in use, and
        `spacecraft_id` the satellite they must be signed for. What each
        instance is connected to is the topology's (flight.topology)."""
        rails = rails or {}
        self.clock = clock
        self.bus = Bus()
        self.executive = Executive(clock)
        self.records = Records(storage)
        self.dispatcher = Dispatcher((), self.bus, clock)
        dictionary = self.dictionary()
        resources: dict[str, Any] = {
            "board.power": power, "board.thermal": thermal, "board.accelerator": accelerator,
            "rail.thermal": rails.get("thermal"), "rail.accelerator": rails.get("accelerator"),
            "compute": compute, "work_dir": work_dir, "records": self.records,
            "executive": self.executive, "dispatcher": self.dispatcher,
            "dictionary": dictionary, "layouts": Layouts(dictionary), "router": Router(),
            "components": {}, "link": link, "keys": keys or {}, "active_key": active_key,
            "spacecraft_id": spacecraft_id,
        }
        built = topology.build(self.TOPOLOGY, resources)
        self.components: list[Component] = list(built.values())
        self.system = cast(SystemComponent, built["fsw"])
        self.space_link = cast(Uplink, built["link"])
        self.downlink = cast(Downlink, built["downlink"])
        for component in self.components:
            self.dispatcher.add(component)
        self.executive.add("dispatcher", 10, self.dispatcher.drain)
        for component in self.components:
            component.bind(self.bus, clock)
            for name, rate_hz, run in component.periodic_tasks():
                self.executive.add(name, rate_hz, run)
        topology.check(built, dictionary)
        for component in self.components:
            component.start()
            component.publish_counters()  # in the first housekeeping packet
        self.records.scrub(SCRUB_AT_BOOT)  # records no component reads, checked too
        self.system.booted()
        self.system.report_records()  # what was damaged in storage, now that events flow

    @property
    def boot_cause(self) -> str:
        return self.system.boot_cause

    def topology(self) -> dict[str, Any]:
        """The wired graph (`skyrack dictionary --topology`)."""
        return topology.describe(self.TOPOLOGY, {c.name: c for c in self.components},
                                 self.dictionary())

    @classmethod
    def dictionary(cls) -> Dictionary:
        return build_dictionary(topology.kinds(cls.TOPOLOGY))

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def submit(self, command: str, args: dict[str, Any] | None = None) -> int:
        """Queue a command; it runs at the next 10 Hz dispatch."""
        return self.dispatcher.submit(command, args)

    def run_until(self, t_s: float) -> None:
        self.executive.run_until(t_s)
