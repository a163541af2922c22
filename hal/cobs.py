"""Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).

Encoded data never contains 0x00, so 0x00 can delimit frames on a byte stream and a
receiver resynchronises at the next delimiter after any garbage. Overhead is one byte
per 254 bytes of payload, plus one.
"""

from __future__ import annotations

from hal.errors import FrameError

_CODE = [bytes((n,)) for n in range(256)]


def encode(data: bytes) -> bytes:
    """COBS-encode `data`; the result contains no zero byte."""
    # Each zero-free run becomes a code byte (run length + 1) and the run; runs longer
    # than 254 bytes are split into 254-byte blocks whose code 0xFF implies no zero.
    runs = bytes(data).split(b"\x00")
    if max(map(len, runs)) < 254:  # the common case, in one pass
        code = _CODE
        return b"".join([code[len(run) + 1] + run for run in runs])
    out = bytearray()
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
    data = bytes(data)
    zero = data.find(0)
    if zero >= 0:  # no code and no data byte of a block is ever zero
        raise FrameError("cobs", f"zero byte inside COBS block at offset {zero}")
    # The data bytes stay where they are: each code byte after the first becomes the
    # zero it stands for, or goes (after a 0xFF block, which implies no zero), and the
    # first goes. One step a group, no slice or join per group.
    out = bytearray(data)
    blocks = []
    n = len(data)
    i = code = 0
    while i < n:
        code = data[i]
        i += code
        if i < n:
            if code == 0xFF:
                blocks.append(i)
            else:
                out[i] = 0
    if i > n:
        raise FrameError("cobs", f"COBS code at offset {i - code} runs {i - n} bytes past "
                         "the block")
    for at in reversed(blocks):
        del out[at]
    del out[:1]
    return bytes(out)
