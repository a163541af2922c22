import pytest

from flight.bus import COMMAND, EVENT, Bus
from flight.component import CommandFailed, Component, command
from flight.dispatcher import Dispatcher, Status
from flight.software import FlightSoftware
from hal.boards import AcceleratorState
from sim.clock import VirtualClock
from tests.flight.fakes import FakeAccelerator, FakePower, FakeThermal


@pytest.fixture
def fsw() -> FlightSoftware:
    return FlightSoftware(VirtualClock(), power=FakePower(), thermal=FakeThermal(),
                          accelerator=FakeAccelerator(), rails={"accelerator": 2})


def test_a_valid_command_completes_and_reaches_the_board(fsw) -> None:
    result = fsw.dispatcher.dispatch("power.switch", {"channel": 3, "on": True})
    assert result.status is Status.COMPLETED and result.reason == ""
    assert fsw.component("power").board.switches[3]
    assert fsw.component("power").counters["cmd_accepted"] == 1


def test_an_enum_argument_reaches_the_handler_typed(fsw) -> None:
    fsw.dispatcher.dispatch("accelerator.set_state", {"state": "idle"})
    assert fsw.component("accelerator").board.state is AcceleratorState.IDLE


@pytest.mark.parametrize("name,args,reason", [
    ("power.swtich", {"channel": 3, "on": True}, "unknown command 'power.swtich'"),
    ("nothing", {}, "unknown command 'nothing'"),
    ("power.switch", {"channel": 9, "on": True}, "channel = 9 is above the maximum 7"),
    ("power.switch", {"channel": "3", "on": True}, "channel must be an integer"),
    ("power.switch", {"channel": 3}, "missing argument 'on'"),
    ("accelerator.set_clock", {"clock_pct": 5}, "clock_pct = 5 % is below the minimum 10 %"),
    ("accelerator.set_state", {"state": "max"}, "must be one of off, idle, on"),
    ("power.switch", [3, True], "arguments must be a map"),
])
def test_bad_commands_are_rejected_with_the_reason_and_never_run(fsw, name, args, reason) -> None:
    board = fsw.component("power").board
    before = list(board.switches)
    result = fsw.dispatcher.dispatch(name, args)
    assert result.status is Status.REJECTED
    assert reason in result.reason
    assert board.switches == before and "switch" not in board.calls
    assert fsw.dispatcher.counters["rejected"] == 1


def test_a_rejection_is_counted_by_the_owning_component(fsw) -> None:
    samples = []
    fsw.bus.subscribe("power.cmd_rejected", lambda t, s: samples.append(s.value))
    fsw.dispatcher.dispatch("power.switch", {"channel": 99, "on": True})
    assert fsw.component("power").counters["cmd_rejected"] == 1 and samples == [1]


def test_a_board_fault_fails_the_command_with_the_board_reason(fsw) -> None:
    result = fsw.dispatcher.dispatch("thermal.heater", {"heater": 1, "on": True})
    assert result.status is Status.FAILED
    assert result.reason == "thermal: heater: heater 1 is open-circuit"


def test_queued_commands_run_at_the_next_dispatch_and_report_on_the_bus(fsw) -> None:
    results, events = [], []
    fsw.bus.subscribe(COMMAND, lambda t, r: results.append(r))
    fsw.bus.subscribe(EVENT, lambda t, e: events.append(e))
    first = fsw.submit("power.switch", {"channel": 4, "on": True})
    second = fsw.submit("fsw.noop")
    assert results == []
    fsw.run_until(0.1)
    assert [(r.id, r.status) for r in results] == [(first, Status.COMPLETED),
                                                   (second, Status.COMPLETED)]
    assert results[0].t_s == pytest.approx(0.1)
    assert [e.name for e in events] == ["power.switch_changed", "fsw.noop"]
    assert events[0].args == {"channel": 4, "on": True}


class Buggy(Component):
    name = "buggy"

    @command
    def refuse(self) -> None:
        """Refuses, as a handler should."""
        raise CommandFailed("not now: the moon is in the way")

    @command
    def crash(self) -> None:
        """Has a bug."""
        raise ValueError("list index out of range, somewhere")


def test_a_refusal_fails_with_its_reason_and_a_handler_bug_is_an_internal_error() -> None:
    buggy = Buggy()
    dispatcher = Dispatcher([buggy], Bus(), VirtualClock())
    refused = dispatcher.dispatch("buggy.refuse", {})
    assert (refused.status, refused.reason) == (Status.FAILED,
                                                "not now: the moon is in the way")
    crashed = dispatcher.dispatch("buggy.crash", {})
    assert crashed.status is Status.FAILED
    assert crashed.reason == "internal error: ValueError: list index out of range, somewhere"
    assert dispatcher.counters["internal_errors"] == 1 and dispatcher.counters["failed"] == 2
    assert buggy.counters["cmd_accepted"] == 2 and buggy.counters["cmd_failed"] == 2


def test_reset_counters_zeroes_one_component_and_leaves_the_others(fsw) -> None:
    fsw.dispatcher.dispatch("power.switch", {"channel": 3, "on": True})
    fsw.dispatcher.dispatch("power.switch", {"channel": 99, "on": True})
    fsw.dispatcher.dispatch("thermal.heater", {"heater": 1, "on": True})  # open circuit
    fsw.dispatcher.dispatch("fsw.noop", {})
    power, thermal = fsw.component("power"), fsw.component("thermal")
    assert power.counter_values() == {"cmd_accepted": 1, "cmd_rejected": 1, "cmd_failed": 0,
                                      "board_errors": 0}
    assert thermal.counter_values()["cmd_failed"] == 1
    seen = {}
    fsw.bus.subscribe("power.cmd_rejected", lambda t, s: seen.update(rejected=s.value))
    assert fsw.dispatcher.dispatch("power.reset_counters", {}).status is Status.COMPLETED
    assert set(power.counter_values().values()) == {0} and seen == {"rejected": 0}
    assert thermal.counter_values()["cmd_failed"] == 1  # not power's to reset
    assert fsw.component("fsw").counters["cmd_accepted"] == 1


def test_the_systems_counts_kept_by_the_executive_reset_too(fsw) -> None:
    fsw.executive.overruns = 5
    system = fsw.component("fsw")
    assert system.counter_values()["overruns"] == 5
    fsw.dispatcher.dispatch("fsw.reset_counters", {})
    fsw.executive.overruns = 7
    assert system.counter_values()["overruns"] == 2
