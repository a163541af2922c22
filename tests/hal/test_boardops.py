"""The board ops, declared once in hal.boardops and used by both ends: the firmware
decodes requests and encodes replies by the declarations, the drivers the reverse."""

import dataclasses
import enum
import types
import typing

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boards.firmware.accelerator import AcceleratorFirmware
from boards.firmware.power import PowerFirmware
from boards.firmware.server import ProtocolServer
from boards.firmware.thermal import ThermalFirmware
from hal.boardops import (
    BY_KIND,
    Op,
    Switch,
    WireError,
    _checked_encoder,
    _decoder,
    _encoder,
    _ranged,
    ops_for,
)
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



DECLARED = sorted({cls for op in EVERY_OP for cls in (op.request, op.reply)
                   if isinstance(cls, type) and cls is not dict}, key=lambda c: c.__name__)


def _outcome(decode, raw):
    try:
        return "value", decode(raw, "m")
    except WireError as e:
        return "error", str(e)


WIRE = st.one_of(st.none(), st.booleans(), st.integers(-2, 2**33), st.floats(),
                 st.text(max_size=3), st.binary(max_size=3),
                 st.lists(st.one_of(st.booleans(), st.integers(-3, 300), st.floats()),
                          max_size=9),
                 st.dictionaries(st.text(max_size=4), st.text(max_size=3), max_size=3))


SPECIAL = [float("nan"), float("inf"), -float("inf"), True, False, 0, 1, -1, 2**32, 2**40,
           1.5, -0.0, "", "x", b"", None, [], [1], {}, {"state": "x"}]


def _near(data, cls):
    """A valid encoding of `cls` with one thing off: a field of the wrong type, out of
    range, NaN or infinite, an int for a float, a field missing, or an extra key."""
    raw = msgpack.unpackb(msgpack.packb(_encoder(cls)(data.draw(_valid(cls)))))
    name = data.draw(st.sampled_from([*raw, "extra"]))
    if data.draw(st.booleans()) and name in raw:
        del raw[name]
    else:
        raw[name] = data.draw(st.sampled_from(SPECIAL) | WIRE)
    return raw


@pytest.mark.parametrize("cls", DECLARED, ids=lambda c: c.__name__)
@settings(max_examples=120)
@given(data=st.data())
def test_the_generated_decoder_agrees_with_the_full_one_on_every_message(cls, data) -> None:
    """The fast decoder generated for each declaration takes exactly what the full one
    takes, with the same value, and leaves every error to it (same message)."""
    fast = _decoder(cls)
    raw = _near(data, cls)
    assert _outcome(fast, raw) == _outcome(fast.__wrapped__, raw)
    good = data.draw(_valid(cls))
    wire = msgpack.unpackb(msgpack.packb(_encoder(cls)(good)))
    assert _outcome(fast, wire) == ("value", good) == _outcome(fast.__wrapped__, wire)


def _sent(encode, value):
    try:
        return "value", encode(value, "m")
    except WireError as e:  # and nothing else, even for a list that is a number
        return "error", str(e)


@pytest.mark.parametrize("cls", DECLARED, ids=lambda c: c.__name__)
@settings(max_examples=120)
@given(data=st.data())
def test_the_generated_encoder_agrees_with_the_full_one_on_every_value(cls, data) -> None:
    """What a board or the host is about to send, a valid value or one with a field
    off (wrong type, out of range, NaN, an int for a float): the generated encoder
    sends exactly what the full one sends and refuses with its message."""
    fast = _checked_encoder(cls)
    good = data.draw(_valid(cls))
    assert _sent(fast, good) == ("value", _encoder(cls)(good)) == _sent(fast.__wrapped__, good)
    off = data.draw(_valid(cls))
    name = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    object.__setattr__(off, name, data.draw(st.sampled_from(SPECIAL) | WIRE))
    assert _sent(fast, off) == _sent(fast.__wrapped__, off)


def _valid(cls):
    def value(hint):
        bare, limits = _ranged(hint)
        origin, args = typing.get_origin(bare), typing.get_args(bare)
        if origin in (types.UnionType, typing.Union):
            inner = [a for a in args if a is not type(None)][0]
            return st.none() | value(inner)
        if dataclasses.is_dataclass(bare):
            return _valid(bare)
        if origin is tuple:
            return st.lists(value(args[0]), max_size=4).map(tuple)
        if origin is dict:
            return st.dictionaries(st.text(max_size=4), value(args[1]), max_size=3)
        if isinstance(bare, type) and issubclass(bare, enum.Enum):
            return st.sampled_from(list(bare))
        lo, hi = (limits.min, limits.max) if limits else (None, None)
        return {float: st.floats(allow_nan=False, allow_infinity=False, min_value=lo,
                                 max_value=hi),
                int: st.integers(int(lo) if lo is not None else -2**31,
                                 int(hi) if hi is not None else 2**31),
                bool: st.booleans(), str: st.text(max_size=5),
                bytes: st.binary(max_size=5)}[bare]
    hints = typing.get_type_hints(cls, include_extras=True)
    return st.builds(cls, **{f.name: value(hints[f.name]) for f in dataclasses.fields(cls)})
