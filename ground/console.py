"""The operator console's verbs over a GroundClient: send and wait for verification,
wait on telemetry, expect events, and run scripts of them. Waits poll the link on the
wall clock; what a satellite's time does meanwhile is the satellite's business.

A script is a text file, one step a line (`#` starts a comment):

    send power.switch channel=2 on=true      # waits for completion; fails the script if not
    wait power.soc_pct > 40 timeout=30       # a telemetry point against a number
    expect mode.changed timeout=10           # an event, by name
    sleep 2.5
"""

from __future__ import annotations

import operator
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ground.client import GroundClient, GroundEvent, Sent
from hal.dictionary import ArgumentError, CommandSpec, validate_args
from hal.errors import SkyrackError
from hal.spacepacket import Telemetry
from hal.valuetype import BadValue, ValueType

DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 86400.0
POLL_S = 0.02
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}


class ConsoleError(SkyrackError):
    """A step that did not happen as asked; the message says what was seen instead."""


def parse_args(spec: CommandSpec, words: Sequence[str]) -> dict[str, Any]:
    """`name=value` words typed by the command's declaration. Raises ArgumentError."""
    declared = {a.name: a for a in spec.args}
    out: dict[str, Any] = {}
    for word in words:
        name, eq, text = word.partition("=")
        if not eq:
            raise ArgumentError(f"{spec.name}: {word!r} is not name=value")
        arg = declared.get(name)
        if arg is None:
            raise ArgumentError(f"{spec.name}: unknown argument {name!r} (expected "
                                f"{', '.join(declared) or 'no arguments'})")
        try:
            out[name] = ValueType(arg.type).parse(arg, text)
        except BadValue as e:
            raise ArgumentError(f"{spec.name}: {e}") from None
    return out


def _pause() -> None:
    time.sleep(POLL_S)


def _split(words: list[str]) -> tuple[str, list[str], float]:
    """A script line's verb, its other words, and its timeout= (or the default)."""
    options = [w for w in words[1:] if w.startswith("timeout=")]
    rest = [w for w in words[1:] if not w.startswith("timeout=")]
    timeout_s = float(options[-1].split("=", 1)[1]) if options else DEFAULT_TIMEOUT_S
    return words[0], rest, timeout_s


@dataclass
class Console:
    """`now` and `idle` are the clock waits are measured on and what passes time while
    waiting: the wall clock and a short sleep, or for a simulated satellite its virtual
    clock and a step of the sim (so a wait of an orbit takes seconds, not an orbit)."""

    client: GroundClient
    now: Callable[[], float] = time.monotonic
    idle: Callable[[], None] = _pause
    # Events (by their number, counted from the first ever received) an earlier
    # expect_event took: each event satisfies one expect at most.
    _taken: set[int] = field(default_factory=set)

    def pump(self) -> None:
        self.client.poll()

    def until(self, done: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = self.now() + timeout_s
        while True:
            self.pump()
            result = done()
            if result:
                return result
            if self.now() >= deadline:
                raise ConsoleError(f"{what}: nothing after {timeout_s:g} s")
            self.idle()

    def send_and_verify(self, name: str, args: dict[str, Any] | None = None,
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> Sent:
        """Send, and wait until it completes. Raises ConsoleError if it fails or times out."""
        sent = self.client.command(name, args)
        self.until(lambda: sent.done, timeout_s, f"{name}: no completion report")
        if not sent.ok:
            failure = sent.failure
            why = f"{failure.failure}: {failure.reason}" if failure else "no reason given"
            raise ConsoleError(f"{name}: {sent.stages[-1]} ({why})")
        return sent

    def wait_for(self, point: str, predicate: Callable[[Any], bool],
                 timeout_s: float = DEFAULT_TIMEOUT_S, after_s: float | None = None) -> Any:
        """The first value of `point` (sampled at or after `after_s`, on-board time) that
        satisfies `predicate`."""
        if point not in {t.name for t in self.client.dictionary.telemetry}:
            raise ConsoleError(f"unknown telemetry point {point!r}")

        def check() -> Any:
            seen = self.client.values.get(point)
            if seen is None or (after_s is not None and seen[0] < after_s):
                return None
            return (seen[1],) if seen[1] is not None and predicate(seen[1]) else None

        try:
            return self.until(check, timeout_s, f"wait {point}")[0]
        except ConsoleError:
            last = self.client.values.get(point)
            raise ConsoleError(f"wait {point}: not met in {timeout_s:g} s (last value: "
                               f"{last[1] if last else 'none'})") from None

    def expect_event(self, name: str, timeout_s: float = DEFAULT_TIMEOUT_S, *,
                     args: dict[str, Any] | None = None,
                     since_s: float | None = None,
                     unless: Sequence[str] = ()) -> GroundEvent:
        """The earliest event `name` (with at least `args`, generated at or after
        on-board time `since_s`) that no earlier expect took, already received or
        still to come: an event that came with the command that caused it counts, in
        whatever order expects are made. An event named in `unless` that comes first
        (one that says the wait is in vain, e.g. compute.job_failed) ends the wait at
        once with a ConsoleError that carries it."""
        wanted = dict(args or {})
        detail = f" {wanted}" if wanted else ""

        def check() -> GroundEvent | None:
            events = list(self.client.events)
            first = self.client.events_total - len(events)  # the number of events[0]
            for index, event in enumerate(events):
                if first + index in self._taken:
                    continue
                if since_s is not None and event.t_s < since_s:
                    continue
                if event.name in unless:
                    self._taken.add(first + index)
                    raise ConsoleError(f"expect {name}{detail}: {event.name} {event.args} "
                                       f"came first (t={event.t_s:g} s)")
                if event.name != name or any(event.args.get(k) != v
                                             for k, v in wanted.items()):
                    continue
                self._taken.add(first + index)
                return event
            return None

        return self.until(check, timeout_s, f"expect {name}{detail}")

    def watch(self, seconds: float,
              on_housekeeping: Callable[[float, dict[str, Any], dict[str, str]], None],
              on_event: Callable[[GroundEvent], None]) -> None:
        """For `seconds`, hand every housekeeping packet to `on_housekeeping(t_s, values,
        states)` (each point's limit state: ok, yellow or red) and every event to
        `on_event`, as they arrive; `idle` between looks (it may raise to stop)."""
        specs = {t.name: t for t in self.client.dictionary.telemetry}
        seen = self.client.events_total
        end = self.now() + seconds
        while self.now() < end:
            for tm in self.client.poll():
                if (tm.service, tm.subtype) == (3, 25):
                    values = self.client.decode_hk(tm.data)
                    on_housekeeping(tm.time_s, values,
                                    {k: specs[k].limit_state(v) for k, v in values.items()})
            events = list(self.client.events)
            new = min(self.client.events_total - seen, len(events))
            seen = self.client.events_total
            for event in events[len(events) - new:]:
                on_event(event)
            self.idle()

    def request(self, service: int, subtype: int, data: bytes = b"", name: str = "",
                reply: tuple[int, int] | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[Sent, list[Telemetry]]:
        """Send any TC and wait for its completion (and, when it answers with `reply`,
        for the answer): the Sent and the replies of that kind that came meanwhile.
        Raises ConsoleError if it fails or times out."""
        before = self.client.replies_total
        sent = self.client.service(service, subtype, data, name)
        what = name or f"TC[{service},{subtype}]"

        def answers() -> list[Telemetry]:
            new = min(self.client.replies_total - before, len(self.client.replies))
            fresh = list(self.client.replies)[len(self.client.replies) - new:] if new else []
            return [tm for tm in fresh if (tm.service, tm.subtype) == reply]

        self.until(lambda: sent.done and (reply is None or not sent.ok or answers()),
                   timeout_s, f"{what}: no completion report")
        if not sent.ok:
            failure = sent.failure
            why = f"{failure.failure}: {failure.reason}" if failure else "no reason given"
            raise ConsoleError(f"{what}: {sent.stages[-1]} ({why})")
        return sent, answers()

    def check_script(self, text: str) -> int:
        """Check every line of a script before any runs: its verb, the command and its
        arguments, the point, comparison and bound, the event, the time. Returns the
        number of steps; raises ConsoleError naming the first bad line."""
        steps = 0
        points = {t.name: t for t in self.client.dictionary.telemetry}
        events = {e.name for e in self.client.dictionary.events}
        for number, line in enumerate(text.splitlines(), 1):
            try:
                words = shlex.split(line, comments=True)
                if not words:
                    continue
                verb, rest, timeout_s = _split(words)
                if not (0 < timeout_s <= MAX_TIMEOUT_S):
                    raise ConsoleError(f"timeout={timeout_s:g} is outside (0, {MAX_TIMEOUT_S}] s")
                if verb == "send" and rest:
                    validate_args(self.client.dictionary.command(rest[0]),
                                  parse_args(self.client.dictionary.command(rest[0]), rest[1:]))
                elif verb == "wait" and len(rest) == 3 and rest[1] in COMPARE:
                    if rest[0] not in points:
                        raise ConsoleError(f"unknown telemetry point {rest[0]!r}")
                    if not ValueType(points[rest[0]].type).numeric:
                        raise ConsoleError(f"{rest[0]} is {points[rest[0]].type}, not a number "
                                           f"to compare with {rest[1]}")
                    float(rest[2])
                elif verb == "expect" and len(rest) == 1:
                    if rest[0] not in events:
                        raise ConsoleError(f"unknown event {rest[0]!r}")
                elif verb == "sleep" and len(rest) == 1:
                    if not 0 <= float(rest[0]) <= MAX_TIMEOUT_S:
                        raise ConsoleError(f"sleep {rest[0]} is outside 0..{MAX_TIMEOUT_S} s")
                else:
                    raise ConsoleError(f"cannot read {' '.join(words)!r}: expected send NAME "
                                       "[ARG=VALUE ...], wait POINT OP NUMBER, expect EVENT "
                                       "or sleep SECONDS")
            except (ConsoleError, ArgumentError, ValueError) as e:
                raise ConsoleError(f"line {number}: {e}") from None
            steps += 1
        return steps

    def run_script(self, text: str, log: Callable[[dict[str, Any]], None] | None = None) -> int:
        """Check the whole script, then run each step; returns the steps run. Raises
        ConsoleError naming the line (before anything is sent, for a line that does
        not check)."""
        self.check_script(text)
        steps = 0
        for number, line in enumerate(text.splitlines(), 1):
            words = shlex.split(line, comments=True)
            if not words:
                continue
            try:
                result = self._step(words)
            except (ConsoleError, ArgumentError, ValueError) as e:
                raise ConsoleError(f"line {number}: {e}") from None
            steps += 1
            if log is not None:
                log({"line": number, "step": " ".join(words), **result})
        return steps

    def _step(self, words: list[str]) -> dict[str, Any]:
        verb, rest, timeout_s = _split(words)
        if verb == "send" and rest:
            spec = self.client.dictionary.command(rest[0])
            sent = self.send_and_verify(rest[0], parse_args(spec, rest[1:]), timeout_s)
            return {"stages": sent.stages}
        if verb == "wait" and len(rest) == 3 and rest[1] in COMPARE:
            point, op, bound = rest[0], COMPARE[rest[1]], float(rest[2])
            value = self.wait_for(point, lambda v: op(v, bound), timeout_s)
            return {"value": value}
        if verb == "expect" and len(rest) == 1:
            event = self.expect_event(rest[0], timeout_s)
            return {"t_s": event.t_s, "args": event.args}
        if verb == "sleep" and len(rest) == 1:
            end = self.now() + float(rest[0])
            while self.now() < end:
                self.pump()
                self.idle()
            return {}
        raise ConsoleError(f"cannot read {' '.join(words)!r}: expected send NAME [ARG=VALUE "
                           "...], wait POINT OP NUMBER, expect EVENT or sleep SECONDS")
