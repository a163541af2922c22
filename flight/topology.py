"""The topology: every component instance of the flight software and what each is
connected to, in one table (F´'s topology.fpp is the model). Nothing else wires
instances together.

A connection joins a constructor argument of an instance to an instance built above
it (by name) or to a resource the flight computer provides ("@board.power", the
boards, storage, the space link; see `RESOURCES`). Bus connections are not written
here: each component subscribes, in bind(), to the points and events it reads, and
`check` proves that each of those names is in the dictionary. A name that is not
fails the build with one line, so a misspelt topic cannot silently never fire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flight.accelerator import AcceleratorComponent
from flight.bus import ALL, COMMAND, EVENT
from flight.component import Component
from flight.compute.manager import ComputeManager
from flight.fdir import Fdir
from flight.modes import ModeManager
from flight.power import PowerComponent
from flight.pus.events import EventReporting
from flight.pus.functions import Functions
from flight.pus.housekeeping import Housekeeping
from flight.pus.parameters import Parameters
from flight.pus.schedule import Schedule
from flight.pus.service import Downlink, Service
from flight.pus.storage import Storage
from flight.pus.test import ConnectionTest
from flight.pus.uplink import Uplink
from flight.system import SystemComponent
from flight.thermal import ThermalComponent
from hal.dictionary import Dictionary
from hal.errors import SkyrackError

# What the flight computer provides to the table, by name.
RESOURCES = {
    "board.power": "the power board (hal.boards.PowerBoard)",
    "board.thermal": "the thermal board (hal.boards.ThermalBoard)",
    "board.accelerator": "the accelerator's control plane (hal.boards.AcceleratorBoard)",
    "rail.thermal": "the power channel feeding the thermal board, or none",
    "rail.accelerator": "the power channel feeding the accelerator, or none",
    "compute": "the accelerator's data plane (hal.compute.ComputeDevice), or none",
    "work_dir": "where job checkpoints are written, or none",
    "records": "the flight computer's stored records (flight.nvm.Records)",
    "executive": "the executive that runs the periodic tasks",
    "dispatcher": "the command dispatcher",
    "dictionary": "the command and telemetry dictionary of this topology",
    "layouts": "the dictionary's wire layouts and ids",
    "router": "the PUS services by service type",
    "components": "every instance, by name",
    "link": "the space link to the ground (hal.packetlink.PacketLink), or none",
    "keys": "the keys telecommands may be signed with, by id",
    "active_key": "the key in use when no stored state names one",
    "spacecraft_id": "the satellite telecommands must be signed for",
}
BUS_TOPICS = {ALL: "every message", EVENT: "every event", COMMAND: "every command outcome"}


class TopologyError(SkyrackError, ValueError):
    """The topology names something that does not exist; the message says what."""


@dataclass(frozen=True, slots=True)
class Instance:
    kind: type[Component]
    ports: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.kind.name


def instance(kind: type[Component], **ports: str | tuple[str, ...]) -> Instance:
    return Instance(kind, ports)


BOARDS = ("power", "thermal", "accelerator")

TOPOLOGY: tuple[Instance, ...] = (
    # -- the boards, each with its one owner ------------------------------------------
    instance(PowerComponent, board="@board.power"),
    instance(SystemComponent, executive="@executive", power="power", records="@records"),
    instance(ThermalComponent, board="@board.thermal", rail="@rail.thermal"),
    instance(AcceleratorComponent, board="@board.accelerator", rail="@rail.accelerator",
             power="power"),
    # -- compute and its budget ---------------------------------------------------------
    instance(ComputeManager, device="@compute", records="@records", work_dir="@work_dir",
             accelerator="accelerator"),
    instance(ModeManager, accelerator="accelerator", compute="compute", system="fsw"),
    instance(Fdir, power="power", modes="mode", boards=BOARDS, dictionary="@dictionary"),
    # -- the space link: a downlink, the PUS services on it, the uplink that finds them --
    instance(Downlink, link="@link"),
    instance(Functions, downlink="downlink", layouts="@layouts", dispatcher="@dispatcher"),
    instance(Housekeeping, downlink="downlink", layouts="@layouts"),
    instance(EventReporting, downlink="downlink", layouts="@layouts"),
    instance(Schedule, downlink="downlink", router="@router", records="@records"),
    instance(ConnectionTest, downlink="downlink"),
    instance(Storage, downlink="downlink"),
    instance(Parameters, downlink="downlink", layouts="@layouts", components="@components",
             records="@records"),
    instance(Uplink, downlink="downlink", router="@router", keys="@keys",
             active_key="@active_key", spacecraft_id="@spacecraft_id", records="@records"),
)


def kinds(topology: Sequence[Instance] = TOPOLOGY) -> list[type[Component]]:
    return [i.kind for i in topology]


def build(topology: Sequence[Instance], resources: Mapping[str, Any]) -> dict[str, Component]:
    """Every instance of `topology`, in order, each given what its row connects it to.
    `resources["components"]` (a dict) is filled as instances are built; every
    service is added to `resources["router"]`."""
    built: dict[str, Component] = resources["components"]
    for row in topology:
        if row.name in built:
            raise TopologyError(f"topology: two instances are named {row.name!r}")
        args = {port: _resolve(row, port, target, built, resources)
                for port, target in row.ports.items()}
        try:
            component = row.kind(**args)
        except TypeError as e:
            raise TopologyError(f"topology: {row.name}: {e}") from None
        built[row.name] = component
        if isinstance(component, Service):
            resources["router"].add(component)
    return built


def _resolve(row: Instance, port: str, target: str | tuple[str, ...],
             built: Mapping[str, Component], resources: Mapping[str, Any]) -> Any:
    if isinstance(target, tuple):
        return tuple(_resolve(row, port, t, built, resources) for t in target)
    if target.startswith("@"):
        if target[1:] not in RESOURCES:
            raise TopologyError(f"topology: {row.name}.{port} wants {target}, which the "
                                "flight computer does not provide")
        return resources.get(target[1:])
    if target not in built:
        raise TopologyError(f"topology: {row.name}.{port} is connected to {target!r}, "
                            "which is not an instance built above it")
    return built[target]


def check(components: Mapping[str, Component], dictionary: Dictionary) -> None:
    """Every bus topic an instance reads is a point, an event or a bus-wide topic of
    this dictionary: raises TopologyError naming the first one that is not."""
    names = {t.name for t in dictionary.telemetry} | {e.name for e in dictionary.events}
    for component in components.values():
        for topic in component.consumes:
            if topic not in names and topic not in BUS_TOPICS:
                raise TopologyError(f"topology: {component.name} reads {topic!r}, which is "
                                    "no point or event of the dictionary")


def describe(topology: Sequence[Instance], components: Mapping[str, Component],
             dictionary: Dictionary) -> dict[str, Any]:
    """The wired graph: each instance, its connections, and what it reads from the bus
    with who publishes it."""
    producers: dict[str, str] = {t.name: t.name.split(".")[0] for t in dictionary.telemetry}
    producers.update({e.name: e.name.split(".")[0] for e in dictionary.events})
    out = []
    for row in topology:
        component = components[row.name]
        service = getattr(component, "service_type", None)
        out.append({
            "instance": row.name,
            "kind": f"{row.kind.__module__}.{row.kind.__qualname__}",
            "service": service,
            "connections": {port: list(t) if isinstance(t, tuple) else t
                            for port, t in row.ports.items()},
            "reads": [{"topic": topic, "from": producers.get(topic, "bus")}
                      for topic in component.consumes],
        })
    return {"instances": out, "resources": RESOURCES}
