"""The flight software itself as a component: executive health, boots, stored records,
and the watchdog, kicked only while the software is healthy."""

from __future__ import annotations

from typing import Any, ClassVar

from flight.component import (
    Component,
    Counter,
    Event,
    Parameter,
    Telemetry,
    command,
    periodic,
)
from flight.executive import Executive
from flight.nvm import Problem, Records
from flight.power import PowerComponent
from hal.dictionary import Severity

SCRUB_AT_BOOT = 64  # stored records checked at boot beyond those the components load
SCRUB_PER_S = 4  # and then, round robin, every second of a pass
SCRUB_PASS_S = 600.0  # a new pass at most this often
# The watchdog is kicked every sixth of the timeout its board gives: five kicks in a row
# may go unheard before it bites, and the board link carries one kick every few seconds
# rather than every second. Never further apart than KICK_GAP_MAX_S, whatever a board says.
KICKS_PER_TIMEOUT = 6
KICK_GAP_MAX_S = 10.0


class SystemComponent(Component):
    """The flight software itself: executive health, boots, stored records, and the
    watchdog, kicked only while the software is healthy."""

    name = "fsw"
    telemetry: ClassVar = (
        Telemetry("ticks", "int", "Executive ticks since start"),
        Counter("overruns", "Ticks that started late"),
        Counter("task_errors", "Periodic tasks that raised"),
        Telemetry("boot_count", "int", "Boots of the flight software, ever"),
        Telemetry("boot_cause", "str", "Why the flight computer last started"),
        Counter("records_damaged", "Stored record copies found damaged"),
        Telemetry("healthy", "bool", "Every rate group ran and no task fails persistently"),
    )
    events: ClassVar = (
        Event("task_failed", Severity.ERROR, "A periodic task raised an exception",
              task="str", error="text"),
        Event("noop", Severity.INFO, "A no-op command arrived"),
        Event("booted", Severity.INFO, "The flight software started", boot="int", cause="str"),
        Event("record_damaged", Severity.WARNING,
              "A stored record copy was damaged; the other copy was used",
              file="str", reason="text", used="str"),
        Event("record_lost", Severity.CRITICAL,
              "Every copy of a stored record was damaged; defaults were used",
              file="str", reason="text", used="str"),
        Event("unhealthy", Severity.CRITICAL,
              "A health check failed: the watchdog is no longer kicked", reason="text"),
    )
    parameters: ClassVar = (
        Parameter("failing_task_s", "float", 30.0,
                  "How long a task may fail every run before the watchdog is starved", "s",
                  1.0, 3600.0),
    )

    def __init__(self, executive: Executive, power: PowerComponent | None = None,
                 records: Records | None = None) -> None:
        super().__init__()
        self.executive = executive
        self.power = power
        self.records = records or Records(None)
        self.boot_cause = power.boot_cause() if power is not None else "unknown"
        self.boots = self.records.load("fsw.boot", _check_boot, {"boots": 0})["boots"] + 1
        self.records.save("fsw.boot", {"boots": self.boots, "cause": self.boot_cause})
        self.problems: list[Problem] = []  # damaged record copies found, in order
        self.unhealthy_reason = ""
        self._next_scrub_pass_s = SCRUB_PASS_S  # the boot made the first pass
        self._next_kick_s = float("-inf")  # the first run kicks
        self._zero: dict[str, int] = {}  # the counts at the last reset_counters
        executive.on_task_error = self._task_failed

    @command
    def noop(self) -> None:
        """Do nothing but count and report it: checks the command path end to end."""
        self.emit("noop")

    @periodic(1)
    def kick_watchdog(self) -> None:
        """Tell the power board this computer is alive, while it is: every rate group
        ran in its last two periods and no task has failed every run for
        `failing_task_s`. Otherwise the watchdog runs out and reboots the computer.
        Health is judged every second; a kick goes every KICKS_PER_TIMEOUT-th of the
        board's timeout, and every second until one is heard."""
        reason = self._health()
        if reason and not self.unhealthy_reason:
            self.emit("unhealthy", reason=reason)
        self.unhealthy_reason = reason
        if reason or self.power is None:
            return
        now = self.clock.now_s()
        if now < self._next_kick_s:
            return
        timeout_s = self.power.kick_watchdog()
        if timeout_s is not None:
            gap_s = min(max(timeout_s / KICKS_PER_TIMEOUT, 1.0), KICK_GAP_MAX_S)
            self._next_kick_s = now + gap_s - 1e-6

    @periodic(1)
    def housekeeping(self) -> None:
        now = self.clock.now_s()
        new_pass = now >= self._next_scrub_pass_s
        if new_pass and not self.records.scrubbing:
            self._next_scrub_pass_s = now + SCRUB_PASS_S
        self.records.scrub(SCRUB_PER_S, new_pass)
        self.report_records()
        self.publish("ticks", self.executive.ticks)
        self.publish_status("boot_count", self.boots)
        self.publish_status("boot_cause", self.boot_cause)
        self.publish_status("healthy", not self.unhealthy_reason)

    @property
    def damaged(self) -> int:
        return len(self.problems)

    def counter_values(self) -> dict[str, int]:
        # Counted by the executive and the record store; a reset moves the zero.
        now = self._totals()
        return {**super().counter_values(),
                **{k: v - self._zero.get(k, 0) for k, v in now.items()}}

    def zero_counters(self) -> None:
        super().zero_counters()
        self._zero = self._totals()

    def _totals(self) -> dict[str, int]:
        return {"overruns": self.executive.overruns,
                "task_errors": sum(self.executive.task_errors.values()),
                "records_damaged": self.damaged}

    def booted(self) -> None:
        self.emit("booted", boot=self.boots, cause=self.boot_cause)

    def report_records(self) -> None:
        for problem in self.records.take_problems():
            self.problems.append(problem)
            event = "record_damaged" if problem.fallback == "the other copy" else "record_lost"
            self.emit(event, file=problem.file, reason=problem.reason, used=problem.fallback)

    def _health(self) -> str:
        """Why the software is not healthy, or "" when it is."""
        ex = self.executive
        for task, since in ex.failing_since.items():
            failing_s = (ex.ticks - since) / ex.base_hz
            if failing_s >= self.param("failing_task_s"):
                return f"task {task} has failed every run for {failing_s:.0f} s"
        stale = self.executive.stale_rate_groups()
        if stale:
            return f"rate groups {', '.join(f'{r:g} Hz' for r in stale)} did not run"
        return ""

    def _task_failed(self, task: str, error: Exception) -> None:
        self.emit("task_failed", task=task, error=f"{type(error).__name__}: {error}")


def _check_boot(body: Any) -> dict[str, int]:
    boots = body["boots"]
    if type(boots) is not int or not 0 <= boots < 2**63:
        raise ValueError(f"boot count {boots!r}")
    return {"boots": boots}
