"""Scenarios on the whole simulated satellite that assert physical outcomes."""

import pytest

from boards.definition import default_path, load
from flight.bus import EVENT
from flight.modes import Mode
from hal.errors import BoardFault
from sim.inject import Inject
from skyrack.assembly import assemble


def satellite():
    sat = assemble(load(default_path()), seed=3)
    sat.events = []
    sat.inject = Inject(sat.world, sat.emulators)
    sat.flight.bus.subscribe(EVENT, lambda t, e: sat.events.append((e.t_s, e.name, e.args)))
    return sat


def test_a_latched_board_is_power_cycled_and_the_mission_continues() -> None:
    sat = satellite()
    try:
        sat.flight.run_until(100.0)
        sat.inject.silent_board("thermal")  # a single-event latch-up at t = 100 s
        sat.flight.run_until(200.0)
        names = [name for _, name, _ in sat.events]
        assert names.index("thermal.board_silent") < names.index("fdir.board_power_cycled")
        assert names.index("fdir.board_power_cycled") < names.index("thermal.board_back")
        back = next(t for t, name, _ in sat.events if name == "thermal.board_back")
        assert back < 110.0  # three missed polls, a cycle, an answer
        assert sat.world.power_ups[1] == 2  # the thermal rail: on at boot, cycled once
        assert sat.flight.component("mode").mode is Mode.NOMINAL  # no SAFE needed
        temps = []
        sat.flight.bus.subscribe("thermal.radiator_temp_c", lambda t, s: temps.append(s.t_s))
        sat.flight.run_until(210.0)
        assert len(temps) == 10  # telemetry flows again
    finally:
        sat.close()


def test_a_board_that_stays_silent_through_its_cycles_sends_the_satellite_to_safe() -> None:
    sat = satellite()
    try:
        sat.flight.run_until(70.0)
        sat.inject.dead_board("thermal")  # dead for good: cycling does not help
        sat.flight.run_until(200.0)
        cycles = [a for _, n, a in sat.events if n == "fdir.board_power_cycled"]
        assert [c["attempt"] for c in cycles] == [1, 2, 3]
        assert any(n == "fdir.board_given_up" for _, n, _ in sat.events)
        assert sat.flight.component("mode").mode is Mode.SAFE
        assert sat.world.accelerator.state == "off"
    finally:
        sat.close()


def test_a_red_limit_held_for_its_persistence_sends_the_satellite_to_safe() -> None:
    sat = satellite()
    try:
        sat.flight.submit("power.switch", {"channel": 2, "on": True})
        sat.flight.submit("mode.set", {"mode": "compute"})
        sat.flight.run_until(70.0)
        assert sat.flight.component("mode").mode is Mode.COMPUTE
        sat.inject.drain_battery(0.25)  # a sudden drain: below the 30 % red limit
        sat.flight.run_until(75.0)
        assert sat.flight.component("mode").mode is Mode.COMPUTE  # persistence not yet met
        sat.flight.run_until(80.0)
        assert sat.flight.component("mode").mode is Mode.SAFE
        assert any(n == "fdir.limit_red" and a["point"] == "power.soc_pct"
                   for _, n, a in sat.events)
    finally:
        sat.close()


def test_a_flight_software_hang_trips_the_watchdog_and_the_satellite_recovers_in_safe() -> None:
    sat = satellite()
    try:
        sat.run_until(100.0)
        first = sat.flight
        # Hung: time passes, nothing kicks the watchdog (last kicked at most a sixth of
        # its 30 s before the hang).
        sat.clock.sleep_until(140.0)
        assert sat.world.power_ups[0] == 1  # the power board cut the flight computer
        sat.run_until(150.0)
        assert sat.reboots == 1 and sat.flight is not first
        assert sat.flight.boot_cause == "watchdog"
        assert sat.flight.component("mode").mode is Mode.SAFE
        hk = sat.drivers["power"].housekeeping()
        assert hk.watchdog_resets == 1 and hk.fc_boot_cause == "watchdog"
        polls = []
        sat.flight.bus.subscribe("power.soc_pct", lambda t, s: polls.append(s.t_s))
        sat.flight.submit("mode.set", {"mode": "nominal"})
        sat.run_until(220.0)  # kicked again: no second reset
        assert len(polls) == 70 and sat.reboots == 1
        assert sat.flight.component("mode").mode is Mode.NOMINAL
    finally:
        sat.close()


def test_a_hot_case_throttles_before_the_limit_and_stays_below_slowdown() -> None:
    sat = satellite()
    try:
        thermal = sat.world.thermal
        # A degraded cold plate: a fifth of the conductance to the radiator.
        thermal.links_w_k = [(a, b, g / 5 if (a, b) == ("accelerator", "radiator") else g)
                             for a, b, g in thermal.links_w_k]
        sat.flight.submit("power.switch", {"channel": 2, "on": True})
        sat.flight.submit("mode.set", {"mode": "compute"})
        temps = []
        sat.flight.bus.subscribe("accelerator.temp_c", lambda t, s: temps.append(s.value))
        sat.run_until(4000.0)
        throttles = [t for t, n, _ in sat.events if n == "mode.throttled"]
        assert throttles and len(throttles) <= 3  # throttled, without flicker
        first = throttles[0]
        assert 74.0 < temps[int(first) - 1] < 80.0  # at the yellow limit, not after it
        assert max(temps) < 85.0  # never reached the slowdown temperature
    finally:
        sat.close()


def test_a_latchup_is_tripped_by_the_power_board_and_fdir_brings_the_load_back() -> None:
    sat = satellite()
    try:
        sat.flight.submit("power.switch", {"channel": 2, "on": True})
        sat.flight.submit("mode.set", {"mode": "compute"})
        sat.flight.submit("compute.submit", {"workload": "mlp", "seed": 4, "steps": 40})
        sat.run_until(20.0)
        sat.inject.load_latchup(2)  # a single-event latch-up on the accelerator
        sat.run_until(60.0)
        names = [n for _, n, _ in sat.events]
        assert names.index("power.latchup") < names.index("fdir.channel_restored")
        assert sat.drivers["power"].housekeeping().latchups[2] == 1
        assert sat.world.switches[2] and not sat.world.latched_loads[2]
        assert sat.world.accelerator.state == "on"  # the mode manager reasserted it
        jobs = sat.flight.component("compute").jobs
        assert jobs[1].state.value == "completed"
    finally:
        sat.close()


def test_the_power_board_trips_a_rail_on_command_as_an_over_current_would() -> None:
    """`trip` (the bench's latch-up): the channel goes off and counts a latch-up; a rail
    that is off, or the flight computer's, is refused with the reason."""
    sat = satellite()
    try:
        power = sat.drivers["power"]
        power.set_switch(2, True)
        power.trip(2)
        hk = power.housekeeping()
        assert not hk.switches[2] and hk.latchups[2] == 1 and not sat.world.switches[2]
        with pytest.raises(BoardFault, match="channel 2 is off: nothing to trip"):
            power.trip(2)
        with pytest.raises(BoardFault, match="feeds the flight computer"):
            power.trip(0)
        with pytest.raises(ValueError, match="out of range"):
            power.trip(8)
        assert power.housekeeping().latchups == (0, 0, 1, 0, 0, 0, 0, 0)
    finally:
        sat.close()


def test_a_low_voltage_disconnect_sheds_the_loads_and_the_satellite_goes_safe() -> None:
    sat = satellite()
    try:
        sat.flight.submit("power.switch", {"channel": 2, "on": True})
        sat.run_until(10.0)
        sat.inject.array_failure()  # the battery carries every load
        sat.inject.drain_battery(0.01)  # nearly empty: the terminal sags below 24.5 V
        sat.run_until(15.0)
        assert not any(sat.world.switches[1:]) and sat.world.switches[0]
        assert sat.drivers["power"].housekeeping().lvd_trips >= 1
        assert sat.flight.component("mode").mode is Mode.SAFE
    finally:
        sat.close()


def test_a_board_babbling_garbage_in_valid_frames_is_handled_as_a_silent_one() -> None:
    from hal.transport import InProcessTransport
    from tests.doubles import Babbling

    sat = satellite()
    try:
        sat.flight.run_until(100.0)
        babble = Babbling(sat.emulators["thermal"].receive)
        sat.drivers["thermal"].link.transport = InProcessTransport(babble)
        sat.flight.run_until(104.5)
        babble.on = False  # the power cycle cures it, as it cures a latch-up
        sat.flight.run_until(120.0)
        names = [name for _, name, _ in sat.events]
        assert names.index("thermal.board_silent") < names.index("fdir.board_power_cycled")
        assert names.index("fdir.board_power_cycled") < names.index("thermal.board_back")
        silent = next(a for _, n, a in sat.events if n == "thermal.board_silent")
        assert "does not decode" in silent["reason"] or "not a map" in silent["reason"]
        assert sum(sat.flight.executive.task_errors.values()) == 0
    finally:
        sat.close()


def test_a_task_failing_every_run_starves_the_watchdog_and_the_reboot_keeps_state() -> None:
    sat = satellite()
    try:
        sat.flight.submit("compute.submit", {"workload": "mlp", "seed": 1})
        sat.run_until(100.0)
        ex = sat.flight.executive

        def broken() -> None:
            raise RuntimeError("a bug that fires every run")

        ex.replace("thermal.poll", broken)
        sat.run_until(125.0)
        assert sat.reboots == 0  # a failing task is given its time
        seen = {}  # what the rebooted software telemeters (a status: once, then on change)
        sat.on_reboot.append(lambda flight: flight.bus.subscribe(
            "fsw.boot_cause", lambda t, s: seen.update(cause=s.value)))
        sat.run_until(260.0)
        unhealthy = [a for _, n, a in sat.events if n == "fsw.unhealthy"]
        assert unhealthy and "task thermal.poll has failed every run" in unhealthy[0]["reason"]
        assert sat.reboots == 1 and sat.flight.boot_cause == "watchdog"
        assert sat.flight.system.boots == 2
        assert seen == {"cause": "watchdog"}  # telemetered
        assert list(sat.flight.component("compute").jobs) == [1]  # the job table survived
        assert sat.flight.submit("compute.submit", {"workload": "mlp", "seed": 2}) > 0
        sat.run_until(263.0)
        assert list(sat.flight.component("compute").jobs) == [1, 2]
    finally:
        sat.close()
