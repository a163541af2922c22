import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal import cobs
from hal.errors import FrameError

# The worked examples of Cheshire & Baker's encoding, as listed on Wikipedia's COBS page.
SEQ_01_FE = bytes(range(1, 255))
VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (SEQ_01_FE, b"\xff" + SEQ_01_FE),
    (b"\x00" + SEQ_01_FE, b"\x01\xff" + SEQ_01_FE),
    (SEQ_01_FE + b"\xff", b"\xff" + SEQ_01_FE + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize("raw,encoded", VECTORS)
def test_encoding_matches_the_published_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs.encode(raw) == encoded
    assert cobs.decode(encoded) == raw


@given(st.binary(max_size=2000))
def test_round_trip_has_no_zero_and_bounded_overhead(data: bytes) -> None:
    encoded = cobs.encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs.decode(encoded) == data


def test_decode_rejects_a_zero_inside_the_block() -> None:
    with pytest.raises(FrameError, match="zero byte") as e:
        cobs.decode(b"\x03\x11\x00")
    assert e.value.kind == "cobs"


def test_decode_rejects_a_code_that_runs_past_the_end() -> None:
    with pytest.raises(FrameError, match="past the block"):
        cobs.decode(b"\x05\x11\x22")


@given(st.binary(max_size=600))
def test_decode_of_arbitrary_bytes_returns_or_raises_frame_error(data: bytes) -> None:
    try:
        cobs.decode(data)
    except FrameError:
        pass


@given(st.one_of(st.binary(max_size=900).map(cobs.encode),
                 st.binary(min_size=1, max_size=900).filter(lambda b: 0 not in b)))
def test_decode_agrees_with_an_independent_implementation(block: bytes) -> None:
    """The `cobs` package (the one tmtccmd frames with) on blocks that are encodings
    and on zero-free bytes that may not be: both decode to the same bytes, or both
    refuse. (It accepts a final group's code running past the end, which we refuse.)"""
    from cobs import cobs as peer

    try:
        theirs = peer.decode(block)
    except peer.DecodeError:
        theirs = None
    try:
        ours = cobs.decode(block)
    except FrameError:
        ours = None
    if ours is not None:
        assert ours == theirs
    elif theirs is not None:  # where they differ it is only that: a code past the end
        i = 0
        while i < len(block):
            i += block[i]
        assert i > len(block), (block, theirs)
