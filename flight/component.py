"""The shape every flight component takes.

A component declares, next to its code, its commands (methods marked @command, whose
typed, annotated arguments and docstrings become the dictionary), its telemetry points,
its events and its parameters. It counts the commands it accepted and rejected, and
declares periodic work with @periodic(rate_hz) for the executive to run.
"""

from __future__ import annotations

import collections
import enum
import inspect
import operator
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from flight.bus import EVENT, Bus, EventRecord, Sample
from hal.clock import Clock
from hal.dictionary import (
    ArgSpec,
    ArgumentError,
    CommandSpec,
    EventSpec,
    ParameterSpec,
    Severity,
    TelemetrySpec,
    check_value,
)
from hal.errors import SkyrackError

_TYPES: dict[type, str] = {int: "int", float: "float", bool: "bool", str: "str"}


@dataclass(frozen=True, slots=True)
class Arg:
    """Metadata for a command argument: `channel: Annotated[int, Arg("...", min=0, max=7)]`."""

    description: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    text: bool = False  # a str argument that is a message (127 octets), not a name (31)


# Components declare with the dictionary's own types under local names ("batt_v");
# the dictionary qualifies them with the component's name ("power.batt_v").
Telemetry = TelemetrySpec
Parameter = ParameterSpec


def Event(name: str, severity: Severity, description: str = "",  # noqa: N802 (a declaration)
          **args: str) -> EventSpec:
    """An event and its arguments' value types, in the order they travel:
    `Event("switch_changed", Severity.INFO, "...", channel="int", on="bool")`. Strings
    are "str" (a name, 31 octets at most) or "text" (a message, cut at 127)."""
    return EventSpec(name, severity, description, tuple(ArgSpec(k, v) for k, v in args.items()))


class CommandFailed(SkyrackError):
    """A command ran and could not do what it was asked; the message says why. (A
    handler that raises anything else has a bug, reported as an internal error.)"""


def Counter(name: str, description: str) -> TelemetrySpec:  # noqa: N802 (a declaration)
    """A counter point: a count the component keeps in `counters[name]`, published
    from boot on and zeroed by `reset_counters`."""
    return TelemetrySpec(name, "int", description, counter=True)


def command(fn: Callable[..., Any] | None = None, *, hazardous: bool = False,
            name: str | None = None) -> Any:
    """Mark a method as a ground command; its docstring is its description. `name` gives
    the command another name than the method's (when that would shadow a builtin)."""

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        f._skyrack_command = {"hazardous": hazardous,  # type: ignore[attr-defined]
                              "name": name or f.__name__}
        return f

    return mark(fn) if fn is not None else mark


def periodic(rate_hz: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a method for the executive to run `rate_hz` times a second."""

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        f._skyrack_rate_hz = rate_hz  # type: ignore[attr-defined]
        return f

    return mark


def _doc(obj: Any) -> str:
    """The first paragraph of a docstring, on one line."""
    text = inspect.getdoc(obj) or ""
    return " ".join(text.split("\n\n")[0].split())


def _unwrap(hint: Any) -> tuple[Any, Arg]:
    """The bare type of an annotation and its Arg metadata (empty when absent)."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, next((e for e in extras if isinstance(e, Arg)), Arg())
    return hint, Arg()


def _arg_spec(name: str, hint: Any, param: inspect.Parameter, where: str) -> ArgSpec:
    hint, meta = _unwrap(hint)
    values: tuple[str, ...] = ()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        kind, values = "enum", tuple(str(m.value) for m in hint)
    elif hint is str and meta.text:
        kind = "text"
    elif hint in _TYPES:
        kind = _TYPES[hint]
    else:
        raise TypeError(f"{where}: argument {name!r} has unsupported type {hint!r}")
    required = param.default is inspect.Parameter.empty
    default = None if required else param.default
    if isinstance(default, enum.Enum):
        default = default.value
    return ArgSpec(name=name, type=kind, description=meta.description, unit=meta.unit,
                   min=meta.min, max=meta.max, values=values, default=default,
                   required=required)


class Component:
    """Base of every flight component. Subclasses set `name` and their declarations."""

    name: ClassVar[str]
    telemetry: ClassVar[tuple[Telemetry, ...]] = (
        Counter("cmd_accepted", "Commands this component accepted"),
        Counter("cmd_rejected", "Commands this component refused before running them "
                "(unknown, bad arguments)"),
        Counter("cmd_failed", "Commands this component ran that failed"),
    )
    events: ClassVar[tuple[EventSpec, ...]] = ()
    parameters: ClassVar[tuple[Parameter, ...]] = ()

    def __init__(self) -> None:
        self._params = {p.name: p.default for p in self.declared("parameters")}
        self._bus: Bus | None = None
        self._clock: Clock | None = None
        # Each point's qualified name ("power.batt_v"), the bus topic it goes out on.
        self._points = {t.name: f"{self.name}.{t.name}" for t in self.declared("telemetry")}
        self._counted = tuple(t.name for t in self.declared("telemetry") if t.counter)
        self._limited = frozenset(t.name for t in self.declared("telemetry")
                                  if t.yellow is not None or t.red is not None)
        # Each counter there from the start, at 0: reading an absent key of a Counter
        # calls its __missing__ in Python, and report_counters reads them all each second.
        self.counters: collections.Counter[str] = collections.Counter(
            dict.fromkeys(self._counted, 0))
        self._events = {e.name: e for e in self.declared("events")}
        self.consumes: list[str] = []  # the bus topics this instance subscribed to
        self._counts_published: dict[str, int] = {}
        self._states: dict[str, Any] = {}  # each status point as last published
        # Every counter's value in one C call, and those values as of the last
        # publish_counters (None once a count went out on its own since): an unchanged
        # second costs one comparison instead of a look at each counter.
        self._count_values: Callable[[collections.Counter[str]], Any] = (
            operator.itemgetter(*self._counted) if self._counted else lambda _: ())
        self._counts_seen: Any = None

    # -- declarations -------------------------------------------------------------

    @classmethod
    def declared(cls, what: str) -> list[Any]:
        """`telemetry`, `events` or `parameters` declared by this class and its bases."""
        out: list[Any] = []
        for klass in reversed(cls.__mro__):
            out.extend(klass.__dict__.get(what, ()))
        return out

    @classmethod
    def handlers(cls) -> dict[str, Callable[..., Any]]:
        """Handler functions by command name."""
        members = inspect.getmembers(cls, inspect.isfunction)
        return {vars(f)["_skyrack_command"]["name"]: f for _, f in members
                if hasattr(f, "_skyrack_command")}

    @classmethod
    def command_specs(cls) -> list[CommandSpec]:
        specs = []
        for name, fn in cls.handlers().items():
            where = f"{cls.name}.{name}"
            hints = typing.get_type_hints(fn, include_extras=True)
            params = list(inspect.signature(fn).parameters.values())[1:]  # skip self
            args = tuple(_arg_spec(p.name, hints[p.name], p, where) for p in params)
            specs.append(CommandSpec(name=where, description=_doc(fn), args=args,
                                     hazardous=vars(fn)["_skyrack_command"]["hazardous"]))
        return specs

    @classmethod
    def qualified(cls, what: str) -> list[Any]:
        """Declared `telemetry`, `events` or `parameters`, named "component.local"."""
        return [replace(spec, name=f"{cls.name}.{spec.name}") for spec in cls.declared(what)]

    def periodic_tasks(self) -> list[tuple[str, float, Callable[[], None]]]:
        tasks = []
        for name, fn in inspect.getmembers(type(self), inspect.isfunction):
            rate = getattr(fn, "_skyrack_rate_hz", None)
            if rate is not None:
                tasks.append((f"{self.name}.{name}", rate, getattr(self, name)))
        return tasks

    # -- runtime ------------------------------------------------------------------

    def bind(self, bus: Bus, clock: Clock) -> None:
        """Join the bus and the clock; a component that reads the bus subscribes here."""
        self._bus = bus
        self._clock = clock

    def start(self) -> None:
        """Called once every instance is built, bound and checked, before the first
        tick (a component that needs the others in place does its first work here)."""

    def subscribe(self, topic: str, handler: Callable[[str, Any], None]) -> None:
        """Read `topic` (a point, an event's name, or "event", "command", "*") from the
        bus. Every topic a component reads goes through here, so the topology can check
        that each names something the dictionary holds."""
        if self._bus is None:
            raise RuntimeError(f"component {self.name!r}: subscribe from bind()")
        self.consumes.append(topic)
        self._bus.subscribe(topic, handler)

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            raise RuntimeError(f"component {self.name!r} is not bound to a clock")
        return self._clock

    def publish(self, point: str, value: Any) -> None:
        name = self._points.get(point)
        if name is None:
            raise KeyError(f"{self.name}: telemetry point {point!r} is not declared")
        if self._bus is not None:
            assert self._clock is not None  # bound together
            self._bus.publish(name, Sample(self._clock.now_s(), name, value))

    def publish_status(self, point: str, value: Any) -> None:
        """Publish a state the component is in (a mode, a flag, how many things it holds)
        when it changes, and once at first: housekeeping keeps each point's latest value,
        so an unchanged state need not go out every second. A point with limits goes out
        each time all the same: a limit's persistence is judged when samples arrive."""
        if point in self._limited:  # FDIR's persistence counts time between samples
            self.publish(point, value)
        elif point not in self._states or self._states[point] != value:
            self._states[point] = value
            self.publish(point, value)

    def emit(self, event: str, **args: Any) -> None:
        """Report a declared event; `args` are among its declared arguments (those left
        out go as "not yet sampled")."""
        spec = self._events.get(event)
        if spec is None:
            raise KeyError(f"{self.name}: event {event!r} is not declared")
        unknown = set(args) - {a.name for a in spec.args}
        if unknown:
            raise KeyError(f"{self.name}: event {event!r} declares no argument "
                           f"{sorted(unknown)[0]!r}")
        self.counters[f"event_{spec.severity.value}"] += 1
        if self._bus is not None:
            record = EventRecord(self.clock.now_s(), f"{self.name}.{event}", spec.severity, args)
            self._bus.publish(EVENT, record, also=record.name)

    def count_command(self, outcome: str) -> None:
        """Count a command "accepted", "rejected" or "failed", and publish it now."""
        key = f"cmd_{outcome}"
        self.counters[key] += 1
        self._counts_published[key] = self.counters[key]
        self._counts_seen = None
        self.publish(key, self.counters[key])

    def counter_values(self) -> dict[str, int]:
        """Every counter point's value, by local name."""
        return {name: self.counters[name] for name in self._counted}

    def publish_counters(self, changed_only: bool = False) -> None:
        """Every counter (or those that changed since last published: housekeeping
        keeps each point's latest value, so an unchanged count need not go again)."""
        counters, published = self.counters, self._counts_published
        for name in self._counted:
            value = counters[name]
            if not changed_only or published.get(name) != value:
                published[name] = value
                self.publish(name, value)
        self._counts_seen = self._count_values(counters)  # each as it was published

    @periodic(1)
    def report_counters(self) -> None:
        """The counters that changed, each second (all of them once at boot, before
        the first tick)."""
        if self._counts_seen is None or self._count_values(self.counters) != self._counts_seen:
            self.publish_counters(changed_only=True)

    @command
    def reset_counters(self) -> None:
        """Zero this component's counters (command, error and traffic counts), as a cFS
        application's RESET_COUNTERS does."""
        self.zero_counters()
        self.publish_counters()

    def zero_counters(self) -> None:
        """What reset_counters zeroes (a component whose counts live elsewhere moves
        their zero here)."""
        for name in self._counted:
            self.counters[name] = 0

    def run_command(self, command: str, args: dict[str, Any]) -> None:
        """Call the handler of `command` with checked wire values, enums made typed."""
        handler = getattr(self, self.handlers()[command].__name__)
        hints = typing.get_type_hints(handler, include_extras=True)
        typed = {}
        for name, value in args.items():
            base, _ = _unwrap(hints.get(name))
            if isinstance(base, type) and issubclass(base, enum.Enum):
                value = base(value)
            typed[name] = value
        handler(**typed)

    def param(self, name: str) -> Any:
        return self._params[name]

    def set_param(self, name: str, value: Any) -> None:
        spec = next((p for p in self.declared("parameters") if p.name == name), None)
        if spec is None:
            raise ArgumentError(f"{self.name}: unknown parameter {name!r}")
        self._params[name] = check_value(spec, value, f"{self.name}.{name}")
        self.parameter_updated(name, self._params[name])

    def parameter_updated(self, name: str, value: Any) -> None:
        """Called after every set of parameter `name`, whether from a telecommand or
        from the values restored at boot (F' parameterUpdated): a component that keeps
        something derived from a parameter refreshes it here. A component that reads
        its parameters with `param()` where it uses them needs nothing."""
