import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal import cobs
from hal.crc import crc16_ccitt_false
from hal.errors import FrameError
from hal.framing import MAX_PAYLOAD_BYTES, Deframer, decode_frame, encode_frame


def test_crc16_ccitt_false_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_frame_is_cobs_of_payload_and_big_endian_crc_between_zeros() -> None:
    frame = encode_frame(b"hi")
    assert frame[0] == 0 and frame[-1] == 0 and frame.count(0) == 2
    raw = cobs.decode(frame[1:-1])
    assert raw[:-2] == b"hi"
    assert int.from_bytes(raw[-2:], "big") == crc16_ccitt_false(b"hi")


@given(st.binary(max_size=MAX_PAYLOAD_BYTES))
def test_round_trip(payload: bytes) -> None:
    assert decode_frame(encode_frame(payload)) == payload


# Payloads the board protocol sends are mostly small numbers and zeros; the space link's
# blocks run past 254 bytes without one.
PAYLOADS = st.one_of(st.binary(max_size=1200),
                     st.lists(st.sampled_from([0, 1, 0xFF]), max_size=800).map(bytes),
                     st.binary(min_size=250, max_size=1100).map(lambda b: b.replace(b"\0", b"a")))


@given(PAYLOADS, st.booleans())
def test_frames_are_what_independent_cobs_and_crc_code_makes_of_the_payload(
        payload: bytes, crc: bool) -> None:
    """The compiled framing against the `cobs` package and crcmod: the same frame, and
    the payload back from it."""
    from cobs import cobs as peer

    trailer = crc16_ccitt_false(payload).to_bytes(2, "big") if crc else b""
    frame = encode_frame(payload, crc=crc)
    assert frame == b"\0" + peer.encode(payload + trailer) + b"\0"
    assert cobs.encode(payload) == peer.encode(payload)
    assert decode_frame(frame, crc=crc) == payload


def test_bad_crc_is_rejected_with_both_values() -> None:
    raw = b"payload" + (crc16_ccitt_false(b"payload") ^ 0x0001).to_bytes(2, "big")
    with pytest.raises(FrameError, match=r"bad CRC: frame says 0x[0-9A-F]{4}") as e:
        decode_frame(cobs.encode(raw))
    assert e.value.kind == "crc"


def test_a_flipped_bit_anywhere_is_rejected() -> None:
    frame = bytearray(encode_frame(b"switch channel 3 on"))
    for i in range(1, len(frame) - 1):
        for bit in range(8):
            damaged = bytearray(frame)
            damaged[i] ^= 1 << bit
            if damaged[i] == 0:
                continue  # becomes a delimiter: a different, shorter frame
            with pytest.raises(FrameError):
                decode_frame(bytes(damaged))


def test_frame_too_short_for_a_crc_is_truncated() -> None:
    with pytest.raises(FrameError, match="too short") as e:
        decode_frame(cobs.encode(b"\x42"))
    assert e.value.kind == "truncated"


def test_frame_cut_short_is_rejected() -> None:
    frame = encode_frame(bytes(range(1, 40)))
    with pytest.raises(FrameError):
        decode_frame(frame[:-6])


def test_oversize_payload_is_refused_both_ways() -> None:
    with pytest.raises(FrameError, match="exceeds") as e:
        encode_frame(bytes(MAX_PAYLOAD_BYTES + 1))
    assert e.value.kind == "oversize"
    big = encode_frame(bytes(200), max_payload_bytes=1000)
    with pytest.raises(FrameError, match="exceeds") as e:
        decode_frame(big, max_payload_bytes=100)
    assert e.value.kind == "oversize"


def test_deframer_resyncs_after_garbage_and_counts_it() -> None:
    d = Deframer()
    got = d.feed(b"\x13\x37garbage" + encode_frame(b"one") + b"\xff\xfe"
                 + encode_frame(b"two"))
    assert got == [b"one", b"two"]
    assert sum(d.rejected.values()) == 2
    assert d.last_error is not None


def test_noise_on_an_idle_line_does_not_cost_the_next_frame() -> None:
    d = Deframer()
    assert d.feed(b"\x05\x41\x42") == []  # noise, never delimited by its sender
    assert d.feed(encode_frame(b"reply")) == [b"reply"]
    assert d.rejected["cobs"] + d.rejected["crc"] + d.rejected["truncated"] == 1


def test_deframer_drops_an_endless_run_with_bounded_memory() -> None:
    d = Deframer(max_payload_bytes=64)
    for _ in range(100):
        assert d.feed(b"\x01" * 1000) == []
    assert len(d._buf) <= 100
    assert d.feed(encode_frame(b"after", max_payload_bytes=64)) == [b"after"]
    assert d.rejected["oversize"] == 1


def test_deframer_ignores_idle_delimiters() -> None:
    d = Deframer()
    assert d.feed(b"\x00\x00\x00" + encode_frame(b"x") + b"\x00\x00") == [b"x"]
    assert not d.rejected


@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=8),
       st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_deframer_recovers_every_frame_after_any_junk_in_any_chunking(
        payloads: list[bytes], junk: bytes, chunk: int) -> None:
    stream = junk + b"".join(encode_frame(p) for p in payloads)
    d = Deframer()
    got: list[bytes] = []
    for i in range(0, len(stream), chunk):
        got += d.feed(stream[i:i + chunk])
    # Junk may by chance decode as a frame of its own; the real frames all come through.
    assert got[len(got) - len(payloads):] == payloads


@given(st.binary(max_size=3000))
def test_deframer_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    d = Deframer(max_payload_bytes=256)
    d.feed(data)


@given(st.binary(max_size=70), st.integers(0, 0xFFFF))
def test_the_compiled_crc16_agrees_with_crcmod_at_every_length_and_register(
        data: bytes, register: int) -> None:
    """Eight bytes a step and the bytes left one at a time: every split of the two."""
    from hal._wire import lib

    assert lib.sk_crc16(data, len(data), register) == crc16_ccitt_false(data, register)


def test_a_kept_frame_buffer_makes_the_same_frames_and_refuses_one_too_small() -> None:
    from hal.framing import frame_buffer

    scratch = frame_buffer(300)
    for payload in (b"", b"\0" * 300, bytes(range(256)) + b"tail", b"x" * 254):
        assert encode_frame(payload, scratch=scratch) == encode_frame(payload)
    with pytest.raises(ValueError, match="cannot hold"):
        encode_frame(b"y" * 400, scratch=scratch)


def test_the_rejected_total_is_the_sum_of_the_rejections_by_kind() -> None:
    d = Deframer()
    good = encode_frame(b"ok")
    bad = bytearray(good)
    bad[3] ^= 0x40
    d.feed(bytes(bad) + b"\x00\x07\x00" + good + b"x" * 5000 + b"\x00")
    assert d.rejected_total == sum(d.rejected.values()) == 3
