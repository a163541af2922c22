"""The command dispatcher: looks a command up in the dictionary, checks its arguments,
routes it to the owning component's handler and reports the outcome.

Every command ends in exactly one CommandResult (completed, rejected or failed, with
the reason), published on the bus. Nothing a sender puts in a command can raise out
of `dispatch`.
"""

from __future__ import annotations

import collections
import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flight.bus import COMMAND, Bus
from flight.component import Component
from hal.clock import Clock
from hal.dictionary import ArgumentError, CommandSpec, validate_args
from hal.errors import SkyrackError

log = logging.getLogger(__name__)


@enum.unique
class Status(enum.Enum):
    COMPLETED = "completed"
    REJECTED = "rejected"  # never ran: unknown command or bad arguments
    FAILED = "failed"  # ran and did not succeed (a board fault, a timeout)


@dataclass(frozen=True, slots=True)
class CommandResult:
    id: int
    name: str
    status: Status
    reason: str = ""
    t_s: float = 0.0


class Dispatcher:
    def __init__(self, components: Iterable[Component], bus: Bus, clock: Clock) -> None:
        self._components: dict[str, Component] = {}
        self._bus = bus
        self._clock = clock
        self._specs: dict[str, CommandSpec] = {}
        for component in components:
            self.add(component)
        self._queue: collections.deque[tuple[int, str, dict[str, Any]]] = collections.deque()
        self._next_id = 1
        self.counters: collections.Counter[str] = collections.Counter()

    def add(self, component: Component) -> None:
        """Route `component`'s commands to it."""
        self._components[component.name] = component
        for spec in component.command_specs():
            self._specs[spec.name] = spec

    def submit(self, name: str, args: dict[str, Any] | None = None) -> int:
        """Queue a command for the next dispatch cycle; returns its id."""
        command_id = self._next_id
        self._next_id += 1
        self._queue.append((command_id, name, dict(args or {})))
        return command_id

    def drain(self) -> None:
        """Run every queued command (the executive calls this each cycle)."""
        while self._queue:
            command_id, name, args = self._queue.popleft()
            self.dispatch(name, args, command_id)

    def dispatch(self, name: str, args: dict[str, Any], command_id: int = 0) -> CommandResult:
        component_name, _, command_name = str(name).partition(".")
        component = self._components.get(component_name)
        spec = self._specs.get(name) if isinstance(name, str) else None
        if spec is None:
            return self._finish(command_id, name, Status.REJECTED, f"unknown command {name!r}",
                                component)
        assert component is not None
        try:
            if not isinstance(args, dict):
                raise ArgumentError(f"{name}: arguments must be a map, got {type(args).__name__}")
            checked = validate_args(spec, args)
        except ArgumentError as e:
            return self._finish(command_id, name, Status.REJECTED, str(e), component)
        component.count_command("accepted")
        self.counters["accepted"] += 1
        try:
            component.run_command(command_name, checked)
        except (SkyrackError, ArgumentError) as e:  # CommandFailed, a board's error, ...
            return self._finish(command_id, name, Status.FAILED, str(e), component)
        except Exception as e:  # a handler bug must not take the dispatcher down
            log.exception("command %s raised", name)
            self.counters["internal_errors"] += 1
            return self._finish(command_id, name, Status.FAILED,
                                f"internal error: {type(e).__name__}: {e}", component)
        return self._finish(command_id, name, Status.COMPLETED, "", None)

    def _finish(self, command_id: int, name: Any, status: Status, reason: str,
                owner: Component | None) -> CommandResult:
        """`owner` counts the command rejected or failed."""
        self.counters[status.value] += 1
        if owner is not None and status is not Status.COMPLETED:
            owner.count_command(status.value)
        result = CommandResult(command_id, str(name), status, reason, self._clock.now_s())
        if status is not Status.COMPLETED:
            log.info("command %s %s: %s", name, status.value, reason)
        self._bus.publish(COMMAND, result)
        return result
