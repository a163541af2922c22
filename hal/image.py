"""Board firmware images: a fixed header, then the payload.

Header (big-endian, 42 bytes): magic b"SKIM", format version u16, board kind (16 bytes,
ASCII, NUL-padded), image version as major.minor.patch (3 x u16), payload length u32,
payload CRC32 (zlib) u32, and a CRC32 of the 38 header bytes before it. The host tool
builds and checks images with this module; the board's bootloader parses the same.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from hal.errors import SkyrackError

MAGIC = b"SKIM"
FORMAT = 1
_HEAD = struct.Struct(">4sH16s3HII")
HEADER_BYTES = _HEAD.size + 4
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class ImageError(SkyrackError, ValueError):
    """Not a valid image; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class ImageHeader:
    kind: str
    version: tuple[int, int, int]
    length: int
    crc32: int

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)


def parse_version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        raise ImageError(f"version {text!r} is not major.minor.patch") from None
    if len(numbers) != 3 or not all(0 <= n < 65536 for n in numbers):
        raise ImageError(f"version {text!r} is not major.minor.patch (each 0..65535)")
    return numbers[0], numbers[1], numbers[2]


def build(kind: str, version: str, payload: bytes) -> bytes:
    """An image of `payload` for boards of `kind`."""
    raw_kind = kind.encode("ascii", errors="strict")
    if not 1 <= len(raw_kind) <= 16:
        raise ImageError(f"board kind {kind!r} must be 1..16 ASCII characters")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ImageError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    head = _HEAD.pack(MAGIC, FORMAT, raw_kind.ljust(16, b"\0"), *parse_version(version),
                      len(payload), zlib.crc32(payload))
    return head + struct.pack(">I", zlib.crc32(head)) + payload


def parse_header(data: bytes) -> ImageHeader:
    """The header at the start of `data`. Raises ImageError."""
    if len(data) < HEADER_BYTES:
        raise ImageError(f"{len(data)} bytes is too short for an image header "
                         f"({HEADER_BYTES} bytes)")
    magic, fmt, raw_kind, major, minor, patch, length, crc = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise ImageError(f"not a skyrack image (magic {magic!r})")
    (head_crc,) = struct.unpack_from(">I", data, _HEAD.size)
    if zlib.crc32(data[:_HEAD.size]) != head_crc:
        raise ImageError("image header fails its CRC")
    if fmt != FORMAT:
        raise ImageError(f"image format {fmt}; this software reads {FORMAT}")
    if length > MAX_PAYLOAD_BYTES:
        raise ImageError(f"image claims {length} payload bytes, over {MAX_PAYLOAD_BYTES}")
    kind = raw_kind.rstrip(b"\0").decode("ascii", errors="replace")
    return ImageHeader(kind, (major, minor, patch), length, crc)


def verify(data: bytes) -> ImageHeader:
    """Header and payload both check out. Raises ImageError."""
    header = parse_header(data)
    payload = data[HEADER_BYTES:]
    if len(payload) != header.length:
        raise ImageError(f"payload is {len(payload)} bytes, header says {header.length}")
    if zlib.crc32(payload) != header.crc32:
        raise ImageError("image payload fails its CRC32")
    return header
