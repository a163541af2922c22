"""The operator's console on its own, against a scripted satellite that answers each
telecommand as the test says: verification, waits, events, scripts and the watch loop."""

import struct

import pytest
from spacepackets.ecss import PusTm

from flight.software import FlightSoftware
from ground.client import GroundClient, Signer
from ground.console import Console, ConsoleError, parse_args
from hal import layout
from hal.dictionary import ArgumentError
from hal.layout import Layouts, name_id
from hal.packetlink import InProcessLink
from hal.pus import APID, FAILURES, N, verification
from hal.spacepacket import cuc

DICTIONARY = FlightSoftware.dictionary()
LAYOUTS = Layouts(DICTIONARY)
POWER = next(s for s in LAYOUTS.structures.values() if s.name == "power")


class Scripted:
    """The flight end: each idle step advances time by a second and answers every TC
    that came with `answer` (1, 3, 7; or a failure), and sends what `queue` holds."""

    def __init__(self) -> None:
        self.link, ground = InProcessLink.pair()
        self.t_s = 0.0
        self.answer: tuple[int, ...] = (1, 3, 7)
        self.queue: list[bytes] = []
        self.client = GroundClient(ground, DICTIONARY, Signer(1, bytes(32)),
                                   clock=lambda: self.t_s)
        self.console = Console(self.client, now=lambda: self.t_s, idle=self.step)

    def tm(self, service: int, subtype: int, data: bytes) -> bytes:
        return PusTm(service, subtype, timestamp=cuc(self.t_s),
                     source_data=data, apid=APID, seq_count=0, message_counter=0,
                     destination_id=1).pack()

    def step(self) -> None:
        self.t_s += 1.0
        for packet in self.link.receive():
            request = struct.unpack(">HH", packet[:4])
            for subtype in self.answer:
                code, why = (FAILURES["failed"], "the board said no") if subtype == 8 else (0, "")
                self.link.send(self.tm(1, subtype, verification(subtype, *request, code, why)))
        for packet in self.queue:
            self.link.send(packet)
        self.queue.clear()

    def housekeeping(self, **values: float) -> bytes:
        points = [values.get(p.name.split(".")[1]) for p in POWER.points]
        return self.tm(3, 25, N.pack(POWER.sid) + layout.pack(POWER.points, points))

    def event(self, name: str, **args) -> bytes:
        spec = LAYOUTS.events[name_id(name)]
        return self.tm(5, 2, N.pack(name_id(name))
                       + layout.pack(spec.args, [args.get(a.name) for a in spec.args]))


@pytest.fixture
def sat() -> Scripted:
    return Scripted()


def test_send_and_verify_returns_once_completed(sat) -> None:
    sent = sat.console.send_and_verify("power.switch", {"channel": 2, "on": True})
    assert sent.stages == ["accepted", "started", "completed"] and sat.t_s == 1.0


def test_a_failed_command_is_a_console_error_with_the_reason(sat) -> None:
    sat.answer = (1, 3, 8)
    with pytest.raises(ConsoleError, match=r"fsw.noop: failed \(failed: the board said no\)"):
        sat.console.send_and_verify("fsw.noop")


def test_a_command_nobody_answers_times_out_on_the_console_clock(sat) -> None:
    sat.answer = ()
    with pytest.raises(ConsoleError, match="fsw.noop: no completion report: nothing after 5 s"):
        sat.console.send_and_verify("fsw.noop", timeout_s=5.0)
    assert sat.t_s == 5.0


def test_wait_for_names_the_last_value_seen_when_it_gives_up(sat) -> None:
    sat.queue.append(sat.housekeeping(batt_v=27.0))
    with pytest.raises(ConsoleError, match=r"wait power.batt_v: not met in 3 s \(last value: "
                       r"27.0\)"):
        sat.console.wait_for("power.batt_v", lambda v: v > 30, timeout_s=3.0)
    with pytest.raises(ConsoleError, match="unknown telemetry point 'power.bat_v'"):
        sat.console.wait_for("power.bat_v", lambda v: True)


def test_expect_event_counts_an_event_once(sat) -> None:
    sat.queue += [sat.event("power.latchup", channel=2), sat.event("power.latchup", channel=3)]
    assert sat.console.expect_event("power.latchup").args == {"channel": 2}
    assert sat.console.expect_event("power.latchup").args == {"channel": 3}
    with pytest.raises(ConsoleError, match="expect power.latchup: nothing after 2 s"):
        sat.console.expect_event("power.latchup", timeout_s=2.0)


def test_expect_event_finds_one_already_received_in_any_order_by_its_arguments(sat) -> None:
    sat.queue += [sat.event("power.latchup", channel=2), sat.event("fsw.noop"),
                  sat.event("power.latchup", channel=5)]
    started = sat.t_s
    assert sat.console.expect_event("fsw.noop").name == "fsw.noop"  # after the first latchup
    assert sat.console.expect_event("power.latchup", args={"channel": 5}).args["channel"] == 5
    assert sat.console.expect_event("power.latchup").args == {"channel": 2}  # the one left
    with pytest.raises(ConsoleError, match="expect power.latchup {'channel': 2}: nothing"):
        sat.console.expect_event("power.latchup", args={"channel": 2}, timeout_s=2.0)
    sat.queue += [sat.event("power.latchup", channel=2)]
    later = sat.console.expect_event("power.latchup", since_s=started + 1, timeout_s=5.0)
    assert later.t_s >= started + 1


def test_an_unless_event_ends_the_wait_at_once_with_what_it_said(sat) -> None:
    sat.queue += [sat.event("fsw.noop"), sat.event("power.latchup", channel=4)]
    with pytest.raises(ConsoleError, match=r"expect fsw.booted: power.latchup "
                       r"\{'channel': 4\} came first"):
        sat.console.expect_event("fsw.booted", timeout_s=600.0, unless=("power.latchup",))
    assert sat.t_s < 10  # not the whole timeout
    # An ending event is taken: the next wait is not ended by it again.
    with pytest.raises(ConsoleError, match="expect fsw.booted: nothing after 3 s"):
        sat.console.expect_event("fsw.booted", timeout_s=3.0, unless=("power.latchup",))
    # The wanted event before one that would end the wait: it is found.
    sat.queue += [sat.event("fsw.booted"), sat.event("power.latchup", channel=5)]
    assert sat.console.expect_event("fsw.booted", unless=("power.latchup",)).name == "fsw.booted"


def test_a_script_runs_its_steps_and_a_failing_line_is_named(sat) -> None:
    log: list[dict] = []
    sat.queue.append(sat.housekeeping(soc_pct=80.0))
    steps = sat.console.run_script("# checkout\nsend power.switch channel=2 on=true\n"
                                   "wait power.soc_pct > 50\n\nsleep 2\n", log.append)
    assert steps == 3 and [e["line"] for e in log] == [2, 3, 5]
    assert log[0]["stages"][-1] == "completed" and log[1]["value"] == 80.0
    with pytest.raises(ConsoleError, match="line 2: power.switch: 'channel' is not name=value"):
        sat.console.run_script("send fsw.noop\nsend power.switch channel\n")
    with pytest.raises(ConsoleError, match="line 1: cannot read 'launch now'"):
        sat.console.run_script("launch now\n")


def test_watch_hands_over_housekeeping_with_limit_states_and_each_event_once(sat) -> None:
    sat.queue += [sat.housekeeping(batt_v=34.5, soc_pct=35.0), sat.event("power.latchup",
                                                                          channel=1)]
    seen_hk: list = []
    seen_events: list = []
    sat.console.watch(3.0, lambda t, values, states: seen_hk.append((values, states)),
                      seen_events.append)
    ((values, states),) = seen_hk
    assert values["power.batt_v"] == 34.5 and states["power.batt_v"] == "red"
    assert states["power.soc_pct"] == "yellow" and states["power.batt_a"] == "ok"
    assert [e.name for e in seen_events] == ["power.latchup"]


def test_typed_words_become_typed_arguments() -> None:
    spec = DICTIONARY.command("power.switch")
    assert parse_args(spec, ["channel=0x3", "on=yes"]) == {"channel": 3, "on": True}
    with pytest.raises(ArgumentError, match="power.switch: channel='three' is not int"):
        parse_args(spec, ["channel=three"])
    with pytest.raises(ArgumentError, match="unknown argument 'chanel'"):
        parse_args(spec, ["chanel=3"])
