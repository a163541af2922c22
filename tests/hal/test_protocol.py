import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.errors import ProtocolError
from hal.protocol import Reply, Request, decode_reply, decode_request, encode_reply, encode_request


def test_request_round_trip() -> None:
    r = Request(7, "switch", {"channel": 3, "on": True})
    assert decode_request(encode_request(r)) == r


def test_reply_round_trip_ok_and_error() -> None:
    ok = Reply(9, True, result={"uptime_s": 1.5})
    bad = Reply(9, False, error="channel 9 out of range")
    booted = Reply(9, True, result=None, boot=4_000_000_000)
    assert decode_reply(encode_reply(ok)) == ok
    assert decode_reply(encode_reply(bad)) == bad
    assert decode_reply(encode_reply(booted)) == booted


@pytest.mark.parametrize("message,reason", [
    ([1, 2], "not a map"),
    ({"op": "ping"}, "seq must be"),
    ({"seq": 70000, "op": "ping"}, "seq must be"),
    ({"seq": True, "op": "ping"}, "seq must be"),
    ({"seq": 1, "op": ""}, "op must be"),
    ({"seq": 1, "op": "ping", "args": [1]}, "args must be a map"),
])
def test_malformed_requests_are_refused_with_the_reason(message: object, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode_request(msgpack.packb(message))


@pytest.mark.parametrize("message,reason", [
    ({"seq": 1}, "ok must be a boolean"),
    ({"seq": 1, "ok": False}, "must carry an error string"),
    ({"seq": 1, "ok": True, "boot": -1}, "boot must be an integer"),
    ({"seq": 1, "ok": True, "boot": 1 << 32}, "boot must be an integer"),
    ({"seq": 1, "ok": True, "boot": "2"}, "boot must be an integer"),
])
def test_malformed_replies_are_refused_with_the_reason(message: object, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode_reply(msgpack.packb(message))


def test_trailing_bytes_are_not_one_message() -> None:
    with pytest.raises(ProtocolError, match="not one msgpack message"):
        decode_reply(msgpack.packb({"seq": 1, "ok": True}) + b"\x01")


@given(st.binary(max_size=200))
def test_arbitrary_payloads_raise_only_protocol_error(data: bytes) -> None:
    for decode in (decode_reply, decode_request):
        try:
            decode(data)
        except ProtocolError:
            pass
