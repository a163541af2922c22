"""Flashing a board over the board protocol: upload into the inactive slot in CRC'd
chunks, verify the whole image, activate, and see what the board booted.

The bootloader's side is boards.firmware.bootloader. Chunks are retried like any op;
the board's duplicate suppression makes a retried chunk harmless.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from drivers.board import run_op
from drivers.link import BoardLink
from hal.boardops import BOOTLOADER as OPS
from hal.boardops import FlashBegin, FlashChunk
from hal.errors import BoardError, BoardTimeout
from hal.image import HEADER_BYTES, ImageHeader, verify


@dataclass(frozen=True, slots=True)
class FlashResult:
    board: str
    slot: str
    version: str  # what the board runs now
    # "confirmed"; "trial" (not yet confirmed); "rolled_back"; or "unchanged" (the board
    # runs a confirmed image, but not the one flashed)
    state: str
    bytes_sent: int

    @property
    def ok(self) -> bool:
        return self.state == "confirmed"


def upload(link: BoardLink, image: bytes,
           progress: Callable[[int, int], None] | None = None) -> ImageHeader:
    """Image into the board's inactive slot, verified there. Raises ImageError for a bad
    image (before anything is sent) and BoardError for what the board refuses."""
    header = verify(image)
    begin = run_op(link, OPS["flash_begin"], FlashBegin(image[:HEADER_BYTES]))
    chunk = begin.chunk_bytes
    payload = image[HEADER_BYTES:]
    for offset in range(0, len(payload), chunk):
        data = payload[offset:offset + chunk]
        run_op(link, OPS["flash_chunk"], FlashChunk(offset, data, zlib.crc32(data)))
        if progress is not None:
            progress(min(offset + chunk, header.length), header.length)
    run_op(link, OPS["flash_end"])
    return header


def activate(link: BoardLink) -> None:
    """Boot the uploaded image (on trial). The board reboots after it answers, so the
    op is sent once: a retry would reach a rebooted board, which remembers no replies,
    and activate the other slot. A lost reply is not an error; what the board booted
    is read next."""
    try:
        run_op(link, OPS["flash_activate"], retries=0)
    except BoardTimeout:
        pass
    link.deframer.reset()


def boot_state(link: BoardLink) -> FlashResult:
    info = run_op(link, OPS["boot_info"])
    state = ("rolled_back" if info.rolled_back and not info.trial
             and info.boot_cause == "rollback"
             else "trial" if info.trial else "confirmed")
    return FlashResult(link.board, info.running, info.version, state, 0)


def flash(link: BoardLink, image: bytes, *, progress: Callable[[int, int], None] | None = None,
          wait: Callable[[], bool] | None = None) -> FlashResult:
    """Upload, activate, and report what the board runs once it has decided. `wait()` is
    called between looks at the board while its new image is on trial; it returns False
    when no more waiting is allowed."""
    header = upload(link, image, progress)
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
    state = result.state
    if state == "confirmed" and result.version != header.version_text:
        state = "unchanged"
    return FlashResult(result.board, result.slot, result.version, state, len(image))
