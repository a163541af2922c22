"""The C kernel behind a small Python API: buffers in, integers and numpy arrays out.

No pointer ever leaves this module. Every C call releases the GIL (cffi API mode).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flight.shield._kernel import ffi, lib

lib.sk_init()

HARDWARE_PATHS = {0: None, 1: "sse4.2", 2: "armv8-crc"}


class ShieldError(ValueError):
    """A shield call was given something it cannot work on; the message says what."""


def hardware_crc() -> str | None:
    """The CPU's CRC32C path in use ("sse4.2+vpclmulqdq", "sse4.2", "armv8-crc"), or None."""
    path = HARDWARE_PATHS[lib.sk_crc32c_hw_kind()]
    return f"{path}+vpclmulqdq" if path and lib.sk_crc32c_fold_available() else path


def _use_hardware(hardware: bool | None) -> int:
    if hardware is None:
        return 1
    if hardware and hardware_crc() is None:
        raise ShieldError("this CPU has no CRC32C instruction; use hardware=None or False")
    return int(hardware)


def byte_view(buffer: Any, what: str = "buffer", *, writable: bool = False) -> Any:
    """A cffi uint8_t view of a contiguous buffer. Raises ShieldError for anything else."""
    if isinstance(buffer, np.ndarray):
        if buffer.dtype.hasobject:
            raise ShieldError(f"{what} holds Python objects (dtype {buffer.dtype}), not data")
        if not buffer.flags.c_contiguous:
            raise ShieldError(f"{what} must be C-contiguous; pass np.ascontiguousarray(...)")
        if writable and not buffer.flags.writeable:
            raise ShieldError(f"{what} must be writable")
    try:
        return ffi.from_buffer("uint8_t[]", buffer, require_writable=writable)
    except (TypeError, BufferError, ValueError) as e:
        raise ShieldError(f"{what} is not a contiguous byte buffer: {e}") from None


def crc32c(buffer: Any, value: int = 0, *, hardware: bool | None = None) -> int:
    """CRC32C (Castagnoli) of `buffer`, continuing from `value` as zlib.crc32 does.

    hardware: None picks the CPU's CRC instruction when it has one; False forces the
    portable table path; True insists on the instruction (ShieldError without it).
    """
    if not 0 <= value <= 0xFFFFFFFF:
        raise ShieldError(f"value must be a 32-bit unsigned CRC, got {value}")
    view = byte_view(buffer)
    return lib.sk_crc32c(value, view, len(view), _use_hardware(hardware))
