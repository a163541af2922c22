"""Fixed big-endian binary layouts of commands, telemetry and parameters, generated
from the dictionary, so any ground system given the dictionary (JSON or XTCE) decodes
the space link without our code. Each value is its type's encoding (hal.valuetype:
int64, float64, uint8 bool and enum index, 32-octet UTF-8 strings, each with its
"not yet sampled" marker), one after another in declaration order.

Names become 16-bit ids by CRC-16/CCITT-FALSE of their UTF-8 text: a command's
function id (service 8), a housekeeping structure's id (service 3, one structure per
component, its points in dictionary order), an event id (service 5), a parameter id
(service 20). A ground holding a stale dictionary then meets unknown ids, not other
commands. `Layouts` refuses a dictionary in which two names share an id.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hal.crc import crc16_ccitt_false
from hal.dictionary import ArgSpec, CommandSpec, Dictionary, ParameterSpec, TelemetrySpec
from hal.errors import PacketError
from hal.valuetype import BadValue, ValueType

Field = ArgSpec | TelemetrySpec | ParameterSpec


def name_id(name: str) -> int:
    return crc16_ccitt_false(name.encode())


def field_bytes(spec: Field) -> int:
    return ValueType(spec.type).size


def pack(specs: Sequence[Field], values: Sequence[Any]) -> bytes:
    """`values` in the layout of `specs`; None packs as "not yet sampled"."""
    return b"".join(ValueType(spec.type).pack(spec, value)
                    for spec, value in zip(specs, values, strict=True))


class Codec:
    """One layout compiled: its values read by one struct call, then each turned into
    its type's value (hal.valuetype)."""

    def __init__(self, specs: Sequence[Field]) -> None:
        self.specs = tuple(specs)
        self.names = tuple(s.name for s in self.specs)
        kinds = [ValueType(s.type) for s in self.specs]
        self._struct = struct.Struct(">" + "".join(k.code for k in kinds))
        self.size = self._struct.size
        self._decoders = [k.decoder(s) for k, s in zip(kinds, self.specs, strict=True)]

    def unpack(self, data: bytes, what: str) -> list[Any]:
        """Values read from `data`, which must be exactly their size. Raises
        PacketError (kind "layout")."""
        if len(data) != self.size:
            raise PacketError("layout", f"{what}: {len(data)} octets where the layout has "
                              f"{self.size}")
        try:
            return [decode(raw, what) for decode, raw in
                    zip(self._decoders, self._struct.unpack(data), strict=True)]
        except BadValue as e:
            raise PacketError("layout", str(e)) from None


@functools.lru_cache(maxsize=4096)
def codec(specs: tuple[Field, ...]) -> Codec:
    return Codec(specs)


def unpack(specs: Sequence[Field], data: bytes, what: str) -> list[Any]:
    """Values of `specs` read from `data`, which must be exactly their size. Raises
    PacketError (kind "layout")."""
    return codec(tuple(specs)).unpack(data, what)


@dataclass(frozen=True, slots=True)
class Structure:
    """A housekeeping structure: one component's telemetry points."""

    sid: int
    name: str  # the component
    points: tuple[TelemetrySpec, ...]
    layout: Codec = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", codec(self.points))

    @property
    def size(self) -> int:
        """Octets of its values (a TM[3,25] carries the 2-octet id, then these)."""
        return self.layout.size

    def values(self, data: bytes) -> dict[str, Any]:
        """Point name -> value of the structure's values in `data` (after the id).
        Raises PacketError (kind "layout")."""
        return dict(zip(self.layout.names, self.layout.unpack(data, self.name), strict=True))


class Layouts:
    """Every id and layout of one dictionary."""

    def __init__(self, dictionary: Dictionary) -> None:
        self.dictionary = dictionary
        self.commands = self._by_id(dictionary.commands, "command")
        self.events = self._by_id(dictionary.events, "event")
        self.parameters = self._by_id(dictionary.parameters, "parameter")
        components: dict[str, list[TelemetrySpec]] = {}
        for point in dictionary.telemetry:
            components.setdefault(point.name.split(".")[0], []).append(point)
        self.structures = self._by_id(
            [Structure(name_id(c), c, tuple(points)) for c, points in components.items()],
            "housekeeping structure")

    @staticmethod
    def _by_id(specs: Sequence[Any], what: str) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for spec in specs:
            key = name_id(spec.name)
            if key in out:
                raise ValueError(f"{what}s {out[key].name!r} and {spec.name!r} share the id "
                                 f"0x{key:04x}; rename one")
            out[key] = spec
        return out

    def command_by_id(self, function_id: int) -> CommandSpec:
        try:
            return self.commands[function_id]
        except KeyError:
            raise PacketError("unknown_function", f"function id 0x{function_id:04x} is not a "
                              "command of this flight software") from None

    def pack_command(self, name: str, args: dict[str, Any]) -> bytes:
        """Service 8 application data: function id, then every argument in order
        (validated values, defaults filled in)."""
        spec = self.dictionary.command(name)
        return (struct.pack(">H", name_id(name))
                + pack(spec.args, [args[a.name] for a in spec.args]))

    def unpack_command(self, data: bytes) -> tuple[CommandSpec, dict[str, Any]]:
        if len(data) < 2:
            raise PacketError("layout", "perform-function data has no function id")
        spec = self.command_by_id(struct.unpack_from(">H", data)[0])
        values = unpack(spec.args, data[2:], spec.name)
        return spec, {a.name: v for a, v in zip(spec.args, values, strict=True)}
