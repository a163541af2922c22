"""The value types of the dictionary, each knowing how its values are checked, sized,
packed, unpacked, typed as text and described in XTCE: one place for what a type
means, shared by the flight software, the ground and the dictionary's exports.

On the wire every type has a fixed big-endian size, and a marker for "not yet
sampled" (a point that no component has published since boot):

    int    int64    INT64_MIN
    float  float64  NaN
    bool   uint8    0 or 1; 0xFF
    enum   uint8    index into the declared values; 0xFF
    str    32 octets, UTF-8, NUL-terminated and padded; empty
    text   128 octets, the same: a message (an event's reason), cut to fit

A string holds at most its size less one octet, so that a NUL always ends it (XTCE:
a fixed-size string with a termination character); a longer message is cut at a
character boundary.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from typing import Any, Protocol

from hal.errors import SkyrackError

STR_BYTES = 32
TEXT_BYTES = 128
INT_INVALID = -(1 << 63)
UINT8_INVALID = 0xFF
TRUE_WORDS, FALSE_WORDS = ("true", "1", "on", "yes"), ("false", "0", "off", "no")


class Typed(Protocol):
    """What a declaration carries that its type reads (ArgSpec, TelemetrySpec,
    ParameterSpec)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def values(self) -> tuple[str, ...]: ...


class BadValue(SkyrackError, ValueError):
    """A value that its type does not admit; the message says which and why. (Callers
    turn it into their own error: an argument error, a packet error.)"""


@enum.unique
class ValueType(enum.StrEnum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    ENUM = "enum"
    STR = "str"
    TEXT = "text"

    # -- what it admits -----------------------------------------------------------------

    @property
    def numeric(self) -> bool:
        return self in (ValueType.INT, ValueType.FLOAT)

    @property
    def textual(self) -> bool:
        return self in (ValueType.STR, ValueType.TEXT)

    def check(self, spec: Typed, value: Any, what: str) -> Any:
        """`value` as this type holds it (an int given for a float becomes a float);
        raises BadValue saying why it is not one. Ranges are the declaration's
        business (hal.dictionary.check_value)."""
        if self is ValueType.BOOL:
            if not isinstance(value, bool):
                raise BadValue(f"{what} must be true or false, got {value!r}")
        elif self is ValueType.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadValue(f"{what} must be an integer, got {value!r}")
            if not INT_INVALID < value < 1 << 63:
                raise BadValue(f"{what} = {value} does not fit 64 bits")
        elif self is ValueType.FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadValue(f"{what} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise BadValue(f"{what} must be finite, got {value!r}")
        elif self.textual:
            if not isinstance(value, str):
                raise BadValue(f"{what} must be a string, got {value!r}")
            if len(value.encode()) >= self.size:
                raise BadValue(f"{what} is longer than {self.size - 1} octets")
        elif value not in spec.values:
            raise BadValue(f"{what} must be one of {', '.join(spec.values)}; got {value!r}")
        return value

    def parse(self, spec: Typed, text: str) -> Any:
        """A value typed as text by an operator ("3", "0x10", "true", "idle"); raises
        BadValue when the text is not one."""
        what = f"{spec.name}={text!r}"
        try:
            if self is ValueType.INT:
                return int(text, 0)
            if self is ValueType.FLOAT:
                return float(text)
        except ValueError:
            raise BadValue(f"{what} is not {self.value}") from None
        if self is ValueType.BOOL:
            word = text.lower()
            if word not in TRUE_WORDS + FALSE_WORDS:
                raise BadValue(f"{what} is not true or false")
            return word in TRUE_WORDS
        if self is ValueType.ENUM and text not in spec.values:
            raise BadValue(f"{what} is not one of {', '.join(spec.values)}")
        return text

    def usage(self, spec: Typed, low: float | None = None, high: float | None = None) -> str:
        """How an operator writes a value: "int 0..7", "off|idle|on", "float"."""
        if self is ValueType.ENUM:
            return "|".join(spec.values)
        if low is not None and high is not None:
            return f"{self.value} {low:g}..{high:g}"
        return self.value

    # -- on the wire -------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Octets of one value."""
        if self.textual:
            return STR_BYTES if self is ValueType.STR else TEXT_BYTES
        return _STRUCTS[self].size

    def pack(self, spec: Typed, value: Any) -> bytes:
        """One value (None: "not yet sampled")."""
        if self.textual:
            raw = ("" if value is None else str(value)).encode()
            if len(raw) >= self.size:  # cut, and never inside a character
                raw = raw[:self.size - 1].decode(errors="ignore").encode()
            return raw.ljust(self.size, b"\0")
        if value is None:
            return _STRUCTS[self].pack(_INVALID[self])
        if self is ValueType.ENUM:
            try:
                value = spec.values.index(value)
            except ValueError:
                raise BadValue(f"{spec.name}: {value!r} is not one of "
                                  f"{', '.join(spec.values)}") from None
        return _STRUCTS[self].pack(_CAST[self](value))

    @property
    def code(self) -> str:
        """Its struct format (big-endian once prefixed with ">"): a layout of several
        values is one struct call (hal.layout.Codec)."""
        if self.textual:
            return f"{self.size}s"
        return _STRUCTS[self].format[1:]

    def decoder(self, spec: Typed) -> Callable[[Any, str], Any]:
        """What turns the value struct reads for `spec` (its `code`) into the value
        (None: "not yet sampled"); it raises BadValue for octets that are no value of
        this type, naming `what` they came in."""
        if self.textual:
            def text(raw: bytes, what: str) -> Any:
                try:
                    return raw.split(b"\0", 1)[0].decode()
                except UnicodeDecodeError:
                    raise BadValue(f"{what}: {spec.name} is not UTF-8") from None
            return text
        if self is ValueType.FLOAT:
            return lambda value, what: None if value != value else value  # NaN: unsampled
        if self is ValueType.INT:
            return lambda value, what: None if value == INT_INVALID else value
        if self is ValueType.BOOL:
            def boolean(value: int, what: str) -> Any:
                if value > 1:
                    if value == UINT8_INVALID:
                        return None
                    raise BadValue(f"{what}: {spec.name} is {value}, not 0 or 1")
                return value == 1
            return boolean
        labels = spec.values

        def label(value: int, what: str) -> Any:
            try:
                return labels[value]
            except IndexError:
                if value == UINT8_INVALID:
                    return None
                raise BadValue(f"{what}: {spec.name} index {value} is not one of "
                               f"{len(labels)} values") from None
        return label

    def unpack(self, spec: Typed, data: bytes, offset: int, what: str) -> Any:
        """The value at `offset` (None: "not yet sampled"); raises BadValue for octets
        that are no value of this type."""
        (raw,) = struct.unpack_from(">" + self.code, data, offset)
        return self.decoder(spec)(raw, what)

    # -- in XTCE -----------------------------------------------------------------------

    @property
    def xtce(self) -> tuple[str, str, dict[str, str]]:
        """(type element prefix, data encoding element, its attributes) of XTCE 1.2:
        "Integer" + "ParameterType" with an IntegerDataEncoding of 64 bits, and so on.
        A string's encoding also needs its fixed size (STR_BYTES)."""
        return _XTCE[self]


_STRUCTS = {ValueType.INT: struct.Struct(">q"), ValueType.FLOAT: struct.Struct(">d"),
            ValueType.BOOL: struct.Struct(">B"), ValueType.ENUM: struct.Struct(">B")}
_INVALID: dict[ValueType, Any] = {ValueType.INT: INT_INVALID, ValueType.FLOAT: math.nan,
                                  ValueType.BOOL: UINT8_INVALID,
                                  ValueType.ENUM: UINT8_INVALID}
_CAST: dict[ValueType, Any] = {ValueType.INT: int, ValueType.FLOAT: float,
                               ValueType.BOOL: int, ValueType.ENUM: int}
_BE = "mostSignificantByteFirst"
_XTCE = {
    ValueType.INT: ("Integer", "IntegerDataEncoding",
                    {"sizeInBits": "64", "encoding": "twosComplement", "byteOrder": _BE}),
    ValueType.FLOAT: ("Float", "FloatDataEncoding",
                      {"sizeInBits": "64", "encoding": "IEEE754_1985", "byteOrder": _BE}),
    ValueType.BOOL: ("Boolean", "IntegerDataEncoding",
                     {"sizeInBits": "8", "encoding": "unsigned"}),
    ValueType.ENUM: ("Enumerated", "IntegerDataEncoding",
                     {"sizeInBits": "8", "encoding": "unsigned"}),
    ValueType.STR: ("String", "StringDataEncoding", {"encoding": "UTF-8"}),
    ValueType.TEXT: ("String", "StringDataEncoding", {"encoding": "UTF-8"}),
}


def value_type(text: str, where: str) -> ValueType:
    """The ValueType named `text`; ValueError naming `where` when there is none."""
    try:
        return ValueType(text)
    except ValueError:
        raise ValueError(f"{where}: unknown value type {text!r} (one of "
                         f"{', '.join(t.value for t in ValueType)})") from None
