import pytest

from flight.executive import Executive
from sim.clock import VirtualClock


class JumpyClock(VirtualClock):
    """A clock whose sleeps overshoot, like a loaded flight computer."""

    def __init__(self, late_s: float) -> None:
        super().__init__()
        self.late_s = late_s

    def sleep_until(self, t_s: float) -> None:
        super().sleep_until(t_s + self.late_s)


def test_rate_groups_run_at_their_rates_on_the_clock() -> None:
    clock = VirtualClock()
    ex = Executive(clock)
    runs = {"10": [], "1": [], "2": []}
    ex.add("fast", 10, lambda: runs["10"].append(clock.now_s()))
    ex.add("slow", 1, lambda: runs["1"].append(clock.now_s()))
    ex.add("mid", 2, lambda: runs["2"].append(clock.now_s()))
    ex.run_until(10.0)
    assert len(runs["10"]) == 100 and len(runs["1"]) == 10 and len(runs["2"]) == 20
    assert runs["1"] == pytest.approx([float(s) for s in range(1, 11)])
    assert clock.now_s() == pytest.approx(10.0)
    assert ex.rates_hz == [10, 2, 1]


def test_a_rate_that_does_not_divide_the_base_rate_is_refused() -> None:
    ex = Executive(VirtualClock())
    with pytest.raises(ValueError, match="rate 3 Hz must divide the 10 Hz base rate"):
        ex.add("odd", 3, lambda: None)
    with pytest.raises(ValueError):
        ex.add("too fast", 20, lambda: None)


def test_a_failing_task_is_counted_and_the_others_still_run() -> None:
    ex = Executive(VirtualClock())
    ran, errors = [], []
    ex.add("bad", 1, lambda: 1 / 0)
    ex.add("good", 1, lambda: ran.append(1))
    ex.on_task_error = lambda name, e: errors.append((name, type(e).__name__))
    ex.run_until(3.0)
    assert len(ran) == 3 and ex.task_errors["bad"] == 3
    assert errors[0] == ("bad", "ZeroDivisionError")


def test_late_ticks_are_overruns_and_far_behind_skips_ahead() -> None:
    ex = Executive(JumpyClock(late_s=0.15))
    ex.run_until(1.0)
    assert ex.overruns > 0 and ex.skipped_ticks == 0
    far = Executive(JumpyClock(late_s=2.0))
    far.tick()
    assert far.skipped_ticks >= 10 and far.ticks > 10
