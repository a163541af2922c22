import pytest

from flight import topology
from flight.bus import EVENT
from flight.component import Component, Parameter
from flight.software import FlightSoftware
from hal.dictionary import ArgumentError, Severity
from sim.clock import VirtualClock
from tests.flight.fakes import FakeAccelerator, FakePower, FakeThermal


def test_dictionary_comes_from_declarations_and_docstrings() -> None:
    d = FlightSoftware.dictionary()
    switch = d.command("power.switch")
    assert switch.description == "Switch a load channel of the power board on or off."
    channel = switch.args[0]
    assert (channel.name, channel.type, channel.min, channel.max) == ("channel", "int", 0, 7)
    assert channel.description == "Load output channel"
    state = d.command("accelerator.set_state").args[0]
    assert state.type == "enum" and state.values == ("off", "idle", "on")
    assert d.command("accelerator.set_clock").args[0].unit == "%"
    telemetry = {t.name: t for t in d.telemetry}
    assert telemetry["power.batt_v"].unit == "V"
    # Inherited declarations appear under every component that inherits them.
    inherited = {"power.cmd_rejected", "thermal.board_errors", "accelerator.board_errors"}
    assert inherited <= set(telemetry)
    events = {e.name: e.severity for e in d.events}
    assert events["accelerator.board_silent"] is Severity.WARNING


def test_every_command_has_a_description() -> None:
    assert all(c.description for c in FlightSoftware.dictionary().commands)


def test_publishing_an_undeclared_point_or_event_is_a_programming_error() -> None:
    fsw = FlightSoftware(VirtualClock(), power=FakePower(), thermal=FakeThermal(),
                         accelerator=FakeAccelerator())
    power = fsw.component("power")
    with pytest.raises(KeyError, match="telemetry point 'volts' is not declared"):
        power.publish("volts", 1.0)
    with pytest.raises(KeyError, match="event 'boom' is not declared"):
        power.emit("boom")


def test_parameters_are_range_checked() -> None:
    class Probe(Component):
        name = "probe"
        parameters = (Parameter("floor_pct", "float", 30.0, "Floor", "%", 0.0, 100.0),)

    probe = Probe()
    assert probe.param("floor_pct") == 30.0
    probe.set_param("floor_pct", 45)
    assert probe.param("floor_pct") == 45.0
    with pytest.raises(ArgumentError, match="floor_pct = 150.0 % is above the maximum"):
        probe.set_param("floor_pct", 150)
    with pytest.raises(ArgumentError, match="unknown parameter 'ceiling'"):
        probe.set_param("ceiling", 1)
    assert Probe.qualified("parameters")[0].name == "probe.floor_pct"


def test_a_silent_board_raises_one_event_and_one_on_recovery() -> None:
    thermal = FakeThermal()
    fsw = FlightSoftware(VirtualClock(), power=FakePower(), thermal=thermal,
                         accelerator=FakeAccelerator())
    events = []
    fsw.bus.subscribe(EVENT, lambda t, e: events.append(e.name))
    thermal.silent = True
    fsw.run_until(2.0)
    assert not [e for e in events if e.startswith("thermal.")]  # two polls: below persistence
    fsw.run_until(5.0)
    thermal.silent = False
    fsw.run_until(7.0)
    board = [e for e in events if e.startswith("thermal.")]
    assert board == ["thermal.board_silent", "thermal.board_back"]
    assert fsw.component("thermal").counters["board_errors"] == 5


def test_a_board_on_a_switched_off_rail_is_not_polled() -> None:
    power, acc = FakePower(), FakeAccelerator()
    acc.silent = True  # it would time out if asked
    fsw = FlightSoftware(VirtualClock(), power=power, thermal=FakeThermal(), accelerator=acc,
                         rails={"accelerator": 2})
    events = []
    fsw.bus.subscribe(EVENT, lambda t, e: events.append(e.name))
    fsw.run_until(5.0)
    assert "tlm" not in acc.calls and events == []
    power.switches[2] = True
    fsw.run_until(8.0)
    assert "tlm" in acc.calls and events[0] == "accelerator.board_silent"


def test_the_exported_dictionary_describes_the_running_software() -> None:
    fsw = FlightSoftware(VirtualClock(), power=FakePower(), thermal=FakeThermal(),
                         accelerator=FakeAccelerator())
    assert [type(c) for c in fsw.components] == topology.kinds(FlightSoftware.TOPOLOGY)
    running = {spec.name for c in fsw.components for spec in c.command_specs()}
    assert running == {c.name for c in FlightSoftware.dictionary().commands}


def test_the_battery_heater_is_a_thermostat_with_a_gap() -> None:
    thermal = FakeThermal()
    fsw = FlightSoftware(VirtualClock(), power=FakePower(), thermal=thermal,
                         accelerator=FakeAccelerator())
    seen = []
    for temp in (12.0, 6.0, 4.0, 7.0, 9.5, 10.5, 8.0):  # cooling in eclipse, then warming
        thermal.temps_c["battery"] = temp
        fsw.run_until(fsw.clock.now_s() + 1.0)
        seen.append(thermal.heaters[0])
    assert seen == [False, False, True, True, True, False, False]


def test_counters_go_out_each_second_only_when_they_changed_and_after_a_reset() -> None:
    from flight.bus import Bus
    from flight.component import Counter

    class Probe(Component):
        name = "probe"
        telemetry = (Counter("hits", "Hits seen"),
                     Counter("misses", "Misses seen"))

    sent: list[tuple[str, int]] = []
    bus = Bus()
    bus.subscribe("*", lambda topic, sample: sent.append((topic, sample.value)))
    probe = Probe()
    probe.bind(bus, VirtualClock())
    probe.publish_counters()  # at boot: every counter
    assert len(sent) == 5
    sent.clear()
    probe.report_counters()
    assert sent == []  # nothing changed
    probe.counters["hits"] += 2
    probe.report_counters()
    probe.report_counters()
    assert sent == [("probe.hits", 2)]
    sent.clear()
    probe.count_command("accepted")  # goes out at once, and not again at the second
    probe.report_counters()
    assert sent == [("probe.cmd_accepted", 1)]
    sent.clear()
    probe.reset_counters()
    probe.counters["hits"] += 2  # back to the value before the reset: still news
    probe.report_counters()
    assert ("probe.hits", 2) in sent and sent.count(("probe.hits", 0)) == 1


def test_a_status_point_goes_out_at_first_and_then_only_when_it_changes() -> None:
    from flight.bus import Bus
    from flight.component import Telemetry

    class Probe(Component):
        name = "probe"
        telemetry = (Telemetry("mode", "str", "The mode it is in"),
                     Telemetry("held", "int", "Things it holds"))

    sent: list[tuple[str, object]] = []
    bus = Bus()
    bus.subscribe("*", lambda topic, sample: sent.append((topic, sample.value)))
    probe = Probe()
    probe.bind(bus, VirtualClock())
    for mode, held in (("idle", 0), ("idle", 0), ("busy", 0), ("busy", 2), ("busy", 2)):
        probe.publish_status("mode", mode)
        probe.publish_status("held", held)
    assert sent == [("probe.mode", "idle"), ("probe.held", 0), ("probe.mode", "busy"),
                    ("probe.held", 2)]
    with pytest.raises(KeyError, match="not declared"):
        probe.publish_status("other", 1)


def test_a_status_point_with_limits_goes_out_every_time_for_fdir_persistence() -> None:
    from flight.bus import Bus
    from flight.component import Telemetry

    class Probe(Component):
        name = "probe"
        telemetry = (Telemetry("level", "int", "A level", red=(None, 5.0),
                               persistence_s=3.0),)

    sent: list[tuple[str, object]] = []
    bus, clock = Bus(), VirtualClock()
    bus.subscribe("*", lambda topic, sample: sent.append((topic, getattr(sample, "value", None))))
    probe = Probe()
    probe.bind(bus, clock)
    for t in range(5):  # out of limits and unchanged: each sample still counts
        clock.sleep_until(float(t))
        probe.publish_status("level", 9)
    assert sent.count(("probe.level", 9)) == 5  # FDIR's red needs 3 s of samples to trip
