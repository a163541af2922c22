"""Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).

Encoded data never contains 0x00, so 0x00 can delimit frames on a byte stream and a
receiver resynchronises at the next delimiter after any garbage. Overhead is one byte
per 254 bytes of payload, plus one.
"""

from __future__ import annotations

from hal.errors import FrameError


def encode(data: bytes) -> bytes:
    """COBS-encode `data`; the result contains no zero byte."""
    out = bytearray()
    # Each zero-free run becomes a code byte (run length + 1) and the run; runs longer
    # than 254 bytes are split into 254-byte blocks whose code 0xFF implies no zero.
    runs = bytes(data).split(b"\x00")
    last = len(runs) - 1
    for index, run in enumerate(runs):
        while len(run) >= 254:
            out.append(0xFF)
            out += run[:254]
            run = run[254:]
            if not run and index == last:
                return bytes(out)  # canonical: no empty group after a final 0xFF block
        out.append(len(run) + 1)
        out += run
    return bytes(out)


def decode(data: bytes) -> bytes:
    """Decode one COBS block (without its 0x00 delimiter).

    Raises:
        FrameError: `kind` "cobs" for a zero byte inside the block or a code that
            points past its end.
    """
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("cobs", f"zero byte inside COBS block at offset {i}")
        end = i + code
        if end > n:
            raise FrameError("cobs", f"COBS code at offset {i} runs {end - n} bytes past the block")
        block = data[i + 1 : end]
        if 0 in block:
            raise FrameError("cobs", f"zero byte inside COBS block near offset {i}")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
