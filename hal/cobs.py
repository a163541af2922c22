"""Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).

Encoded data never contains 0x00, so 0x00 can delimit frames on a byte stream and a
receiver resynchronises at the next delimiter after any garbage. Overhead is one byte
per 254 bytes of payload, plus one. The loops are C (hal/wire.c): every board round
trip and space-link frame crosses them, and in Python their cost grew with each zero.
"""

from __future__ import annotations

from typing import Any

from hal._wire import ffi, lib
from hal.errors import FrameError


def encoded_bytes(n: int) -> int:
    """The most bytes `n` bytes encode to."""
    return n + n // 254 + 1


def encode(data: bytes) -> bytes:
    """COBS-encode `data`; the result contains no zero byte."""
    data = bytes(data)
    out = ffi.new("uint8_t[]", encoded_bytes(len(data)))
    return ffi.buffer(out, lib.sk_cobs_encode(data, len(data), out))[:]


def decode(data: bytes) -> bytes:
    """Decode one COBS block (without its 0x00 delimiter).

    Raises:
        FrameError: `kind` "cobs" for a zero byte inside the block or a code that
            points past its end.
    """
    out, n = decode_into(bytes(data))
    return ffi.buffer(out, n)[:]


def decode_into(data: bytes) -> tuple[Any, int]:
    """decode, leaving the result in C memory: (the buffer, its length). For callers
    that read the decoded bytes before copying them out (hal.framing checks the CRC)."""
    out = ffi.new("uint8_t[]", len(data))
    at = ffi.new("size_t *")
    n = lib.sk_cobs_decode(data, len(data), out, at)
    if n == -1:
        raise FrameError("cobs", f"zero byte inside COBS block at offset {at[0]}")
    if n == -2:
        raise FrameError("cobs", f"COBS code at offset {at[0]} runs "
                         f"{at[0] + data[at[0]] - len(data)} bytes past the block")
    return out, n
