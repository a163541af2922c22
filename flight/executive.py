"""The executive: rate groups run on ticks of the one Clock.

The base rate is 10 Hz; a group at rate r runs every 10/r ticks. Tick k is due at
t0 + k/10 exactly (no accumulated drift). On hardware a late tick counts as an
overrun; far behind, the executive skips ahead rather than replaying a burst of
stale ticks. A task that raises is counted and reported, and the others still run.

For health checks it keeps the tick each rate group last ran at, and since which tick
each failing task has failed every run.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from hal.clock import Clock

log = logging.getLogger(__name__)

BASE_HZ = 10
SKIP_AHEAD_TICKS = 10  # more than a second late: resynchronise


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    every_ticks: int
    run: Callable[[], None]


class Executive:
    def __init__(self, clock: Clock, base_hz: int = BASE_HZ) -> None:
        self.clock = clock
        self.base_hz = base_hz
        self.tasks: list[Task] = []
        self.ticks = 0
        self.overruns = 0
        self.skipped_ticks = 0
        self.task_errors: collections.Counter[str] = collections.Counter()
        self.on_task_error: Callable[[str, Exception], None] | None = None
        self.failing_since: dict[str, int] = {}  # task -> first tick of its failing streak
        self._group_ran: dict[int, int] = {}  # ticks between runs -> tick it last ran
        self._periods: list[int] = []  # the distinct ticks between runs
        # The tasks due at each phase of the cycle the periods repeat in (in the order
        # they were added), so a tick runs its list instead of testing every task.
        self._by_phase: list[list[Task]] = []
        self._groups_by_phase: list[list[int]] = []  # the periods whose group runs then
        self._t0_s = clock.now_s()

    def add(self, name: str, rate_hz: float, run: Callable[[], None]) -> None:
        every = self.base_hz / rate_hz if rate_hz > 0 else 0
        if every < 1 or abs(every - round(every)) > 1e-9:
            raise ValueError(f"task {name}: rate {rate_hz} Hz must divide the "
                             f"{self.base_hz} Hz base rate")
        self.tasks.append(Task(name, round(every), run))
        self._schedule()

    def replace(self, name: str, run: Callable[[], None]) -> None:
        """Give task `name` other work at the same rate and place (fault injection: a
        task that fails every run)."""
        if name not in {t.name for t in self.tasks}:
            raise KeyError(f"no task {name!r}")
        self.tasks = [Task(t.name, t.every_ticks, run) if t.name == name else t
                      for t in self.tasks]
        self._schedule()

    def _schedule(self) -> None:
        self._periods = sorted({t.every_ticks for t in self.tasks})
        cycle = math.lcm(*self._periods)
        self._by_phase = [[t for t in self.tasks if phase % t.every_ticks == 0]
                          for phase in range(cycle)]
        self._groups_by_phase = [[every for every in self._periods if phase % every == 0]
                                 for phase in range(cycle)]

    @property
    def rates_hz(self) -> list[float]:
        return sorted({self.base_hz / t.every_ticks for t in self.tasks}, reverse=True)

    def stale_rate_groups(self) -> list[float]:
        """Rates (Hz) of the groups that have missed two runs in a row."""
        return [self.base_hz / every for every in self._periods
                if self.ticks - self._group_ran.get(every, 0) > 2 * every]

    def next_tick_s(self) -> float:
        return self._t0_s + (self.ticks + 1) / self.base_hz

    def run_until(self, t_s: float) -> None:
        """Run every tick due at or before `t_s`, sleeping on the clock between them."""
        while self.next_tick_s() <= t_s + 1e-9:
            self.tick()

    def tick(self) -> None:
        due = self.next_tick_s()
        clock = self.clock
        clock.sleep_until(due)
        late_ticks = int((clock.now_s() - due) * self.base_hz)
        if late_ticks >= 1:
            self.overruns += 1
            if late_ticks >= SKIP_AHEAD_TICKS:
                self.skipped_ticks += late_ticks
                self.ticks += late_ticks
        self.ticks += 1
        running: list[Task] = []
        if self._by_phase:
            phase = self.ticks % len(self._by_phase)
            for every in self._groups_by_phase[phase]:
                self._group_ran[every] = self.ticks
            running = self._by_phase[phase]
        failing = self.failing_since
        for task in running:
            try:
                task.run()
                if failing:
                    failing.pop(task.name, None)
            except Exception as e:
                self.failing_since.setdefault(task.name, self.ticks)
                self.task_errors[task.name] += 1
                if self.task_errors[task.name] == 1:  # once; after that, counted
                    log.exception("task %s failed", task.name)
                if self.on_task_error is not None:
                    self.on_task_error(task.name, e)
