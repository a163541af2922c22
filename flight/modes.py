"""Modes and the compute budget: when the accelerator may compute.

Modes, and how they change:
- SAFE: accelerator off, no compute. Entered on boot after a watchdog reset, on a red
  limit held for its persistence, and by command. Left only by command (to NOMINAL):
  leaving SAFE is an operator's decision.
- NOMINAL: bus healthy, accelerator idle, no compute. Entered by command, or from SAFE
  by command.
- COMPUTE: the accelerator computes while the budget allows. Entered by command from
  NOMINAL. Within COMPUTE the budget sheds (accelerator idle, no new job steps) and
  restores on its own; it never changes the mode.

The budget:
- Power: before each step of compute, predict the state of charge at the end of the
  next eclipse if compute runs for one more horizon (a minute) and the accelerator then
  idles: in sunlight, the array's surplus charges the battery until the eclipse and the
  bus alone drains it through; in eclipse, this minute of compute comes out of the
  reserve that must carry the bus to sunrise. Shed when the prediction falls below the
  floor plus a margin. The flight software knows no orbit: it learns eclipse start,
  period and length from solar power, and until it has seen an eclipse it assumes one
  may start now and last the prior length.
  Shed compute comes back only with some headroom (hysteresis) or at sunrise, so that it
  does not flicker on the threshold.
- Thermal: throttle the clock above the yellow accelerator temperature, stop compute
  above the red one, both below the slowdown temperature; resume below yellow, and
  restore the full clock only a few degrees below it, so sensor noise does not flicker
  the clock.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar

from flight.accelerator import AcceleratorComponent
from flight.bus import Bus, Sample
from flight.component import (
    Arg,
    CommandFailed,
    Component,
    Event,
    Parameter,
    Telemetry,
    command,
    periodic,
)
from flight.compute.manager import ComputeManager
from flight.system import SystemComponent
from hal.boards import AcceleratorState
from hal.clock import Clock
from hal.dictionary import Severity
from hal.errors import BoardError


@enum.unique
class Mode(enum.Enum):
    SAFE = "safe"
    NOMINAL = "nominal"
    COMPUTE = "compute"


@enum.unique
class Budget(enum.Enum):
    OK = "ok"
    SHED_POWER = "shed_power"
    SHED_THERMAL = "shed_thermal"
    THROTTLED = "throttled"
    OFF = "off"  # not in COMPUTE


class EclipseWatch:
    """Eclipses as the flight software sees them: solar power falling away and coming
    back. Learns when the next one starts and how long it lasts."""

    def __init__(self, period_s: float, eclipse_s: float) -> None:
        self.period_s = period_s
        self.eclipse_s = eclipse_s
        self.in_eclipse = False
        self.last_start_s: float | None = None
        self.period_measured = False
        self.seen = 0
        self.max_solar_w = 0.0

    def priors(self, period_s: float | None = None, eclipse_s: float | None = None) -> None:
        """What to assume until it is measured: a period until two eclipses have
        started, an eclipse length until one has ended."""
        if period_s is not None and not self.period_measured:
            self.period_s = period_s
        if eclipse_s is not None and self.seen == 0:
            self.eclipse_s = eclipse_s

    def update(self, t_s: float, solar_w: float) -> None:
        self.max_solar_w = max(self.max_solar_w, solar_w)
        dark = solar_w < 0.1 * self.max_solar_w if self.max_solar_w > 0 else False
        if dark and not self.in_eclipse:
            if self.last_start_s is not None:
                self.period_s = t_s - self.last_start_s
                self.period_measured = True
            self.last_start_s = t_s
        elif not dark and self.in_eclipse and self.last_start_s is not None:
            self.eclipse_s = t_s - self.last_start_s
            self.seen += 1
        self.in_eclipse = dark

    def until_eclipse_s(self, t_s: float) -> float:
        if self.in_eclipse or self.last_start_s is None:
            return 0.0
        return max(0.0, self.last_start_s + self.period_s - t_s)

    def eclipse_left_s(self, t_s: float) -> float:
        if not self.in_eclipse:
            return self.eclipse_s
        assert self.last_start_s is not None
        return max(0.0, self.last_start_s + self.eclipse_s - t_s)


class ModeManager(Component):
    """Owns the mode and the compute budget."""

    name = "mode"
    telemetry: ClassVar = (
        Telemetry("mode", "enum", "The mode", values=tuple(m.value for m in Mode)),
        Telemetry("budget", "enum", "What the compute budget allows",
                  values=tuple(b.value for b in Budget)),
        Telemetry("soc_at_eclipse_end_pct", "float", "Predicted state of charge at the end "
                  "of the next eclipse if compute goes on", "%"),
        Telemetry("in_eclipse", "bool", "Whether the satellite is in the Earth's shadow, as "
                  "the solar power says"),
    )
    events: ClassVar = (
        Event("mode_changed", Severity.INFO, "The mode changed",
              mode="str", previous="str", reason="text"),
        Event("compute_shed", Severity.WARNING, "Compute stopped to protect power or heat",
              reason="str", in_eclipse="bool"),
        Event("compute_restored", Severity.INFO, "Compute allowed again"),
        Event("throttled", Severity.WARNING, "Accelerator clock lowered for heat",
              clock_pct="int"),
    )
    parameters: ClassVar = (
        Parameter("battery_wh", "float", 740.0, "Usable battery energy at 100 %", "Wh",
                  1.0, 1e6),
        Parameter("soc_floor_pct", "float", 40.0, "State of charge never to go below", "%",
                  0.0, 100.0),
        Parameter("soc_margin_pct", "float", 5.0, "Margin above the floor for the budget", "%",
                  0.0, 50.0),
        Parameter("accelerator_w", "float", 700.0, "Accelerator power when computing", "W",
                  0.0, 1e5),
        Parameter("accelerator_idle_w", "float", 80.0, "Accelerator power when idle", "W",
                  0.0, 1e5),
        Parameter("horizon_s", "float", 60.0, "Compute the budget commits to at a time", "s",
                  1.0, 3600.0),
        Parameter("hysteresis_pct", "float", 3.0, "Headroom above the threshold before "
                  "shed compute is restored", "%", 0.0, 50.0),
        Parameter("orbit_period_s", "float", 5684.4, "Prior orbit period (node to node)", "s",
                  60.0, 1e6),
        Parameter("eclipse_prior_s", "float", 2200.0, "Eclipse length assumed until one is "
                  "seen", "s", 0.0, 1e5),
        Parameter("throttle_c", "float", 75.0, "Accelerator temperature to throttle at",
                  "degC", -50.0, 150.0),
        Parameter("stop_c", "float", 82.0, "Accelerator temperature to stop compute at "
                  "(below its 85 degC slowdown)", "degC", -50.0, 150.0),
        Parameter("throttle_pct", "int", 50, "Clock while throttled", "%", 10, 100),
        # More than the die's own drop when throttled (power over the junction
        # conductance: ~3 degC from 700 W to 390 W), or a throttle would undo itself.
        Parameter("thermal_hysteresis_c", "float", 5.0, "How far below the throttle "
                  "temperature the clock is restored", "degC", 0.0, 30.0),
    )

    def __init__(self, accelerator: AcceleratorComponent, compute: ComputeManager,
                 system: SystemComponent | None = None) -> None:
        """`accelerator` owns the accelerator board (an AcceleratorComponent), `compute`
        the jobs; `system` says why the computer started (after a watchdog reset the
        satellite starts in SAFE: an operator decides what next)."""
        super().__init__()
        self.accelerator = accelerator
        self.compute = compute
        self.mode = Mode.SAFE if system is not None and system.boot_cause == "watchdog" \
            else Mode.NOMINAL
        self.budget = Budget.OFF
        self.eclipses = EclipseWatch(self.param("orbit_period_s"), self.param("eclipse_prior_s"))
        self.latest: dict[str, float] = {}
        self.accelerator_state: str | None = None
        self.mode_s = {m.value: 0.0 for m in Mode}
        self.budget_s = {b.value: 0.0 for b in Budget}
        self.sheds = 0
        self.sheds_in_eclipse = 0
        compute.allowed = False  # NOMINAL: no compute until commanded

    def parameter_updated(self, name: str, value: Any) -> None:
        if name == "orbit_period_s":
            self.eclipses.priors(period_s=value)
        elif name == "eclipse_prior_s":
            self.eclipses.priors(eclipse_s=value)

    def bind(self, bus: Bus, clock: Clock) -> None:
        super().bind(bus, clock)
        for point in ("power.soc_pct", "power.solar_power_w", "power.load_power_w",
                      "accelerator.temp_c", "accelerator.power_w", "accelerator.state"):
            self.subscribe(point, self._on_sample)

    def _on_sample(self, topic: str, sample: Sample) -> None:
        if topic == "accelerator.state":
            self.accelerator_state = str(sample.value)
            return
        self.latest[topic] = float(sample.value)

    @command
    def set(self, mode: Annotated[Mode, Arg("safe, nominal or compute")]) -> None:
        """Change the mode. COMPUTE is reached from NOMINAL only, not straight from SAFE."""
        if mode is Mode.COMPUTE and self.mode is Mode.SAFE:
            raise CommandFailed("leave SAFE for NOMINAL first")
        self._enter(mode)

    def enter_safe(self, reason: str) -> None:
        """For FDIR and limit monitoring."""
        if self.mode is not Mode.SAFE:
            self._enter(Mode.SAFE, reason)

    def _enter(self, mode: Mode, reason: str = "command") -> None:
        if mode is not self.mode:
            self.emit("mode_changed", mode=mode.value, previous=self.mode.value, reason=reason)
        self.mode = mode
        self._apply(Budget.OFF if mode is not Mode.COMPUTE else Budget.OK)

    @periodic(1)
    def evaluate(self) -> None:
        now = self.clock.now_s()
        solar = self.latest.get("power.solar_power_w")
        if solar is not None:
            self.eclipses.update(now, solar)
        predicted = self.predict_soc_pct(now)
        if predicted is not None:
            self.publish("soc_at_eclipse_end_pct", predicted)
        self.mode_s[self.mode.value] += 1.0
        if self.mode is Mode.COMPUTE:
            budget = self._decide(predicted)
            computing = (Budget.OK, Budget.THROTTLED)
            if (budget in computing and self.budget in computing
                    and self.accelerator_state is not None
                    and self.accelerator_state != AcceleratorState.ON.value):
                # It should be computing and is not: it lost power (a trip, a cycle).
                # Bring it back. (After a shed it idles on purpose; _apply restores it.)
                self.budget = Budget.OFF
            self._apply(budget)
        self.budget_s[self.budget.value] += 1.0
        self.publish_status("mode", self.mode.value)
        self.publish_status("budget", self.budget.value)
        self.publish_status("in_eclipse", self.eclipses.in_eclipse)

    def predict_soc_pct(self, now: float) -> float | None:
        """State of charge at the end of the next eclipse if compute runs one more horizon
        and the accelerator then idles."""
        soc = self.latest.get("power.soc_pct")
        if soc is None:
            return None
        solar = self.latest.get("power.solar_power_w", 0.0)
        load = self.latest.get("power.load_power_w", 0.0)
        bus = load - self.latest.get("accelerator.power_w", 0.0)
        computing = bus + self.param("accelerator_w")
        idle = bus + self.param("accelerator_idle_w")
        wh = self.param("battery_wh")
        horizon = self.param("horizon_s")
        to_eclipse = self.eclipses.until_eclipse_s(now)
        eclipse = self.eclipses.eclipse_left_s(now)
        if to_eclipse > 0.0:  # sunlit: charge (or drain) until the eclipse, then idle through
            net = (min(horizon, to_eclipse) * (solar - computing)
                   + max(0.0, to_eclipse - horizon) * (solar - idle))
            at_start = min(100.0, soc + 100.0 * net / 3600.0 / wh)
            return at_start - 100.0 * idle * eclipse / 3600.0 / wh
        used = min(horizon, eclipse) * computing + max(0.0, eclipse - horizon) * idle
        return soc - 100.0 * used / 3600.0 / wh

    def _decide(self, predicted: float | None) -> Budget:
        temp = self.latest.get("accelerator.temp_c")
        if temp is not None:
            if temp >= self.param("stop_c") or (self.budget is Budget.SHED_THERMAL
                                                and temp >= self.param("throttle_c")):
                return Budget.SHED_THERMAL
        floor = self.param("soc_floor_pct") + self.param("soc_margin_pct")
        if self.budget is Budget.SHED_POWER and not self.eclipses.until_eclipse_s(
                self.clock.now_s()) > 0.0:
            floor += self.param("hysteresis_pct")  # in eclipse, once shed, stay shed a while
        if predicted is not None and predicted < floor:
            return Budget.SHED_POWER
        if temp is not None:
            restore_c = self.param("throttle_c") - (self.param("thermal_hysteresis_c")
                                                    if self.budget is Budget.THROTTLED else 0.0)
            if temp >= restore_c:
                return Budget.THROTTLED
        return Budget.OK

    def _apply(self, budget: Budget) -> None:
        """Drive the accelerator and the compute manager to what the budget says."""
        if budget is self.budget:
            return
        shedding = budget in (Budget.SHED_POWER, Budget.SHED_THERMAL)
        try:
            if budget is Budget.OFF:
                state = AcceleratorState.OFF if self.mode is Mode.SAFE else AcceleratorState.IDLE
                self.accelerator.set_state(state)
            elif shedding:
                self.accelerator.set_state(AcceleratorState.IDLE)
            else:
                self.accelerator.set_state(AcceleratorState.ON)
                self.accelerator.set_clock(self.param("throttle_pct")
                                           if budget is Budget.THROTTLED else 100)
        except BoardError:
            return  # unpowered or silent: try again next second; FDIR watches the board
        self.compute.allowed = budget in (Budget.OK, Budget.THROTTLED)
        if shedding:
            self.sheds += 1
            self.sheds_in_eclipse += self.eclipses.in_eclipse
            self.emit("compute_shed", reason=budget.value, in_eclipse=self.eclipses.in_eclipse)
        elif self.budget in (Budget.SHED_POWER, Budget.SHED_THERMAL) and budget is not Budget.OFF:
            self.emit("compute_restored")
        if budget is Budget.THROTTLED:
            self.emit("throttled", clock_pct=self.param("throttle_pct"))
        self.budget = budget
