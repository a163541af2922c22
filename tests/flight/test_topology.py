"""The topology: the one table that wires the flight software, checked when it is built."""

import ast
import inspect
import pathlib
from typing import ClassVar

import pytest

from flight.bus import Bus, Sample
from flight.component import Component, Telemetry
from flight.pus.service import Service
from flight.software import FlightSoftware
from flight.topology import TOPOLOGY, TopologyError, instance
from hal.dictionary import TelemetrySpec
from hal.packetlink import InProcessLink
from sim.clock import VirtualClock
from tests.flight.fakes import FakeAccelerator, FakePower, FakeThermal

FLIGHT = pathlib.Path(__file__).parents[2] / "flight"


class Reader(Component):
    """Reads one topic, given when the test builds it."""

    name = "reader"
    telemetry: ClassVar = (Telemetry("seen", "int", "Samples read"),)
    topic = "power.batt_v"

    def bind(self, bus: Bus, clock) -> None:
        super().bind(bus, clock)
        self.subscribe(self.topic, self._on)

    def _on(self, topic: str, sample: Sample) -> None:
        self.counters["seen"] += 1


def build(table, link=None) -> FlightSoftware:
    class Variant(FlightSoftware):
        TOPOLOGY = table

    return Variant(VirtualClock(), power=FakePower(), thermal=FakeThermal(),
                   accelerator=FakeAccelerator(), link=link)


def test_a_topic_that_no_component_publishes_fails_the_build_in_one_line() -> None:
    class Misspelt(Reader):
        topic = "power.bat_v"

    with pytest.raises(TopologyError) as e:
        build(TOPOLOGY + (instance(Misspelt),))
    assert str(e.value) == ("topology: reader reads 'power.bat_v', which is no point or "
                            "event of the dictionary")


def test_a_topic_spelt_right_is_read() -> None:
    fsw = build(TOPOLOGY + (instance(Reader),))
    fsw.run_until(3.0)
    assert fsw.component("reader").counters["seen"] >= 3


def test_a_connection_to_an_instance_not_built_above_fails_the_build() -> None:
    rows = [instance(Reader) if row.name == "power" else row for row in TOPOLOGY]
    with pytest.raises(TopologyError, match=r"fsw\.power is connected to 'power', which "
                       "is not an instance built above it"):
        build(tuple(rows))
    bad = TOPOLOGY + (instance(Reader, clock="@clock"),)
    with pytest.raises(TopologyError, match="reader.clock wants @clock, which the flight "
                       "computer does not provide"):
        build(bad)


def test_limits_that_cannot_be_meant_are_refused_where_they_are_declared() -> None:
    with pytest.raises(ValueError, match=r"limits of p: red \(-1.0, 5.0\) lies inside "
                       r"yellow \(-2.0, 6.0\)"):
        TelemetrySpec("p", "float", yellow=(-2.0, 6.0), red=(-1.0, 5.0))
    with pytest.raises(ValueError, match="limits of p: a str point cannot have limits"):
        TelemetrySpec("p", "str", red=(0.0, 1.0))
    with pytest.raises(ValueError, match="limits of p: low 3.0 above high 1.0"):
        TelemetrySpec("p", "int", yellow=(3.0, 1.0))


def test_fdir_watches_exactly_the_points_that_declare_limits() -> None:
    fsw = build(TOPOLOGY)
    limited = {t.name for t in fsw.dictionary().telemetry if t.red or t.yellow}
    assert limited == {"power.batt_v", "power.soc_pct", "accelerator.temp_c",
                       "thermal.battery_temp_c", "thermal.structure_temp_c",
                       "thermal.flight_computer_temp_c"}
    fdir = fsw.component("fdir")
    assert set(fdir.limits) == limited
    assert limited <= set(fdir.consumes)


def test_the_described_graph_names_every_instance_its_connections_and_producers() -> None:
    fsw = build(TOPOLOGY, link=InProcessLink.pair()[0])
    graph = fsw.topology()
    rows = {r["instance"]: r for r in graph["instances"]}
    assert list(rows) == [row.name for row in TOPOLOGY]
    assert rows["fdir"]["connections"]["boards"] == ["power", "thermal", "accelerator"]
    assert {"topic": "accelerator.temp_c", "from": "accelerator"} in rows["mode"]["reads"]
    assert {"topic": "*", "from": "bus"} in rows["hk"]["reads"]
    assert {rows[n]["service"] for n in rows if rows[n]["service"]} == {1, 3, 5, 8, 11, 15, 17, 20}


def test_the_table_is_the_only_place_instances_are_built() -> None:
    """No flight module calls a component's constructor but the topology's build."""
    kinds = {row.kind.__name__ for row in TOPOLOGY}
    for path in FLIGHT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in kinds, f"{path}: builds {node.func.id}"


def test_no_flight_module_holds_more_than_one_pus_service() -> None:
    services = [row.kind for row in TOPOLOGY if "service_type" in dir(row.kind)]
    modules = [inspect.getmodule(kind) for kind in services]
    assert len(modules) == len(set(modules)) == 8
    for module in set(modules):
        held = [obj for obj in vars(module).values() if inspect.isclass(obj)
                and obj.__module__ == module.__name__ and hasattr(obj, "service_type")]
        assert len(held) == 1, module.__name__


def test_two_services_claiming_one_service_type_fail_the_build() -> None:
    class Echo(Service):
        name = "echo"
        service_type: ClassVar = 17

    with pytest.raises(ValueError, match="echo and test both claim PUS service 17"):
        build(TOPOLOGY + (instance(Echo, downlink="downlink"),))

