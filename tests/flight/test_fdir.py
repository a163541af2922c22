from flight.bus import EVENT, Bus, Sample
from flight.fdir import Fdir
from flight.power import PowerComponent
from hal.dictionary import Dictionary, TelemetrySpec
from sim.clock import VirtualClock
from tests.flight.fakes import FakePower


def limits(name: str, yellow, red, persistence_s: float) -> Dictionary:
    return Dictionary(telemetry=(TelemetrySpec(name, "float", yellow=yellow, red=red,
                                               persistence_s=persistence_s),))


class Modes:
    def __init__(self) -> None:
        self.safe: list[str] = []

    def enter_safe(self, reason: str) -> None:
        self.safe.append(reason)


def test_limits_need_their_persistence_and_raise_one_event_each_way() -> None:
    bus, clock, modes = Bus(), VirtualClock(), Modes()
    fdir = Fdir(PowerComponent(FakePower()), modes, (),
                limits("x.temp_c", (0.0, 50.0), (-10.0, 60.0), 3.0))
    fdir.bind(bus, clock)
    events = []
    bus.subscribe(EVENT, lambda t, e: events.append((e.name, e.args.get("point"))))
    values = [40, 55, 55, 55, 55, 70, 70, 70, 70, 45, 45]  # one sample a second
    for t, v in enumerate(values):
        bus.publish("x.temp_c", Sample(float(t), "x.temp_c", float(v)))
    assert [n for n, _ in events] == ["fdir.limit_yellow", "fdir.limit_red",
                                      "fdir.limit_cleared"]
    assert modes.safe == ["red limit on x.temp_c (70)"]


def test_a_glitch_shorter_than_the_persistence_raises_nothing() -> None:
    bus, modes = Bus(), Modes()
    fdir = Fdir(PowerComponent(FakePower()), modes, (),
                limits("x.v", (1.0, 2.0), (0.0, 3.0), 5.0))
    fdir.bind(bus, VirtualClock())
    events = []
    bus.subscribe(EVENT, lambda t, e: events.append(e.name))
    for t, v in enumerate([1.5, 9.0, 9.0, 1.5, 9.0, 1.5]):
        bus.publish("x.v", Sample(float(t), "x.v", v))
    assert events == [] and modes.safe == []


def test_fdir_keeps_a_bounded_record_of_its_actions() -> None:
    from flight.fdir import MAX_ACTIONS

    bus, clock, modes = Bus(), VirtualClock(), Modes()
    fdir = Fdir(PowerComponent(FakePower()), modes, (),
                limits("x.temp_c", (0.0, 50.0), (-10.0, 60.0), 0.0))
    fdir.bind(bus, clock)
    for t in range(4 * MAX_ACTIONS):  # red, cleared, red, cleared...: one action per red
        bus.publish("x.temp_c", Sample(float(t), "x.temp_c", 70.0 if t % 2 == 0 else 20.0))
    assert len(fdir.actions) == MAX_ACTIONS > 0
    assert len(modes.safe) == 2 * MAX_ACTIONS  # every one acted on; the record is bounded
