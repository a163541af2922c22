"""The flight software's own health and the watchdog it kicks."""

from __future__ import annotations

from flight.software import FlightSoftware
from sim.clock import VirtualClock
from tests.flight.fakes import FakeAccelerator, FakePower, FakeThermal


class PowerWithTimeout(FakePower):
    def __init__(self, watchdog_s: float) -> None:
        super().__init__()
        self.watchdog_s = watchdog_s
        self.kicks: list[float] = []
        self.clock: VirtualClock | None = None

    def kick_watchdog(self) -> float:
        super().kick_watchdog()  # raises while silent
        assert self.clock is not None
        self.kicks.append(self.clock.now_s())
        return self.watchdog_s


def flight(watchdog_s: float) -> tuple[FlightSoftware, PowerWithTimeout]:
    power, clock = PowerWithTimeout(watchdog_s), VirtualClock()
    power.clock = clock
    sw = FlightSoftware(clock, power=power, thermal=FakeThermal(),
                        accelerator=FakeAccelerator())
    return sw, power


def gaps(kicks: list[float]) -> set[float]:
    return {round(b - a, 6) for a, b in zip(kicks, kicks[1:], strict=False)}


def test_the_watchdog_is_kicked_every_sixth_of_the_timeout_the_board_gives() -> None:
    sw, power = flight(30.0)
    sw.run_until(60.0)
    assert gaps(power.kicks) == {5.0} and power.kicks[0] <= 1.0
    sw, power = flight(3.0)  # never less often than once a second
    sw.run_until(20.0)
    assert gaps(power.kicks) == {1.0}
    sw, power = flight(3600.0)  # nor further apart than 10 s, whatever the board says
    sw.run_until(60.0)
    assert gaps(power.kicks) == {10.0}


def test_an_unheard_kick_is_sent_again_the_next_second() -> None:
    sw, power = flight(30.0)
    sw.run_until(10.5)
    assert power.kicks == [1.0, 6.0]
    power.silent = True  # the kicks due at 11 s, then 12 and 13 s, go unheard
    sw.run_until(13.5)
    power.silent = False
    sw.run_until(20.5)
    assert power.calls.count("kick") == 2 + 3 + 2
    assert power.kicks == [1.0, 6.0, 14.0, 19.0]


def test_an_unhealthy_computer_stops_kicking() -> None:
    sw, power = flight(30.0)
    sw.executive.replace("mode.evaluate", lambda: 1 / 0)  # fails every run
    sw.run_until(100.0)
    failing_s = sw.component("fsw").param("failing_task_s")
    assert power.kicks and power.kicks[-1] <= failing_s + 1.0
    assert sw.component("fsw").unhealthy_reason.startswith("task mode.evaluate")
