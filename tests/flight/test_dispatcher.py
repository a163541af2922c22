import pytest

from flight.bus import COMMAND, EVENT
from flight.dispatcher import Status
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
