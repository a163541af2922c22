import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.dictionary import ArgSpec, CommandSpec, Dictionary, TelemetrySpec
from hal.errors import PacketError
from hal.layout import Layouts, name_id, pack, unpack

SPECS = (ArgSpec("n", "int"), ArgSpec("x", "float"), ArgSpec("on", "bool"),
         ArgSpec("mode", "enum", values=("safe", "nominal")), ArgSpec("label", "str"))


@given(st.integers(-(2**63) + 1, 2**63 - 1), st.floats(allow_nan=False), st.booleans(),
       st.sampled_from(("safe", "nominal")), st.text(max_size=8))
def test_values_round_trip_through_their_layout(n, x, on, mode, label) -> None:
    values = [n, x, on, mode, label.replace("\0", "")]
    data = pack(SPECS, values)
    assert len(data) == 8 + 8 + 1 + 1 + 32
    assert unpack(SPECS, data, "t") == values


def test_the_layout_is_big_endian_and_fixed() -> None:
    data = pack(SPECS, [1, 1.0, True, "nominal", "ab"])
    assert data[:8] == b"\0" * 7 + b"\x01" and data[8:16] == bytes.fromhex("3ff0000000000000")
    assert data[16:18] == b"\x01\x01" and data[18:] == b"ab" + b"\0" * 30


def test_unsampled_telemetry_packs_as_invalid_and_reads_back_as_none() -> None:
    points = (TelemetrySpec("a.i", "int"), TelemetrySpec("a.f", "float"),
              TelemetrySpec("a.s", "str"))
    data = pack(points, [None, None, None])
    assert math.isnan(struct.unpack(">d", data[8:16])[0])  # on the wire: the NaN of "invalid"
    assert unpack(points, data, "t") == [None, None, ""]


@pytest.mark.parametrize("data,reason", [
    (b"\0" * 49, "49 octets where the layout has 50"),
    (pack(SPECS, [0, 0.0, False, "safe", ""])[:16] + b"\x02\x00" + bytes(32), "is 2, not 0 or 1"),
    (pack(SPECS, [0, 0.0, False, "safe", ""])[:17] + b"\x07" + bytes(32), "index 7 is not one"),
])
def test_a_bad_layout_is_a_packet_error(data: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason):
        unpack(SPECS, data, "t")


def test_commands_pack_with_their_function_id_and_unknown_ids_are_refused() -> None:
    layouts = Layouts(Dictionary(commands=(CommandSpec("power.switch", "", (
        ArgSpec("channel", "int"), ArgSpec("on", "bool"))),)))
    data = layouts.pack_command("power.switch", {"channel": 3, "on": True})
    assert data[:2] == name_id("power.switch").to_bytes(2, "big")
    spec, args = layouts.unpack_command(data)
    assert spec.name == "power.switch" and args == {"channel": 3, "on": True}
    with pytest.raises(PacketError) as e:
        layouts.unpack_command(b"\xbe\xef")
    assert e.value.kind == "unknown_function"


def test_two_names_with_one_id_are_refused() -> None:
    # Find a CRC-16 collision among short names.
    seen: dict[int, str] = {}
    for i in range(200000):
        name = f"c.n{i}"
        if name_id(name) in seen:
            break
        seen[name_id(name)] = name
    clash = (CommandSpec(seen[name_id(name)], ""), CommandSpec(name, ""))
    with pytest.raises(ValueError, match="share the id"):
        Layouts(Dictionary(commands=clash))


def test_the_flight_dictionary_has_no_id_clash() -> None:
    from flight.software import FlightSoftware

    layouts = Layouts(FlightSoftware.dictionary())
    assert {s.name for s in layouts.structures.values()} >= {"power", "thermal", "compute"}
