"""The command and telemetry dictionary: the contract between flight and ground.

The flight software generates it from its component declarations; the ground reads
it as JSON. Both validate command arguments with the same `validate_args`, so a
command the ground accepts is one the flight software accepts.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass
from typing import Any

from hal.errors import InputError, SkyrackError
from hal.valuetype import BadValue, ValueType, value_type


class ArgumentError(SkyrackError, ValueError):
    """A command's arguments do not match its declaration; the message says how."""


@enum.unique
class Severity(enum.Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


def _typed(spec: Any) -> None:
    """A declaration's type made a ValueType (so an unknown one fails where it is
    declared) and its enumeration values checked."""
    kind = value_type(spec.type, spec.name)
    object.__setattr__(spec, "type", kind)
    object.__setattr__(spec, "values", tuple(spec.values))
    if (kind is ValueType.ENUM) != bool(spec.values):
        raise ValueError(f"{spec.name}: an enum has values, and only an enum does")
    if len(set(spec.values)) != len(spec.values) or len(spec.values) > 255:
        raise ValueError(f"{spec.name}: enum values must be distinct, at most 255")


@dataclass(frozen=True, slots=True)
class ArgSpec:
    name: str
    type: str  # a ValueType (a str) once declared: __post_init__ makes it one
    description: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()  # for type "enum"
    default: Any = None
    required: bool = True

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str  # "component.command"
    description: str
    args: tuple[ArgSpec, ...] = ()
    hazardous: bool = False


@dataclass(frozen=True, slots=True)
class TelemetrySpec:
    name: str  # "component.point"
    type: str  # a ValueType (a str) once declared: __post_init__ makes it one
    description: str = ""
    unit: str | None = None
    # Limits as (low, high); None for a side without one, or no limits at all. A value
    # must stay out of bounds for `persistence_s` before monitoring acts on it.
    yellow: tuple[float | None, float | None] | None = None
    red: tuple[float | None, float | None] | None = None
    persistence_s: float = 5.0
    # A count of what happened (commands, packets, errors): in every housekeeping packet
    # from the first, and zeroed by its component's reset_counters.
    counter: bool = False
    values: tuple[str, ...] = ()  # for type "enum"

    def __post_init__(self) -> None:
        _typed(self)
        check_limits(self)

    def limit_state(self, value: Any) -> str:
        """"red", "yellow" or "ok" for a value of this point (ok when it has no limits)."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "ok"
        for state, bounds in (("red", self.red), ("yellow", self.yellow)):
            if bounds is None:
                continue
            low, high = bounds
            if (low is not None and value < low) or (high is not None and value > high):
                return state
        return "ok"


def check_limits(point: TelemetrySpec) -> None:
    """Raise ValueError, in one line, for limits that cannot be meant: on a point that is
    not a number, a bound that is not one, low above high, or red inside yellow (a value
    must pass yellow before it reaches red)."""
    if point.yellow is None and point.red is None:
        return
    where = f"limits of {point.name}"
    if not value_type(point.type, point.name).numeric:
        raise ValueError(f"{where}: a {point.type} point cannot have limits")
    for level in (point.yellow, point.red):
        if level is None:
            continue
        if len(level) != 2 or not all(b is None or (type(b) in (int, float)
                                                    and math.isfinite(b)) for b in level):
            raise ValueError(f"{where}: {level!r} is not (low, high) numbers or None")
        low, high = level
        if low is not None and high is not None and low > high:
            raise ValueError(f"{where}: low {low} above high {high}")
    if point.yellow is not None and point.red is not None:
        (y_low, y_high), (r_low, r_high) = point.yellow, point.red
        if (r_low is not None and (y_low is None or r_low > y_low)) \
                or (r_high is not None and (y_high is None or r_high < y_high)):
            raise ValueError(f"{where}: red {point.red} lies inside yellow {point.yellow}")
    if not (math.isfinite(point.persistence_s) and point.persistence_s >= 0):
        raise ValueError(f"{where}: persistence {point.persistence_s} s")


@dataclass(frozen=True, slots=True)
class EventSpec:
    name: str  # "component.event"
    severity: Severity
    description: str = ""
    # Its arguments, in the order they travel (TM[5,x]: hal.layout); an argument an
    # emitter leaves out goes as "not yet sampled".
    args: tuple[ArgSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    name: str  # "component.parameter"
    type: str  # a ValueType (a str) once declared: __post_init__ makes it one
    default: Any
    description: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()  # for type "enum"

    def __post_init__(self) -> None:
        _typed(self)


@dataclass(frozen=True, slots=True)
class Dictionary:
    commands: tuple[CommandSpec, ...] = ()
    telemetry: tuple[TelemetrySpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    parameters: tuple[ParameterSpec, ...] = ()

    def command(self, name: str) -> CommandSpec:
        for spec in self.commands:
            if spec.name == name:
                return spec
        raise ArgumentError(f"unknown command {name!r}")

    def to_json(self) -> dict[str, Any]:
        def clean(spec: Any) -> dict[str, Any]:
            d = asdict(spec)
            for key, value in list(d.items()):
                if isinstance(value, enum.Enum):
                    d[key] = value.value
                elif isinstance(value, tuple):
                    d[key] = list(value)
            return d

        return {
            "commands": [
                {**clean(c), "args": [clean(a) for a in c.args]} for c in self.commands
            ],
            "telemetry": [clean(t) for t in self.telemetry],
            "events": [{**clean(e), "args": [clean(a) for a in e.args]} for e in self.events],
            "parameters": [clean(p) for p in self.parameters],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dictionary:
        try:
            commands = tuple(
                CommandSpec(
                    name=c["name"],
                    description=c.get("description", ""),
                    hazardous=bool(c.get("hazardous", False)),
                    args=tuple(
                        ArgSpec(**{**a, "values": tuple(a.get("values", ()))}) for a in c["args"]
                    ),
                )
                for c in data["commands"]
            )
            return cls(
                commands=commands,
                telemetry=tuple(TelemetrySpec(**{
                    **t, **{k: tuple(t[k]) for k in ("yellow", "red") if t.get(k) is not None}})
                    for t in data["telemetry"]),
                events=tuple(
                    EventSpec(**{**e, "severity": Severity(e["severity"]), "args": tuple(
                        ArgSpec(**{**a, "values": tuple(a.get("values", ()))})
                        for a in e.get("args", ()))})
                    for e in data["events"]
                ),
                parameters=tuple(ParameterSpec(**p) for p in data["parameters"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"not a skyrack dictionary: {e}") from e


def check_value(spec: ArgSpec | ParameterSpec, value: Any, what: str) -> Any:
    """`value` checked against its declared type and range; raises ArgumentError."""
    try:
        value = ValueType(spec.type).check(spec, value, what)
    except BadValue as e:
        raise ArgumentError(str(e)) from None
    if not ValueType(spec.type).numeric:
        return value
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.min is not None and value < spec.min:
        raise ArgumentError(f"{what} = {value}{unit} is below the minimum {spec.min}{unit}")
    if spec.max is not None and value > spec.max:
        raise ArgumentError(f"{what} = {value}{unit} is above the maximum {spec.max}{unit}")
    return value


def validate_args(command: CommandSpec, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments checked and completed with defaults; raises ArgumentError."""
    declared = {a.name: a for a in command.args}
    unknown = sorted(set(args) - set(declared))
    if unknown:
        expected = ", ".join(declared) or "no arguments"
        raise ArgumentError(
            f"{command.name}: unknown argument {unknown[0]!r} (expected {expected})"
        )
    checked: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in args:
            if spec.required:
                raise ArgumentError(f"{command.name}: missing argument {name!r}")
            checked[name] = spec.default
            continue
        checked[name] = check_value(spec, args[name], f"{command.name}: {name}")
    return checked
