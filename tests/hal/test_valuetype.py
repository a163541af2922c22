"""The value types: one definition of what each type admits, its wire encoding, its
text form and its XTCE, used by the flight software, the ground and the exports."""

import math
import struct
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.software import FlightSoftware
from hal.dictionary import ArgSpec, ArgumentError, TelemetrySpec, check_value
from hal.layout import Layouts, field_bytes
from hal.valuetype import STR_BYTES, TEXT_BYTES, BadValue, ValueType
from hal.xtce import NS, to_xtce

STATE = TelemetrySpec("x.state", "enum", values=("off", "idle", "on"))
SPECS = {
    ValueType.INT: (TelemetrySpec("x.n", "int"), st.integers(-(2**63) + 1, 2**63 - 1)),
    ValueType.FLOAT: (TelemetrySpec("x.v", "float"),
                      st.floats(allow_nan=False, allow_infinity=False)),
    ValueType.BOOL: (TelemetrySpec("x.on", "bool"), st.booleans()),
    ValueType.ENUM: (STATE, st.sampled_from(STATE.values)),
    ValueType.STR: (TelemetrySpec("x.s", "str"),
                    st.text(max_size=8).filter(lambda t: "\0" not in t)),
    ValueType.TEXT: (TelemetrySpec("x.why", "text"),
                     st.text(max_size=40).filter(lambda t: "\0" not in t)),
}


@pytest.mark.parametrize("kind", list(ValueType))
def test_every_type_packs_to_its_size_and_back(kind) -> None:
    spec, values = SPECS[kind]

    @given(values)
    def roundtrip(value) -> None:
        raw = kind.pack(spec, value)
        assert len(raw) == kind.size == field_bytes(spec)
        assert kind.unpack(spec, b"\xaa" + raw, 1, "test") == value

    roundtrip()


@pytest.mark.parametrize("kind", list(ValueType))
def test_not_yet_sampled_has_a_marker_of_its_own_in_every_type(kind) -> None:
    spec, _ = SPECS[kind]
    raw = kind.pack(spec, None)
    expected = {ValueType.INT: b"\x80" + bytes(7), ValueType.BOOL: b"\xff",
                ValueType.ENUM: b"\xff", ValueType.STR: bytes(STR_BYTES),
                ValueType.TEXT: bytes(TEXT_BYTES)}
    if kind is ValueType.FLOAT:
        assert math.isnan(struct.unpack(">d", raw)[0])
    else:
        assert raw == expected[kind]
    decoded = kind.unpack(spec, raw, 0, "test")
    assert decoded == ("" if kind.textual else None)


@given(st.text(min_size=100, max_size=200).filter(lambda t: "\0" not in t))
def test_a_long_message_is_cut_at_a_character_and_always_ends_in_a_nul(text) -> None:
    spec = SPECS[ValueType.TEXT][0]
    raw = ValueType.TEXT.pack(spec, text)
    assert len(raw) == TEXT_BYTES and raw[-1] == 0
    back = ValueType.TEXT.unpack(spec, raw, 0, "event")
    if len(text.encode()) < TEXT_BYTES:
        assert back == text
    else:  # cut to the last whole character that fits: at most 3 octets short
        assert text.startswith(back) and TEXT_BYTES - 4 <= len(back.encode()) < TEXT_BYTES


def test_octets_that_are_no_value_of_the_type_are_refused_with_the_reason() -> None:
    with pytest.raises(BadValue, match="x.state index 3 is not one of 3 values"):
        ValueType.ENUM.unpack(STATE, b"\x03", 0, "hk")
    with pytest.raises(BadValue, match="x.on is 2, not 0 or 1"):
        ValueType.BOOL.unpack(SPECS[ValueType.BOOL][0], b"\x02", 0, "hk")
    with pytest.raises(BadValue, match="x.s is not UTF-8"):
        ValueType.STR.unpack(SPECS[ValueType.STR][0], b"\xff" * STR_BYTES, 0, "hk")
    with pytest.raises(BadValue, match="'max' is not one of off, idle, on"):
        ValueType.ENUM.pack(STATE, "max")


@pytest.mark.parametrize("kind,text,value", [
    (ValueType.INT, "0x10", 16), (ValueType.INT, "-3", -3), (ValueType.FLOAT, "2.5", 2.5),
    (ValueType.BOOL, "on", True), (ValueType.BOOL, "False", False),
    (ValueType.ENUM, "idle", "idle"), (ValueType.STR, "a b", "a b"),
])
def test_operators_text_is_typed_by_the_declaration(kind, text, value) -> None:
    assert kind.parse(SPECS[kind][0], text) == value


@pytest.mark.parametrize("kind,text,reason", [
    (ValueType.INT, "three", "x.n='three' is not int"),
    (ValueType.FLOAT, "1,5", "x.v='1,5' is not float"),
    (ValueType.BOOL, "maybe", "x.on='maybe' is not true or false"),
    (ValueType.ENUM, "max", "x.state='max' is not one of off, idle, on"),
])
def test_text_that_is_no_value_says_why(kind, text, reason) -> None:
    with pytest.raises(BadValue, match=reason):
        kind.parse(SPECS[kind][0], text)


def test_an_unknown_type_or_an_enum_without_values_fails_where_it_is_declared() -> None:
    with pytest.raises(ValueError, match="x.q: unknown value type 'double'"):
        TelemetrySpec("x.q", "double")
    with pytest.raises(ValueError, match="an enum has values, and only an enum does"):
        ArgSpec("a", "enum")
    with pytest.raises(ArgumentError, match="must be an integer"):
        check_value(ArgSpec("a", "int"), 1.5, "a")


def test_enumerated_telemetry_goes_down_as_one_octet_and_reaches_xtce_as_an_enumeration(
        ) -> None:
    dictionary = FlightSoftware.dictionary()
    mode = next(t for t in dictionary.telemetry if t.name == "mode.mode")
    assert mode.type is ValueType.ENUM and mode.values == ("safe", "nominal", "compute")
    assert field_bytes(mode) == 1
    structure = next(s for s in Layouts(dictionary).structures.values() if s.name == "mode")
    assert [p.name for p in structure.points if p.type is ValueType.ENUM] == [
        "mode.mode", "mode.budget"]
    root = ET.fromstring(to_xtce(dictionary))
    ns = {"x": NS}
    enum_type = root.find(".//x:EnumeratedParameterType[@name='mode_mode_t']", ns)
    assert enum_type is not None
    labels = [(e.get("value"), e.get("label"))
              for e in enum_type.iterfind("x:EnumerationList/x:Enumeration", ns)]
    assert labels == [("0", "safe"), ("1", "nominal"), ("2", "compute"), ("255", "unsampled")]
