"""Every op of the board protocol, declared once: its request and its reply as typed
dataclasses, with ranges where the protocol fixes them. The board firmware decodes
requests and encodes replies with these declarations, the drivers encode requests and
decode replies with the same ones, and the replies are the HAL's own values
(hal.boards). The wire stays msgpack maps of the fields by name.

A field's annotation is its type on the wire: int, float (an int is taken), bool, str,
bytes, an Enum (by value), `X | None`, `tuple[X, ...]` (a list), `dict[str, X]` (a map),
a nested dataclass (a map), and `Annotated[int, Range(lo, hi)]`. Bool is never taken
for a number nor a number for a bool. A reply may carry fields its declaration lacks
(the server adds its status to `tlm`); a missing field without a default is an error.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from hal.boards import (
    AcceleratorHousekeeping,
    AcceleratorState,
    BoardInfo,
    PowerHousekeeping,
    ThermalHousekeeping,
)
from hal.errors import SkyrackError
from hal.values import quick


class WireError(SkyrackError, ValueError):
    """A request or reply that does not match its op's declaration; the message names
    the field and what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Range:
    min: float
    max: float


# -- requests and replies (the housekeeping replies are hal.boards') ----------------------

@dataclass(frozen=True, slots=True)
class Uptime:
    uptime_s: float


@dataclass(frozen=True, slots=True)
class Switch:
    channel: Annotated[int, Range(0, 31)]
    on: bool


@dataclass(frozen=True, slots=True)
class Switches:
    switches: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class Channel:
    channel: Annotated[int, Range(0, 31)]


@quick
@dataclass(frozen=True, slots=True)
class Kick:
    watchdog_s: float


@dataclass(frozen=True, slots=True)
class Heater:
    heater: Annotated[int, Range(0, 31)]
    on: bool


@dataclass(frozen=True, slots=True)
class Heaters:
    heaters: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class SetState:
    state: AcceleratorState


@dataclass(frozen=True, slots=True)
class SetClock:
    clock_pct: Annotated[int, Range(10, 100)]


@dataclass(frozen=True, slots=True)
class Clock:
    clock_pct: int


@dataclass(frozen=True, slots=True)
class FlashBegin:
    header: bytes


@dataclass(frozen=True, slots=True)
class FlashSlot:
    slot: str
    chunk_bytes: Annotated[int, Range(1, 1 << 20)]


@dataclass(frozen=True, slots=True)
class FlashChunk:
    offset: Annotated[int, Range(0, 0xFFFFFFFF)]
    data: bytes
    crc32: Annotated[int, Range(0, 0xFFFFFFFF)]


@dataclass(frozen=True, slots=True)
class FlashOffset:
    offset: int


@dataclass(frozen=True, slots=True)
class FlashEnded:
    slot: str
    version: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FlashActivated:
    slot: str
    rebooting: bool


@dataclass(frozen=True, slots=True)
class Confirmed:
    slot: str
    confirmed: bool


@dataclass(frozen=True, slots=True)
class SlotState:
    state: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class BootInfo:
    running: str
    version: str
    boot_cause: str
    trial: bool
    rolled_back: str | None
    slots: dict[str, SlotState]


@dataclass(frozen=True, slots=True)
class Op:
    """One op: its name, the dataclass of its arguments and of its result (None: an
    empty map; dict: any map), and whether a host may send it again when a reply is
    lost."""

    name: str
    request: type | None = None
    reply: type | None = None
    idempotent: bool = True
    # What an error names: made once, not for every message (four a board call).
    _request_what: str = dataclasses.field(init=False, repr=False, compare=False)
    _reply_what: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_request_what", f"{self.name} request")
        object.__setattr__(self, "_reply_what", f"{self.name} reply")

    def encode_request(self, value: Any = None) -> dict[str, Any]:
        return _encode_message(self.request, value, self._request_what)

    def decode_request(self, raw: Any) -> Any:
        return _decode_message(self.request, raw, self._request_what)

    def encode_reply(self, value: Any = None) -> dict[str, Any]:
        return _encode_message(self.reply, value, self._reply_what)

    def decode_reply(self, raw: Any) -> Any:
        return _decode_message(self.reply, raw, self._reply_what)


def _ops(*ops: Op) -> dict[str, Op]:
    return {op.name: op for op in ops}


COMMON = _ops(Op("ping", reply=Uptime), Op("info", reply=BoardInfo),
              Op("reset", idempotent=False))
BOOTLOADER = _ops(
    Op("flash_begin", FlashBegin, FlashSlot),
    Op("flash_chunk", FlashChunk, FlashOffset),
    Op("flash_end", reply=FlashEnded),
    Op("flash_activate", reply=FlashActivated, idempotent=False),
    Op("confirm", reply=Confirmed),
    Op("boot_info", reply=BootInfo),
)
BY_KIND = {
    "power": _ops(Op("tlm", reply=PowerHousekeeping), Op("switch", Switch, Switches),
                  Op("kick", reply=Kick), Op("trip", Channel, Switches, idempotent=False)),
    "thermal": _ops(Op("tlm", reply=ThermalHousekeeping), Op("heater", Heater, Heaters)),
    "accelerator": _ops(Op("tlm", reply=AcceleratorHousekeeping),
                        Op("set_state", SetState, SetState), Op("set_clock", SetClock, Clock)),
}


def ops_for(own: dict[str, Op]) -> dict[str, Op]:
    """Every op a board answers: the common ones, the bootloader's, and its `own`
    (BY_KIND[kind] for the boards of this framework)."""
    return {**COMMON, **BOOTLOADER, **own}


# -- the codec -------------------------------------------------------------------------

def _encode_message(cls: type | None, value: Any, what: str) -> dict[str, Any]:
    if cls is None:
        if value is not None:
            raise WireError(f"{what}: takes no fields, got {value!r}")
        return {}
    if cls is dict:  # declared as any map (test boards)
        if not isinstance(value, dict):
            raise WireError(f"{what}: expected a map, got {value!r}")
        return value
    if not isinstance(value, cls):
        raise WireError(f"{what}: expected {cls.__name__}, got {type(value).__name__}")
    out = _checked_encoder(cls)(value, what)
    assert isinstance(out, dict)
    return out


@functools.cache
def _checked_encoder(cls: type) -> Callable[[Any, str], Any]:
    """A message's encoder that holds what goes out to the declaration as what comes in
    is held (the same checks, the same errors)."""
    encode = _encoder(cls)

    def full(value: Any, what: str) -> Any:
        try:
            out = encode(value)
        except (TypeError, ValueError, AttributeError) as e:  # a list that is a number...
            raise WireError(f"{what}: {cls.__name__} does not encode: {e}") from None
        _decode(cls, out, what)
        return out
    return _fast_checked_encoder(cls, full)


def _decode_message(cls: type | None, raw: Any, what: str) -> Any:
    if cls is None or cls is dict:
        if not isinstance(raw, dict):
            raise WireError(f"{what}: expected a map, got {raw!r}")
        return None if cls is None else raw
    return _decode(cls, raw, what)


Encode = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


@functools.cache
def _encoder(hint: Any) -> Encode:
    """The encoder of one annotation, built once (as the decoders are): a value as
    msgpack carries it, tuples as lists and enums by value."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [_encoder(a) for a in args if a is not type(None)]
        return inner if inner is _identity else (lambda v: None if v is None else inner(v))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        fields = [(f.name, _encoder(hints[f.name])) for f in dataclasses.fields(hint)]
        return lambda v: {name: encode(getattr(v, name)) for name, encode in fields}
    if origin is tuple:
        item = _encoder(args[0])
        return list if item is _identity else (lambda v: [item(x) for x in v])
    if origin is dict:
        value = _encoder(args[1])
        return dict if value is _identity else (lambda v: {k: value(x) for k, x in v.items()})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return lambda v: v.value
    return _identity


Decode = Callable[[Any, str], Any]


def _decode(hint: Any, raw: Any, what: str) -> Any:
    """`raw` as `hint` describes it, or WireError naming `what`."""
    return _decoder(hint)(raw, what)


def _ranged(hint: Any) -> tuple[Any, Range | None]:
    """An annotation's bare type and the Range it declares, if any."""
    if typing.get_origin(hint) is not Annotated:
        return hint, None
    bare, *extras = typing.get_args(hint)
    return bare, next((e for e in extras if isinstance(e, Range)), None)


@functools.cache
def _decoder(hint: Any) -> Decode:
    """The decoder of one annotation, built once: a reply is decoded on every board
    call, and walking the annotations each time would cost more than the msgpack."""
    hint, limits = _ranged(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [_decoder(a) for a in args if a is not type(None)]
        return lambda raw, what: None if raw is None else inner(raw, what)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    if origin is tuple:
        item = _decoder(args[0])
        fast = _scalars_check(args[0])

        def items(raw: Any, what: str) -> Any:
            if type(raw) is not list:
                raise WireError(f"{what}: expected a list, got {raw!r}")
            if fast is not None and fast(raw):
                return tuple(raw)
            return tuple([item(v, what) for v in raw])  # each checked: the first wrong named
        return items
    if origin is dict:
        value = _decoder(args[1])
        fast_values = _scalars_check(args[1])

        def mapping(raw: Any, what: str) -> Any:
            if type(raw) is not dict or not set(map(type, raw)) <= {str}:
                raise WireError(f"{what}: expected a map of names, got {raw!r}")
            if fast_values is not None and fast_values(list(raw.values())):
                return dict(raw)  # every value decodes to itself, as for a list
            out = {}
            for k, v in raw.items():
                try:
                    out[k] = value(v, what)
                except WireError as e:
                    raise _within(e, what, f"{what}[{k!r}]") from None
            return out
        return mapping
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = hint

        def member(raw: Any, what: str) -> Any:
            try:
                return members(raw)
            except (ValueError, TypeError):
                raise WireError(f"{what}: {raw!r} is not one of "
                                f"{', '.join(str(m.value) for m in members)}") from None
        return member
    return _scalar_decoder(hint, limits)


def _within(error: WireError, what: str, inner: str) -> WireError:
    """`error`, raised for `what`, as said of the part of it called `inner`: a decoder
    names the field only when one fails, not on every field of every message."""
    text = str(error)
    prefix = f"{what}: "
    return WireError(inner + ": " + text[len(prefix):] if text.startswith(prefix) else text)


def _dataclass_decoder(cls: type) -> Decode:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [(f.name, _decoder(hints[f.name]), f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING)
              for f in dataclasses.fields(cls)]

    def decode(raw: Any, what: str) -> Any:
        if type(raw) is not dict:
            raise WireError(f"{what}: expected a map, got {raw!r}")
        out = {}
        for name, field, required in fields:
            if name in raw:
                try:
                    out[name] = field(raw[name], what)
                except WireError as e:
                    raise _within(e, what, f"{what}: {name}") from None
            elif required:
                raise WireError(f"{what}: no field {name!r}")
        return cls(**out)
    return _fast_dataclass_decoder(cls, hints, decode)


class _Off(Exception):
    """Raised inside a generated decoder: this message needs the full decoder."""


_SCALAR_CHECKS = {  # a field's check, inline, on `v`; each raises _Off when it fails
    float: ("if type(v) is float:\n    if not v - v == 0.0: raise _Off\n"  # NaN or inf
            "elif type(v) is int: v = float(v)\nelse: raise _Off\n"),
    int: "if type(v) is not int: raise _Off\n",
    bool: "if type(v) is not bool: raise _Off\n",
    str: "if type(v) is not str: raise _Off\n",
    bytes: "if type(v) is not bytes: raise _Off\n",
}


def _fast_dataclass_decoder(cls: type, hints: dict[str, Any], full: Decode) -> Decode:
    """`full` for the messages that need it, and for every well-formed one a function
    generated for `cls` (as dataclasses generate __init__) that checks scalar fields
    inline, in one call: a reply is decoded on every board call. Whatever the generated
    check does not take as it stands (a wrong type, a value off its range, a missing
    field, anything raised) goes to `full`, which decides and names the field, so both
    accept exactly the same messages and give the same values."""
    space: dict[str, Any] = {"cls": cls, "_Off": _Off}
    lines = ["def decode(raw, what):", " if type(raw) is not dict: return full(raw, what)",
             " try:"]
    args, keywords = [], []
    for i, f in enumerate(dataclasses.fields(cls)):
        bare, limits = _ranged(hints[f.name])
        check = _SCALAR_CHECKS.get(bare)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        body = []
        if check is None:
            space[f"dec{i}"] = _decoder(hints[f.name])
            body.append(f"v = dec{i}(v, what)\n")
        else:
            body.append(check)
        if limits is not None:
            space[f"lo{i}"], space[f"hi{i}"] = limits.min, limits.max
            body.append(f"if not lo{i} <= v <= hi{i}: raise _Off\n")
        code = "".join(body).splitlines()
        if required:
            lines.append(f"  v = raw[{f.name!r}]")
            lines += [f"  {line}" for line in code]
            lines.append(f"  a{i} = v")
            args.append(f"a{i}")
        else:
            lines.append(f"  if {f.name!r} in raw:")
            lines.append(f"   v = raw[{f.name!r}]")
            lines += [f"   {line}" for line in code]
            lines.append(f"   kw[{f.name!r}] = v")
            keywords.append(f.name)
    if keywords:
        lines.insert(3, "  kw = {}")
    lines.append(f"  return cls({', '.join([*args, *(['**kw'] if keywords else [])])})")
    lines += [" except Exception: pass", " return full(raw, what)"]
    space["full"] = full
    exec("\n".join(lines), space)  # noqa: S102 - our own declarations, not input
    fast = space["decode"]
    fast.__wrapped__ = full  # the reference it must agree with (tests hold it to that)
    return fast


# The same checks on a value about to be sent: as it stands (an int in a float field
# goes as an int, as the full encoder sends it), the range compared as the decoder will.
_SCALAR_OUT_CHECKS = {
    **_SCALAR_CHECKS,
    float: ("if type(v) is float:\n    if not v - v == 0.0: raise _Off\n"
            "elif type(v) is not int: raise _Off\n"),
}


def _fast_checked_encoder(cls: type, full: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """`full` for the values that need it, and for every well-formed one a function
    generated for `cls` that checks scalar fields inline while it builds the map (the
    firmware's reply is checked on every board call, and decoding it back into a
    dataclass to check it cost more than the encoding). Whatever it does not take as it
    stands goes to `full`, which decides and names the field."""
    hints = typing.get_type_hints(cls, include_extras=True)
    space: dict[str, Any] = {"_Off": _Off, "full": full}
    lines = ["def encode(value, what):", " try:", "  out = {}"]
    for i, f in enumerate(dataclasses.fields(cls)):
        bare, limits = _ranged(hints[f.name])
        check = _SCALAR_OUT_CHECKS.get(bare)
        lines.append(f"  v = value.{f.name}")
        if check is None:
            space[f"enc{i}"], space[f"dec{i}"] = _encoder(hints[f.name]), _decoder(hints[f.name])
            lines += [f"  v = enc{i}(v)", f"  dec{i}(v, what)"]
        else:
            lines += [f"  {line}" for line in check.splitlines()]
        if limits is not None:
            space[f"lo{i}"], space[f"hi{i}"] = limits.min, limits.max
            number = "float(v)" if bare is float else "v"
            lines.append(f"  if not lo{i} <= {number} <= hi{i}: raise _Off")
        lines.append(f"  out[{f.name!r}] = v")
    lines += ["  return out", " except Exception: pass", " return full(value, what)"]
    exec("\n".join(lines), space)  # noqa: S102 - our own declarations, not input
    fast = space["encode"]
    fast.__wrapped__ = full  # the reference it must agree with (tests hold it to that)
    return fast


def _scalars_check(hint: Any) -> Callable[[list[Any]], bool] | None:
    """For a list of scalars, a check of the whole list at once (C loops, not one call
    an item) that passes exactly the lists whose items decode to themselves; None for
    other items. A list it fails is decoded item by item, which names what is wrong."""
    hint, limits = _ranged(hint)
    if hint is float:
        def floats(raw: list[Any]) -> bool:  # ints decode to floats: not themselves
            return set(map(type, raw)) <= {float} and all(map(math.isfinite, raw))
        check = floats
    elif hint in (int, bool, str, bytes):
        def exact(raw: list[Any]) -> bool:
            return set(map(type, raw)) <= {hint}
        check = exact
    else:
        return None
    if limits is None:
        return check
    low, high = limits.min, limits.max
    return lambda raw: check(raw) and (not raw or (low <= min(raw) and max(raw) <= high))


def _scalar_decoder(hint: Any, limits: Range | None) -> Decode:
    if hint is float:
        def number(raw: Any, what: str) -> float:
            if type(raw) not in (int, float) or not math.isfinite(raw):
                raise WireError(f"{what}: expected a finite number, got {raw!r}")
            return float(raw)
        check: Decode = number
    elif hint in (int, bool, str, bytes):
        def exact(raw: Any, what: str) -> Any:
            if type(raw) is not hint:
                raise WireError(f"{what}: expected {hint.__name__}, got {raw!r}")
            return raw
        check = exact
    else:
        raise TypeError(f"unsupported field type {hint!r}")
    if limits is None:
        return check

    def bounded(raw: Any, what: str) -> Any:
        value = check(raw, what)
        if not limits.min <= value <= limits.max:
            raise WireError(f"{what}: {value} is outside {limits.min:g}..{limits.max:g}")
        return value
    return bounded
