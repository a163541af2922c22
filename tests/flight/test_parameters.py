"""Parameters set over the space link take effect, and keep taking effect after a reboot:
the value the component uses (not only the one TC[20,2] reads back), including what a
component derived from it when it was built."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from boards.definition import default_path, load
from flight.compute.runner import Protection
from flight.modes import Budget, Mode
from flight.software import FlightSoftware
from ground.client import GroundClient, Signer
from hal.auth import KeyFile
from hal.errors import BoardTimeout
from hal.packetlink import InProcessLink
from skyrack.assembly import assemble

KEYS = KeyFile(1, {1: bytes(range(32))})
PARAMETERS = FlightSoftware.dictionary().parameters


def another_value(spec: Any) -> Any:
    """A value in range that differs from the default."""
    if spec.type == "bool":
        return not spec.default
    low = spec.min if spec.min is not None else spec.default - 10
    high = spec.max if spec.max is not None else spec.default + 10
    value = (spec.default + high) / 2 if spec.default < high else (spec.default + low) / 2
    return round(value) if spec.type == "int" else value


class Satellite:
    """The default satellite on a state directory, with a ground on an in-process link;
    `reboot()` builds it again on the same storage."""

    def __init__(self, state) -> None:
        self.state = state
        self.counter = 0
        self.boot()

    def boot(self) -> None:
        flight_end, ground_end = InProcessLink.pair()
        self.sat = assemble(load(default_path()), link=flight_end, keys=KEYS, state=self.state)
        self.ground = GroundClient(ground_end, self.sat.flight.dictionary(),
                                   Signer(1, KEYS.keys[1], self.counter),
                                   clock=self.sat.clock.now_s)

    def reboot(self) -> None:
        self.counter = self.ground.signer.counter  # type: ignore[union-attr]
        self.sat.close()
        self.boot()

    def run(self, seconds: float = 1.0) -> None:
        self.sat.run_until(self.sat.clock.now_s() + seconds)
        self.ground.poll()

    def component(self, name: str) -> Any:
        return self.sat.flight.component(name.partition(".")[0])


@pytest.fixture
def satellite(tmp_path):
    sat = Satellite(tmp_path / "state")
    yield sat
    sat.sat.close()


def derived(sat: Satellite, name: str) -> Any:
    """What a component built from the parameter, where it keeps more than the value."""
    flight = sat.sat.flight
    return {
        "link.replay_window": lambda: flight.space_link.ring.window,
        "compute.upsets_per_bit_day": lambda: flight.component("compute").upsets.prior * 86400,
        "compute.hangs_per_day": lambda: flight.component("compute").hangs.prior * 86400,
        "mode.orbit_period_s": lambda: flight.component("mode").eclipses.period_s,
        "mode.eclipse_prior_s": lambda: flight.component("mode").eclipses.eclipse_s,
    }.get(name, lambda: sat.component(name).param(name.partition(".")[2]))()


@pytest.mark.parametrize("spec", PARAMETERS, ids=[p.name for p in PARAMETERS])
def test_a_parameter_set_over_the_link_is_used_before_and_after_a_reboot(satellite, spec):
    value = another_value(spec)
    assert value != spec.default
    assert derived(satellite, spec.name) == pytest.approx(spec.default)
    sent = satellite.ground.set_parameter(spec.name, value)
    satellite.run()
    assert sent.stages[-1] == "completed", sent.stages
    assert derived(satellite, spec.name) == pytest.approx(value)
    satellite.reboot()
    assert derived(satellite, spec.name) == pytest.approx(value)
    read = satellite.ground.get_parameters(spec.name)
    satellite.run()
    assert read.stages[-1] == "completed"
    values = [satellite.ground.parameter_values(tm) for tm in satellite.ground.replies
              if (tm.service, tm.subtype) == (20, 2)]
    assert values and values[-1] == {spec.name: pytest.approx(value)}


def test_the_upset_prior_reaches_the_scrub_interval(satellite) -> None:
    """compute.upsets_per_bit_day is what the scrub interval is computed from while few
    upsets have been seen: a higher prior scrubs more often."""
    manager = satellite.sat.flight.component("compute")
    before = manager.upsets.rate
    satellite.ground.set_parameter("compute.upsets_per_bit_day", 1e-5)
    satellite.run()
    assert manager.upsets.rate == pytest.approx(1e-5 / 86400) and manager.upsets.rate > before


def test_an_eclipse_prior_gives_way_to_what_is_measured(satellite) -> None:
    watch = satellite.sat.flight.component("mode").eclipses
    watch.update(100.0, 1000.0)
    watch.update(200.0, 0.0)  # an eclipse starts
    watch.update(2000.0, 1000.0)  # and ends: 1800 s measured
    satellite.ground.set_parameter("mode.eclipse_prior_s", 900.0)
    satellite.run()
    assert watch.eclipse_s == 1800.0  # the measurement stands; the prior was for before it


# -- what each parameter changes in what the flight software does ---------------------
#
# A probe puts one decision of the flight software in front of fixed inputs and returns
# what it decided. Each is run on a satellite at the defaults, on one where the
# parameter was set over the link, and on that one rebooted.

def _failures_until_silent(board: str) -> Callable[[Satellite], Any]:
    def probe(sat: Satellite) -> int:
        owner = sat.component(board)

        def fail() -> None:
            raise BoardTimeout(board, "tlm", "probe")

        owner.failures, owner.reachable, owner.powered = 0, True, True
        polls = 0
        while owner.reachable and polls < 100:
            owner.read(fail)
            polls += 1
        owner.failures, owner.reachable = 0, True
        return polls
    return probe


def _task_failing_60_s_is_unhealthy(sat: Satellite) -> bool:
    system = sat.component("fsw")
    ex = system.executive
    ex.failing_since["probe"] = ex.ticks - int(60 * ex.base_hz)
    try:
        return system._health().startswith("task probe")
    finally:
        del ex.failing_since["probe"]


def _heater_commands(temp_c: float, on: bool) -> Callable[[Satellite], Any]:
    def probe(sat: Satellite) -> list[bool]:
        seen: list[bool] = []
        sat.sat.flight.bus.subscribe("thermal.heater_changed",
                                     lambda t, record: seen.append(record.args["on"]))
        sat.component("thermal")._battery_thermostat(temp_c, (on, False))
        return seen
    return probe


def _compute_schedule(sat: Satellite) -> tuple[Any, ...]:
    manager = sat.component("compute")
    runner = SimpleNamespace(protection=Protection(), stripes=64, state_bytes=50_000_000)
    manager._schedule(runner)
    return (*manager.intervals_s, runner.protection.scrub_every,
            runner.protection.checkpoint_every)


def _mode(sat: Satellite, **latest: float) -> Any:
    mode = sat.component("mode")
    mode.latest.clear()
    mode.latest.update({f"{k.split('__')[0]}.{k.split('__')[1]}": v for k, v in latest.items()})
    return mode


def _soc_predicted(sat: Satellite) -> float:
    mode = _mode(sat, power__soc_pct=80.0, power__solar_power_w=1000.0,
                 power__load_power_w=500.0, accelerator__power_w=100.0)
    return round(mode.predict_soc_pct(mode.clock.now_s()), 9)


def _next_eclipse_after_one_seen(sat: Satellite) -> float:
    watch = sat.component("mode").eclipses
    watch.update(100.0, 1000.0)
    watch.update(200.0, 0.0)  # an eclipse starts
    watch.update(2000.0, 1000.0)  # and ends
    return watch.until_eclipse_s(3000.0)


def _budget(predicted: float | None, budget: Budget = Budget.OK,
            **latest: float) -> Callable[[Satellite], Budget]:
    def probe(sat: Satellite) -> Budget:
        mode = _mode(sat, **latest)
        mode.budget = budget
        return mode._decide(predicted)
    return probe


def _throttled_clock(sat: Satellite) -> int:
    sat.sat.world.set_switch(2, True)  # the accelerator's rail
    mode = sat.component("mode")
    mode.mode, mode.budget = Mode.COMPUTE, Budget.OK
    mode._apply(Budget.THROTTLED)
    return sat.sat.drivers["accelerator"].housekeeping().clock_pct


def _fdir(sat: Satellite, cycles: int, since_s: float) -> Any:
    fdir = sat.component("fdir")
    fdir.silent = {"thermal"}
    fdir.cycles["thermal"] = cycles
    fdir.last_cycle_s["thermal"] = fdir.clock.now_s() - since_s
    fdir.recover()
    return fdir


def _relatches(sat: Satellite) -> int:
    fdir = sat.component("fdir")
    fdir.tripped, fdir.relatches[3] = [3], 3
    fdir.recover()
    return fdir.relatches[3]


def _accepts_a_counter_2000_ahead(sat: Satellite) -> str:
    sat.ground.signer.counters.last += 2000  # type: ignore[union-attr]
    sent = sat.ground.command("fsw.noop")
    sat.run()
    return sent.stages[-1]


def _stored(kind: str) -> Callable[[Satellite], Any]:
    """What the packet store does with 5 000 packets of 1 KiB (more than its default
    4 MiB) kept out of contact, and back in contact."""
    def probe(sat: Satellite) -> Any:
        storage = sat.component("storage")
        for i in range(5000):
            storage.store.keep(i.to_bytes(4, "big") * 256)
        if kind == "kept":
            return len(storage.store.packets)
        if kind == "policy":
            return storage.store.counts["overwritten"], storage.store.counts["refused"]
        storage._contact = False  # as if contact had been lost, and now comes back
        before = len(storage.store.packets)
        storage.service()
        return before - len(storage.store.packets)  # played back in one tick
    return probe


BEHAVIOUR: dict[str, Callable[[Satellite], Any]] = {
    "storage.capacity_kb": _stored("kept"),
    "storage.overwrite": _stored("policy"),
    "storage.auto_playback": _stored("played"),
    "storage.playback_per_tick": _stored("played"),
    "power.silent_after": _failures_until_silent("power"),
    "thermal.silent_after": _failures_until_silent("thermal"),
    "accelerator.silent_after": _failures_until_silent("accelerator"),
    "fsw.failing_task_s": _task_failing_60_s_is_unhealthy,
    "thermal.battery_heater_on_c": _heater_commands(15.0, on=False),
    "thermal.battery_heater_off_c": _heater_commands(20.0, on=True),
    **{f"compute.{name}": _compute_schedule for name in (
        "steps_per_tick", "upsets_per_bit_day", "hangs_per_day", "losses_per_day",
        "storage_bytes_per_s", "checkpoint_fixed_s")},
    **{f"mode.{name}": _soc_predicted for name in (
        "battery_wh", "accelerator_w", "accelerator_idle_w", "horizon_s", "eclipse_prior_s")},
    "mode.orbit_period_s": _next_eclipse_after_one_seen,
    "mode.soc_floor_pct": _budget(50.0),
    "mode.soc_margin_pct": _budget(50.0),
    "mode.hysteresis_pct": _budget(50.0, Budget.SHED_POWER),
    "mode.throttle_c": _budget(None, accelerator__temp_c=80.0),
    "mode.stop_c": _budget(None, accelerator__temp_c=90.0),
    "mode.thermal_hysteresis_c": _budget(None, Budget.THROTTLED, accelerator__temp_c=65.0),
    "mode.throttle_pct": _throttled_clock,
    "fdir.max_cycles": lambda sat: "thermal" in _fdir(sat, 3, 1e9).given_up,
    "fdir.retry_s": lambda sat: _fdir(sat, 1, 20.0).cycles["thermal"],
    "fdir.max_relatches": _relatches,
    "link.replay_window": _accepts_a_counter_2000_ahead,
}


def test_every_declared_parameter_has_a_behaviour_probe() -> None:
    assert set(BEHAVIOUR) == {p.name for p in PARAMETERS}


@pytest.mark.parametrize("spec", PARAMETERS, ids=[p.name for p in PARAMETERS])
def test_a_parameter_set_over_the_link_changes_what_the_software_does(tmp_path, spec):
    probe = BEHAVIOUR[spec.name]
    at_default = Satellite(tmp_path / "default")
    try:
        default = probe(at_default)
    finally:
        at_default.sat.close()
    sat = Satellite(tmp_path / "set")
    try:
        sent = sat.ground.set_parameter(spec.name, another_value(spec))
        sat.run()
        assert sent.stages[-1] == "completed", sent.stages
        changed = probe(sat)
        sat.reboot()
        rebooted = probe(sat)
    finally:
        sat.sat.close()
    assert changed != default, f"{spec.name}: {default!r} either way"
    assert rebooted == changed
