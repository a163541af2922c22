import pytest

from flight.bus import EVENT, Sample
from flight.dispatcher import Status
from flight.modes import Budget, Mode
from flight.software import FlightSoftware
from hal.boards import AcceleratorState
from sim.clock import VirtualClock
from tests.flight.fakes import FakeAccelerator, FakePower, FakeThermal


@pytest.fixture
def fsw():
    sw = FlightSoftware(VirtualClock(), power=FakePower(), thermal=FakeThermal(),
                        accelerator=FakeAccelerator())
    sw.events = []
    sw.bus.subscribe(EVENT, lambda t, e: sw.events.append(e.name))
    return sw


def feed(fsw, **points) -> None:
    """Telemetry as the mode manager would hear it on the bus."""
    mode = fsw.component("mode")
    for name, value in points.items():
        topic = name.replace("__", ".")
        mode._on_sample(topic, Sample(fsw.clock.now_s(), topic, value))


def test_safe_is_left_for_nominal_only_and_compute_needs_nominal(fsw) -> None:
    mode = fsw.component("mode")
    assert mode.mode is Mode.NOMINAL and not fsw.component("compute").allowed
    mode.enter_safe("test")
    assert fsw.component("accelerator").board.state is AcceleratorState.OFF
    result = fsw.dispatcher.dispatch("mode.set", {"mode": "compute"})
    assert result.status is Status.FAILED and "leave SAFE for NOMINAL first" in result.reason
    fsw.dispatcher.dispatch("mode.set", {"mode": "nominal"})
    fsw.dispatcher.dispatch("mode.set", {"mode": "compute"})
    assert mode.mode is Mode.COMPUTE and fsw.component("compute").allowed
    assert fsw.component("accelerator").board.state is AcceleratorState.ON


def test_heat_throttles_then_stops_compute_and_it_resumes_when_cool(fsw) -> None:
    mode = fsw.component("mode")
    mode.set_param("battery_wh", 1e6)
    fsw.dispatcher.dispatch("mode.set", {"mode": "compute"})
    steps = []
    for temp in (70.0, 77.0, 83.0, 79.0, 74.0):
        feed(fsw, power__soc_pct=90.0, power__solar_power_w=1000.0, accelerator__temp_c=temp)
        mode.evaluate()
        steps.append(mode.budget)
    assert steps == [Budget.OK, Budget.THROTTLED, Budget.SHED_THERMAL, Budget.SHED_THERMAL,
                     Budget.OK]  # stays stopped until below the yellow limit again
    assert "mode.throttled" in fsw.events and "mode.compute_shed" in fsw.events


def test_in_eclipse_compute_is_shed_when_the_reserve_is_needed_not_before(fsw) -> None:
    mode = fsw.component("mode")
    fsw.dispatcher.dispatch("mode.set", {"mode": "compute"})
    clock = fsw.clock
    # A sunlit minute, then eclipse: the manager learns it from solar power.
    for _ in range(60):
        clock.sleep_until(clock.now_s() + 1)
        feed(fsw, power__soc_pct=95.0, power__solar_power_w=1300.0,
             power__load_power_w=825.0, accelerator__power_w=700.0)
        mode.evaluate()
    assert mode.budget is Budget.OK  # in sunlight the array carries compute
    soc = 95.0
    budgets = []
    for _ in range(2200):
        clock.sleep_until(clock.now_s() + 1)
        acc = 700.0 if mode.budget is Budget.OK else 80.0
        soc -= 100.0 * (125.0 + acc) / 3600.0 / mode.param("battery_wh")
        feed(fsw, power__soc_pct=soc, power__solar_power_w=0.0,
             power__load_power_w=125.0 + acc, accelerator__power_w=acc)
        mode.evaluate()
        budgets.append(mode.budget)
    shed_at = budgets.index(Budget.SHED_POWER)
    assert 300 < shed_at < 2000  # computed well into the eclipse first
    assert soc >= mode.param("soc_floor_pct")  # and the floor held to eclipse end
    assert mode.sheds == 1 and mode.sheds_in_eclipse == 1  # once, no flicker
