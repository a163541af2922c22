"""Fault detection, isolation and recovery: limits with persistence, and silent boards.

Limits. FDIR watches every point whose declaration carries limits (the dictionary's
yellow and red bounds and persistence, judged by its one `limit_state`): a value must
stay out of bounds for the persistence before it counts (one noisy sample is not a
fault). Yellow raises a warning event; red raises an error event and puts the
satellite in SAFE. An event is raised once on entry and once on clearing, not every
second.

Silent boards. When a board's owner reports its board silent (flight.boardwatch), FDIR
has that board's rail power-cycled by the power board's owner and waits for it to
answer. After `max_cycles` failed cycles, or at once for a board on no switched rail
(the power board itself), the satellite goes to SAFE.

Latch-ups. The power board cuts a channel that draws too much (which also clears the
latch-up); FDIR switches it back on, up to `max_relatches` times a channel, then leaves
it off. A low-voltage disconnect means the battery reached its hardware floor: SAFE.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any, ClassVar

from flight.boardwatch import BoardComponent
from flight.bus import Bus, EventRecord, Sample
from flight.component import Component, Event, Parameter, Telemetry, periodic
from flight.power import PowerComponent
from hal.clock import Clock
from hal.dictionary import Dictionary, Severity, TelemetrySpec
from hal.errors import BoardError

INF = float("inf")
MAX_ACTIONS = 256


class Fdir(Component):
    """Watches limits and board health, and acts."""

    name = "fdir"
    telemetry: ClassVar = (
        Telemetry("yellow", "int", "Points now outside their yellow limits"),
        Telemetry("red", "int", "Points now outside their red limits"),
        Telemetry("power_cycles", "int", "Board rails FDIR has power-cycled"),
    )
    events: ClassVar = (
        Event("limit_yellow", Severity.WARNING, "A point stayed outside its yellow limits",
              point="str", value="float"),
        Event("limit_red", Severity.ERROR, "A point stayed outside its red limits",
              point="str", value="float"),
        Event("limit_cleared", Severity.INFO, "A point is back within its limits",
              point="str", value="float"),
        Event("board_power_cycled", Severity.WARNING, "FDIR power-cycled a silent board",
              component="str", channel="int", attempt="int"),
        Event("board_given_up", Severity.ERROR, "A board stayed silent through its power "
              "cycles", component="str", cycles="int"),
        Event("channel_restored", Severity.WARNING, "FDIR switched a tripped channel back on",
              channel="int", attempt="int"),
        Event("channel_left_off", Severity.ERROR, "A channel kept latching up; left off",
              channel="int", relatches="int"),
    )
    parameters: ClassVar = (
        Parameter("max_cycles", "int", 3, "Power cycles of a silent board before SAFE",
                  None, 0, 20),
        Parameter("retry_s", "float", 10.0, "Wait for a power-cycled board to answer before "
                  "cycling it again", "s", 1.0, 3600.0),
        Parameter("max_relatches", "int", 3, "Times a tripped channel is switched back on",
                  None, 0, 100),
    )

    def __init__(self, power: PowerComponent, modes: Any,
                 boards: Sequence[BoardComponent] = (),
                 dictionary: Dictionary | None = None) -> None:
        """`power` owns the power board, `modes` the mode (SAFE); `boards` are the board
        owners whose silence FDIR cures; `dictionary` declares the limits."""
        super().__init__()
        self.power = power
        self.modes = modes
        self.boards = {b.name: b for b in boards}
        self.limits: dict[str, TelemetrySpec] = {
            t.name: t for t in (dictionary.telemetry if dictionary else ())
            if t.yellow is not None or t.red is not None}
        self.out_since: dict[tuple[str, str], float] = {}
        self.active: dict[str, str] = {}  # point -> "yellow" / "red"
        self.cycles: dict[str, int] = {}
        self.last_cycle_s: dict[str, float] = {}
        self.silent: set[str] = set()  # until the board answers again
        self.given_up: set[str] = set()
        self.relatches: dict[int, int] = {}
        self.tripped: list[int] = []  # channels to switch back on
        # The latest actions (each is also an event the ground archives): bounded.
        self.actions: collections.deque[tuple[float, str]] = collections.deque(
            maxlen=MAX_ACTIONS)

    def bind(self, bus: Bus, clock: Clock) -> None:
        super().bind(bus, clock)
        for point in self.limits:
            self.subscribe(point, self._on_sample)
        self.subscribe("power.latchup", self._on_latchup)
        self.subscribe("power.low_voltage_disconnect", self._on_low_voltage)
        for board in self.boards:
            self.subscribe(f"{board}.board_silent", self._on_board)
            self.subscribe(f"{board}.board_back", self._on_board)

    # -- limits ---------------------------------------------------------------------

    def _on_sample(self, topic: str, sample: Sample) -> None:
        limit = self.limits[topic]
        value, now = float(sample.value), sample.t_s
        state = limit.limit_state(value)
        level = None
        if state == "ok":  # most samples: in limits, nothing out since before
            if self.out_since:
                self.out_since.pop((topic, "red"), None)
                self.out_since.pop((topic, "yellow"), None)
        else:
            # Red bounds lie outside yellow ones (the dictionary checks), so red is out
            # of both.
            for name, out in (("red", state == "red"), ("yellow", True)):
                key = (topic, name)
                if out:
                    since = self.out_since.setdefault(key, now)
                    if level is None and now - since >= limit.persistence_s:
                        level = name
                else:
                    self.out_since.pop(key, None)
        previous = self.active.get(topic)
        if level == previous:
            return
        if level is None:
            del self.active[topic]
            self.emit("limit_cleared", point=topic, value=value)
            return
        self.active[topic] = level
        self.emit(f"limit_{level}", point=topic, value=value)
        if level == "red":
            self._act(f"red limit on {topic}")
            self.modes.enter_safe(f"red limit on {topic} ({value:g})")

    # -- silent boards --------------------------------------------------------------

    def _on_latchup(self, topic: str, record: EventRecord) -> None:
        self.tripped.append(int(record.args["channel"]))

    def _on_low_voltage(self, topic: str, record: EventRecord) -> None:
        self._act("low-voltage disconnect: SAFE")
        self.modes.enter_safe("low-voltage disconnect")

    def _on_board(self, topic: str, record: EventRecord) -> None:
        component, _, event = topic.partition(".")
        if event == "board_silent":
            self.silent.add(component)
            return
        self.silent.discard(component)
        self.given_up.discard(component)
        self.cycles.pop(component, None)
        self.last_cycle_s.pop(component, None)

    @periodic(1)
    def recover(self) -> None:
        now = self.clock.now_s()
        while self.tripped:
            channel = self.tripped.pop(0)
            count = self.relatches.get(channel, 0)
            if count >= self.param("max_relatches"):
                self.emit("channel_left_off", channel=channel, relatches=count)
                self._act(f"channel {channel} kept latching up: left off")
                continue
            try:
                self.power.switch(channel, True)
            except BoardError:
                self.tripped.insert(0, channel)
                break
            self.relatches[channel] = count + 1
            self.emit("channel_restored", channel=channel, attempt=count + 1)
            self._act(f"switched channel {channel} back on after a latch-up")
        for component in sorted(self.silent - self.given_up):
            rail = self.boards[component].rail if component in self.boards else None
            cycles = self.cycles.get(component, 0)
            if rail is None or cycles >= self.param("max_cycles"):
                self.given_up.add(component)
                self.emit("board_given_up", component=component, cycles=cycles)
                self._act(f"{component} silent after {cycles} power cycles: SAFE")
                self.modes.enter_safe(f"{component} board silent")
                continue
            if now - self.last_cycle_s.get(component, -INF) < self.param("retry_s"):
                continue
            try:
                self.power.cycle(rail)
            except BoardError:
                continue  # the power board itself is not answering; its own FDIR acts
            self.cycles[component] = cycles + 1
            self.last_cycle_s[component] = now
            self.emit("board_power_cycled", component=component, channel=rail,
                      attempt=cycles + 1)
            self._act(f"power-cycled {component} (channel {rail})")
        self.publish_status("yellow", sum(1 for v in self.active.values() if v == "yellow"))
        self.publish_status("red", sum(1 for v in self.active.values() if v == "red"))
        self.publish_status("power_cycles", sum(self.cycles.values()))

    def _act(self, what: str) -> None:
        self.actions.append((self.clock.now_s(), what))
