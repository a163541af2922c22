"""Flashing a board over the board protocol: upload into the inactive slot in CRC'd
chunks, verify the whole image, activate, and see what the board booted.

The bootloader's side is boards.firmware.bootloader. Chunks are retried like any op;
the board's duplicate suppression makes a retried chunk harmless.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.link import BoardLink
from hal.errors import BoardError
from hal.image import HEADER_BYTES, verify


@dataclass(frozen=True, slots=True)
class FlashResult:
    board: str
    slot: str
    version: str  # what the board runs now
    state: str  # "confirmed", "trial" (not yet confirmed) or "rolled_back"
    bytes_sent: int

    @property
    def ok(self) -> bool:
        return self.state == "confirmed"


def upload(link: BoardLink, image: bytes,
           progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Image into the board's inactive slot, verified there. Raises ImageError for a bad
    image (before anything is sent) and BoardError for what the board refuses."""
    header = verify(image)
    begin = link.call("flash_begin", {"header": image[:HEADER_BYTES]})
    chunk = int(begin["chunk_bytes"])
    payload = image[HEADER_BYTES:]
    for offset in range(0, len(payload), chunk):
        data = payload[offset:offset + chunk]
        link.call("flash_chunk", {"offset": offset, "data": data, "crc32": zlib.crc32(data)})
        if progress is not None:
            progress(min(offset + chunk, header.length), header.length)
    return link.call("flash_end")


def activate(link: BoardLink) -> None:
    """Boot the uploaded image (on trial). The board reboots after it answers."""
    link.call("flash_activate")
    link.deframer.reset()


def boot_state(link: BoardLink) -> FlashResult:
    info = link.call("boot_info")
    state = ("rolled_back" if info.get("rolled_back") and not info.get("trial")
             and info.get("boot_cause") == "rollback"
             else "trial" if info.get("trial") else "confirmed")
    return FlashResult(link.board, info["running"], info["version"], state, 0)


def flash(link: BoardLink, image: bytes, *, progress: Callable[[int, int], None] | None = None,
          wait: Callable[[], bool] | None = None) -> FlashResult:
    """Upload, activate, and report what the board runs once it has decided. `wait()` is
    called between looks at the board while its new image is on trial; it returns False
    when no more waiting is allowed."""
    upload(link, image, progress)
    activate(link)
    while True:
        try:
            result = boot_state(link)
        except BoardError:
            result = None  # still rebooting
        if result is not None and result.state != "trial":
            break
        if wait is None or not wait():
            if result is None:
                raise BoardError(link.board, "boot_info", "the board did not come back")
            break
    return FlashResult(result.board, result.slot, result.version, result.state,
                       len(image))
