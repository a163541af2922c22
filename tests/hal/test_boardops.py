"""The board ops, declared once in hal.boardops and used by both ends: the firmware
decodes requests and encodes replies by the declarations, the drivers the reverse."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from boards.firmware.accelerator import AcceleratorFirmware
from boards.firmware.power import PowerFirmware
from boards.firmware.server import ProtocolServer
from boards.firmware.thermal import ThermalFirmware
from hal.boardops import BY_KIND, Op, Switch, WireError, ops_for
from hal.boards import AcceleratorHousekeeping, AcceleratorState, PowerHousekeeping
from hal.framing import Deframer, encode_frame
from hal.protocol import Request, decode_reply, encode_request
from tests.doubles import EchoFirmware

FIRMWARE = {"power": PowerFirmware, "thermal": ThermalFirmware,
            "accelerator": AcceleratorFirmware}

finite = st.floats(allow_nan=False, allow_infinity=False)
power_hk = st.builds(
    PowerHousekeeping, batt_v=finite, batt_a=finite, soc_pct=finite, solar_power_w=finite,
    load_power_w=finite, switches=st.tuples(*[st.booleans()] * 8),
    channel_a=st.tuples(*[finite] * 8), uptime_s=finite, fc_boot_cause=st.text(max_size=8),
    watchdog_resets=st.integers(0, 2**31), latchups=st.tuples(*[st.integers(0, 99)] * 8),
    lvd_trips=st.integers(0, 99))


@pytest.mark.parametrize("kind", sorted(FIRMWARE))
def test_every_firmware_op_is_declared_and_every_declared_op_is_served(kind) -> None:
    handlers = FIRMWARE[kind].handlers(FIRMWARE[kind].__new__(FIRMWARE[kind]))
    assert set(handlers) == set(BY_KIND[kind])
    assert FIRMWARE[kind].ops is BY_KIND[kind]  # the firmware's table is the drivers' table


@given(power_hk)
def test_what_the_firmware_encodes_the_driver_decodes_to_the_same_value(hk) -> None:
    op = BY_KIND["power"]["tlm"]
    wire = msgpack.unpackb(msgpack.packb(op.encode_reply(hk)))
    assert op.decode_reply(wire) == hk


junk = st.recursive(st.none() | st.booleans() | st.integers() | finite | st.text(max_size=4)
                    | st.binary(max_size=4),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=6), max_leaves=20)


EVERY_OP = [op for ops in (*BY_KIND.values(), ops_for({})) for op in ops.values()]


@pytest.mark.parametrize("op", EVERY_OP, ids=lambda op: op.name)
@given(raw=junk)
def test_any_request_or_reply_decodes_or_is_a_wire_error(op, raw) -> None:
    """Nothing a host or a board sends gets past the declaration as anything but a
    WireError (a TypeError here would be a field type the codec does not know)."""
    for decode in (op.decode_request, op.decode_reply):
        try:
            decode(raw)
        except WireError:
            pass


def test_a_field_of_the_wrong_type_is_named_in_the_error() -> None:
    op = BY_KIND["accelerator"]["tlm"]
    good = op.encode_reply(AcceleratorHousekeeping(AcceleratorState.ON, 100, 40.0, 600.0, 0, 1.0))
    assert op.decode_reply({**good, "extra": 1}).state is AcceleratorState.ON  # extras pass
    for field, value, reason in [
        ("clock_pct", True, "clock_pct: expected int, got True"),
        ("temp_c", "hot", "temp_c: expected a finite number, got 'hot'"),
        ("state", "max", "state: 'max' is not one of off, idle, on"),
    ]:
        with pytest.raises(WireError, match=reason):
            op.decode_reply({**good, field: value})
    del good["power_w"]
    with pytest.raises(WireError, match="no field 'power_w'"):
        op.decode_reply(good)


def test_a_request_out_of_its_declared_range_is_refused_at_both_ends() -> None:
    op = BY_KIND["power"]["switch"]
    with pytest.raises(WireError, match="channel: 40 is outside 0..31"):
        op.encode_request(Switch(40, True))
    with pytest.raises(WireError, match="switch request: on: expected bool, got 1"):
        op.decode_request({"channel": 1, "on": 1})


def ask(server, op: str, args: dict):
    tx = server.receive(encode_frame(encode_request(Request(1, op, args))))
    (payload,) = Deframer().feed(tx)
    return decode_reply(payload)


def test_a_firmware_reply_off_its_declaration_is_an_internal_error_not_a_crash() -> None:
    class Sloppy(EchoFirmware):
        ops = {**EchoFirmware.ops, "tlm": Op("tlm", reply=PowerHousekeeping)}

        def tlm(self, _):
            return {"batt_v": 1.0}  # a dict, not the declared PowerHousekeeping

    server = ProtocolServer("sloppy", Sloppy())
    reply = ask(server, "tlm", {})
    assert not reply.ok and "internal error in tlm: tlm reply: expected PowerHousekeeping" \
        in reply.error
    assert server.counters["internal_errors"] == 1 and ask(server, "ping", {}).ok


def test_a_handler_without_a_declared_op_fails_when_the_server_is_built() -> None:
    class Undeclared(EchoFirmware):
        def handlers(self):
            return {**super().handlers(), "warp": lambda _: None}

    with pytest.raises(ValueError, match="ops warp are not declared in hal.boardops"):
        ProtocolServer("x", Undeclared())

