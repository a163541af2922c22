"""Fault detection, isolation and recovery: limits with persistence, and silent boards.

Limits. Each monitored point has yellow and red bounds and a persistence: a value must
stay out of bounds that long before it counts (one noisy sample is not a fault). Yellow
raises a warning event; red raises an error event and puts the satellite in SAFE.
An event is raised once on entry and once on clearing, not every second.

Silent boards. When a board component reports its board silent (flight.boardwatch),
FDIR power-cycles the board's rail and waits for it to answer. After `max_cycles`
failed cycles, or at once for a board on no switched rail (the power board itself),
the satellite goes to SAFE.

Latch-ups. The power board cuts a channel that draws too much (which also clears the
latch-up); FDIR switches it back on, up to `max_relatches` times a channel, then leaves
it off. A low-voltage disconnect means the battery reached its hardware floor: SAFE.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, ClassVar

from flight.bus import EVENT, Bus, EventRecord, Sample
from flight.component import Component, Event, Parameter, Telemetry, periodic
from hal.boards import PowerBoard
from hal.clock import Clock
from hal.dictionary import Severity
from hal.errors import BoardError

INF = float("inf")


MAX_ACTIONS = 256


@dataclass(frozen=True, slots=True)
class Limit:
    point: str
    yellow: tuple[float, float]
    red: tuple[float, float]
    persistence_s: float = 5.0


LIMITS = (
    Limit("power.soc_pct", (40.0, INF), (30.0, INF)),
    Limit("power.batt_v", (26.0, 33.6), (24.0, 34.0)),
    # Red low is the survival temperature: switched off, the accelerator has no heater yet.
    Limit("accelerator.temp_c", (-20.0, 80.0), (-40.0, 90.0)),
    Limit("thermal.battery_temp_c", (0.0, 40.0), (-10.0, 50.0), 30.0),
    Limit("thermal.structure_temp_c", (-20.0, 50.0), (-40.0, 70.0), 30.0),
    Limit("thermal.flight_computer_temp_c", (-10.0, 60.0), (-25.0, 75.0), 30.0),
)


class Fdir(Component):
    """Watches limits and board health, and acts."""

    name = "fdir"
    telemetry: ClassVar = (
        Telemetry("yellow", "int", "Points now outside their yellow limits"),
        Telemetry("red", "int", "Points now outside their red limits"),
        Telemetry("power_cycles", "int", "Board rails FDIR has power-cycled"),
    )
    events: ClassVar = (
        Event("limit_yellow", Severity.WARNING, "A point stayed outside its yellow limits"),
        Event("limit_red", Severity.ERROR, "A point stayed outside its red limits"),
        Event("limit_cleared", Severity.INFO, "A point is back within its limits"),
        Event("board_power_cycled", Severity.WARNING, "FDIR power-cycled a silent board"),
        Event("board_given_up", Severity.ERROR, "A board stayed silent through its power "
              "cycles"),
        Event("channel_restored", Severity.WARNING, "FDIR switched a tripped channel back on"),
        Event("channel_left_off", Severity.ERROR, "A channel kept latching up; left off"),
    )
    parameters: ClassVar = (
        Parameter("max_cycles", "int", 3, "Power cycles of a silent board before SAFE",
                  None, 0, 20),
        Parameter("retry_s", "float", 10.0, "Wait for a power-cycled board to answer before "
                  "cycling it again", "s", 1.0, 3600.0),
        Parameter("max_relatches", "int", 3, "Times a tripped channel is switched back on",
                  None, 0, 100),
    )

    def __init__(self, power: PowerBoard, rails: dict[str, int], modes: Any,
                 limits: tuple[Limit, ...] = LIMITS) -> None:
        super().__init__()
        self.power = power
        self.rails = rails  # component name -> power channel
        self.modes = modes
        self.limits = {lim.point: lim for lim in limits}
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
            bus.subscribe(point, self._on_sample)
        bus.subscribe(EVENT, self._on_event)

    # -- limits ---------------------------------------------------------------------

    def _on_sample(self, topic: str, sample: Sample) -> None:
        limit = self.limits[topic]
        value, now = float(sample.value), sample.t_s
        level = None
        for name, (low, high) in (("red", limit.red), ("yellow", limit.yellow)):
            key = (topic, name)
            if value < low or value > high:
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

    def _on_event(self, topic: str, record: EventRecord) -> None:
        component, _, event = record.name.partition(".")
        if record.name == "power.latchup":
            self.tripped.append(int(record.args["channel"]))
        elif record.name == "power.low_voltage_disconnect":
            self._act("low-voltage disconnect: SAFE")
            self.modes.enter_safe("low-voltage disconnect")
        elif event == "board_silent":
            self.silent.add(component)
        elif event == "board_back":
            for table in (self.silent, self.given_up):
                table.discard(component)
            for table in (self.cycles, self.last_cycle_s):
                table.pop(component, None)

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
                self.power.set_switch(channel, True)
            except BoardError:
                self.tripped.insert(0, channel)
                break
            self.relatches[channel] = count + 1
            self.emit("channel_restored", channel=channel, attempt=count + 1)
            self._act(f"switched channel {channel} back on after a latch-up")
        for component in sorted(self.silent - self.given_up):
            rail = self.rails.get(component)
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
                self.power.set_switch(rail, False)
                self.power.set_switch(rail, True)
            except BoardError:
                continue  # the power board itself is not answering; its own FDIR acts
            self.cycles[component] = cycles + 1
            self.last_cycle_s[component] = now
            self.emit("board_power_cycled", component=component, channel=rail,
                      attempt=cycles + 1)
            self._act(f"power-cycled {component} (channel {rail})")
        self.publish("yellow", sum(1 for v in self.active.values() if v == "yellow"))
        self.publish("red", sum(1 for v in self.active.values() if v == "red"))
        self.publish("power_cycles", sum(self.cycles.values()))

    def _act(self, what: str) -> None:
        self.actions.append((self.clock.now_s(), what))
