"""Parameters set over the space link take effect, and keep taking effect after a reboot:
the value the component uses (not only the one TC[20,2] reads back), including what a
component derived from it when it was built."""

from __future__ import annotations

from typing import Any

import pytest

from boards.definition import default_path, load
from flight.software import FlightSoftware
from ground.client import GroundClient, Signer
from hal.auth import KeyFile
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
