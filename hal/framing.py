"""COBS framing on byte streams. The board protocol: 0x00 + COBS(payload + CRC-16
big-endian) + 0x00. The space link on a serial line: 0x00 + COBS(space packet) + 0x00,
one packet a frame, with no CRC of the frame's own (the packet's CRC protects it, and
tmtccmd and other ground tools frame it so): `crc=False`.

The leading delimiter costs a byte and buys isolation: noise picked up while the line
was idle ends at it, as a rejected fragment, instead of corrupting the frame behind it.

`encode_frame` and `decode_frame` handle one frame; `Deframer` cuts a byte stream
into frames, rejecting and counting bad ones and resynchronising at the next 0x00.
"""

from __future__ import annotations

import collections
from typing import Any

from hal import cobs
from hal._wire import ffi, lib
from hal.errors import FrameError

DELIMITER = b"\x00"
CRC_BYTES = 2
# Large enough for any board-protocol message we send (telemetry, flash chunks);
# small enough that a board with kilobytes of RAM can hold one frame.
MAX_PAYLOAD_BYTES = 4096

lib.sk_crc16(b"", 0, 0xFFFF)  # the CRC's tables made now, under the import lock, not by
# whichever threads first frame something at once


def max_encoded_bytes(max_payload_bytes: int, crc: bool = True) -> int:
    """Worst-case COBS size of a payload (plus its CRC), without the delimiter."""
    return cobs.encoded_bytes(max_payload_bytes + (CRC_BYTES if crc else 0))


def frame_buffer(max_payload_bytes: int = MAX_PAYLOAD_BYTES, crc: bool = True) -> Any:
    """Room for any frame of up to `max_payload_bytes`, delimiters included: a buffer a
    sender keeps for encode_frame, for use by one thread at a time."""
    return ffi.new("uint8_t[]", max_encoded_bytes(max_payload_bytes, crc) + 2)


def encode_frame(payload: bytes, max_payload_bytes: int = MAX_PAYLOAD_BYTES,
                 crc: bool = True, scratch: Any = None) -> bytes:
    """One frame ready for the wire, delimiters included. `scratch`: a frame_buffer of
    at least this `max_payload_bytes` (else the frame is made in a buffer of its own)."""
    if len(payload) > max_payload_bytes:
        raise FrameError(
            "oversize", f"payload of {len(payload)} bytes exceeds {max_payload_bytes}"
        )
    if type(payload) is not bytes:
        payload = bytes(payload)
    n = len(payload) + (CRC_BYTES if crc else 0)
    room = n + n // 254 + 3  # cobs.encoded_bytes(n) and two delimiters
    if scratch is not None and ffi.sizeof(scratch) < room:
        raise ValueError(f"a {ffi.sizeof(scratch)}-byte frame buffer cannot hold {room}")
    out = scratch if scratch is not None else ffi.new("uint8_t[]", room)
    return ffi.buffer(out, lib.sk_frame_encode(payload, len(payload), crc, out))[:]


def decode_frame(frame: bytes, max_payload_bytes: int = MAX_PAYLOAD_BYTES,
                 crc: bool = True) -> bytes:
    """The payload of one frame (delimiters optional).

    Raises:
        FrameError: kind "oversize", "cobs", "truncated" or "crc", with the reason.
    """
    frame = bytes(frame)
    if frame[:1] == DELIMITER or frame[-1:] == DELIMITER:
        frame = frame.strip(DELIMITER)
    return _decode_block(frame, max_payload_bytes, crc)


def _decode_block(block: bytes, max_payload_bytes: int, crc: bool,
                  scratch: tuple[Any, Any] | None = None, limit: int | None = None) -> bytes:
    """decode_frame of a block without delimiters: one C call (hal/wire.c), the reason
    spelled out only when it fails. `scratch`: an output buffer of the limit's size and
    an offset cell the caller keeps (a Deframer), instead of two allocations a frame;
    `limit`: max_encoded_bytes(max_payload_bytes, crc), when the caller keeps it."""
    n = len(block)
    if limit is None:
        limit = max_encoded_bytes(max_payload_bytes, crc)
    if n > limit:
        raise FrameError(
            "oversize", f"frame of {n} encoded bytes exceeds the {limit}-byte limit")
    out, at = scratch if scratch is not None else (ffi.new("uint8_t[]", n or 1),
                                                   ffi.new("size_t *"))
    m = lib.sk_frame_decode(block, n, crc, max_payload_bytes, out, at)
    if m >= 0:
        return ffi.buffer(out, m)[:]
    if m == -1:
        raise FrameError("cobs", f"zero byte inside COBS block at offset {at[0]}")
    if m == -2:
        raise FrameError("cobs", f"COBS code at offset {at[0]} runs "
                         f"{at[0] + block[at[0]] - n} bytes past the block")
    if m == -3:
        raise FrameError("truncated",
                         f"frame of {at[0]} bytes is too short to hold its CRC")
    if m == -4:
        sent, computed = at[0] >> 16, at[0] & 0xFFFF
        raise FrameError("crc", f"bad CRC: frame says 0x{sent:04X}, payload gives 0x{computed:04X}")
    raise FrameError("oversize", f"payload of {at[0]} bytes exceeds {max_payload_bytes}")


class Deframer:
    """Cuts a byte stream into verified payloads.

    Bad frames never stop the stream: each is counted in `rejected` by kind and kept
    as `last_error`, and decoding resumes at the next delimiter. A run of bytes longer
    than any valid frame is dropped up to the next delimiter, so memory stays bounded
    whatever arrives.
    """

    def __init__(self, max_payload_bytes: int = MAX_PAYLOAD_BYTES, crc: bool = True) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.crc = crc
        self._limit = max_encoded_bytes(max_payload_bytes, crc)
        self._scratch = (ffi.new("uint8_t[]", self._limit or 1), ffi.new("size_t *"))
        self._buf = bytearray()
        self._overflowed = False
        self.rejected: collections.Counter[str] = collections.Counter()
        self.rejected_total = 0  # the sum of `rejected`, kept as they are counted
        self.accepted = 0
        self.last_error: FrameError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the payloads of every frame they completed."""
        payloads: list[bytes] = []
        chunks = bytes(data).split(DELIMITER)
        # Every chunk but the last was closed by a delimiter.
        for chunk in chunks[:-1]:
            if self._buf or self._overflowed:  # the end of a frame begun in earlier data
                self._append(chunk)
                frame, overflowed = bytes(self._buf), self._overflowed
                self._buf.clear()
                self._overflowed = False
            else:  # a whole frame in this data: no copy through the buffer
                frame, overflowed = chunk, len(chunk) > self._limit
            if overflowed:
                self._reject(
                    FrameError("oversize", f"dropped a run of more than {self._limit} bytes")
                )
                continue
            if not frame:
                continue  # back-to-back delimiters are idle fill, not frames
            try:
                payloads.append(_decode_block(frame, self.max_payload_bytes, self.crc,
                                              self._scratch, self._limit))
            except FrameError as e:
                self._reject(e)
            else:
                self.accepted += 1
        if chunks[-1]:  # the start of a frame the next data ends
            self._append(chunks[-1])
        return payloads

    def reset(self) -> None:
        """Forget any partial frame (after a reconnect or a board reset)."""
        self._buf.clear()
        self._overflowed = False

    def _append(self, chunk: bytes) -> None:
        if self._overflowed:
            return
        if len(self._buf) + len(chunk) > self._limit:
            self._overflowed = True
            self._buf.clear()
        else:
            self._buf += chunk

    def _reject(self, error: FrameError) -> None:
        self.rejected[error.kind] += 1
        self.rejected_total += 1
        self.last_error = error
