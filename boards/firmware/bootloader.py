"""The bootloader: A/B image slots, chunked upload, verify, trial boot, rollback.

Storage is the board's NVM: named blocks, each write atomic (a flash page, or a file
replaced whole), and a power cut may fall between any two writes. So:
- an upload only ever writes the slot that is neither the confirmed image nor the one
  on trial: while a trial runs, the confirmed image is the rollback target and there
  is no free slot, so an upload is refused until the trial confirms or rolls back;
- the boot record (which slot runs, which waits for its trial) is kept twice, each copy
  numbered and CRC'd; a change writes the older copy, and the newest valid copy wins, so
  a cut mid-write leaves the previous record;
- a new image boots once on trial. It must confirm itself (its self-test passed) before
  the trial window closes or the next boot, or the board rolls back to the image it had.
- every boot verifies the slot it boots (length and CRC32), whichever path led there:
  trial, rollback or normal; if neither slot verifies, the factory image (in ROM) is
  written back and booted.
Any power cut therefore leaves a slot whose image checks out, and a record naming it.

Emulated images run no code of their own: an image "passes its self-test" unless its
payload contains the marker b"NOCONFIRM", which lets tests flash one that never confirms.
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol

import msgpack

from boards.firmware.server import OpError, within
from hal.boardops import (
    BootInfo,
    Confirmed,
    FlashActivated,
    FlashBegin,
    FlashChunk,
    FlashEnded,
    FlashOffset,
    FlashSlot,
    SlotState,
)
from hal.image import HEADER_BYTES, ImageError, parse_header

SLOTS = ("a", "b")
CHUNK_BYTES = 1024
TRIAL_S = 10.0
NO_CONFIRM = b"NOCONFIRM"


class Nvm(Protocol):
    def nvm_read(self, key: str) -> bytes | None: ...

    def nvm_write(self, key: str, data: bytes) -> None:
        """Atomic: after a power cut the key holds the old bytes or the new ones."""
        ...

    def uptime_s(self) -> float: ...


def _seal(record: dict[str, Any]) -> bytes:
    body = msgpack.packb(record)
    return body + zlib.crc32(body).to_bytes(4, "big")


def _other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)] if slot in SLOTS else SLOTS[0]


def _unseal(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None or len(raw) < 5:
        return None
    body, crc = raw[:-4], int.from_bytes(raw[-4:], "big")
    if zlib.crc32(body) != crc:
        return None
    try:
        record = msgpack.unpackb(body)
    except (ValueError, msgpack.UnpackException):
        return None
    return record if isinstance(record, dict) else None


class Bootloader:
    def __init__(self, kind: str, nvm: Nvm, factory_image: bytes) -> None:
        self.kind = kind
        self.nvm = nvm
        self.factory_image = factory_image
        self.running = "a"
        self.boot_cause = "power_on"
        self.boots = 0  # boots of this board, ever: kept in NVM
        # The boot record as last read: its two NVM copies' bytes and what they held.
        self._cached: tuple[tuple[bytes | None, bytes | None], dict[str, Any] | None] | None = None
        self.boot()

    # -- the boot sequence ----------------------------------------------------------

    def boot(self) -> None:
        """What the board does on every power-up and reset."""
        counted = (_unseal(self.nvm.nvm_read("boot.count")) or {}).get("boots", 0)
        self.boots = (counted if type(counted) is int and counted >= 0 else 0) + 1
        self.nvm.nvm_write("boot.count", _seal({"boots": self.boots}))
        record = self._record()
        if record is None:  # a board fresh from the factory (or both records lost)
            self._install_factory(SLOTS[0])
            record = self._record()
            assert record is not None
        pending = record.get("pending") if record.get("trial") else None
        if pending in SLOTS and record.get("tries", 0) == 0 and self._slot_ok(pending):
            self._write_record({**record, "tries": 1})
            self.running, self.boot_cause = pending, "trial"
            if NO_CONFIRM not in self._payload(pending):
                self.confirm({})  # the new image's self-test passed
            return
        active = record["active"]
        if pending is not None:  # booted on trial before and never confirmed, or damaged
            self.boot_cause = "rollback"
        good = next((s for s in (active, _other(active)) if s != pending and self._slot_ok(s)),
                    None)
        if good is None:  # nothing bootable but what was on trial, or nothing at all
            good = pending if pending in SLOTS and self._slot_ok(pending) else None
        if good is None:
            good = active
            self._install_factory(good)
            self.boot_cause = "factory"
            record = self._record() or record
        if pending is not None or good != active:
            self._write_record({**record, "active": good, "pending": None, "trial": False,
                                "tries": 0, **({"rolled_back": pending} if pending else {})})
        self.running = good

    def _install_factory(self, slot: str) -> None:
        header = parse_header(self.factory_image)
        self._write_slot(slot, self.factory_image, header)
        self._write_record({"active": slot, "pending": None, "trial": False, "tries": 0})

    # -- ops --------------------------------------------------------------------------

    def handlers(self) -> dict[str, Any]:
        return {"flash_begin": self.begin, "flash_chunk": self.chunk, "flash_end": self.end,
                "flash_activate": self.activate, "confirm": self.confirm,
                "boot_info": self.info}

    @property
    def inactive(self) -> str:
        """The slot an upload may write: never the confirmed image, never one on trial."""
        return _other(self.running)

    def _free_slot(self) -> str:
        """The slot an upload may write, or OpError saying why there is none."""
        record = self._record() or {}
        if record.get("trial") and record.get("pending") in SLOTS:
            pending = record["pending"]
            meta = self._meta(pending) or {}
            version = ".".join(map(str, meta.get("version", []))) or "unknown"
            raise OpError(f"image {version} is on trial in slot {pending}: it must confirm "
                          f"itself or roll back before another upload")
        return _other(record.get("active", self.running))

    def begin(self, request: FlashBegin) -> FlashSlot:
        raw = request.header
        try:
            header = parse_header(raw)
        except ImageError as e:
            raise OpError(str(e)) from None
        if header.kind != self.kind:
            raise OpError(f"image is for a {header.kind!r} board; this is a {self.kind!r} board")
        slot = self._free_slot()
        self.nvm.nvm_write(f"slot.{slot}.meta", _seal({
            "state": "receiving", "header": raw[:HEADER_BYTES], "length": header.length,
            "crc32": header.crc32, "version": list(header.version)}))
        return FlashSlot(slot, CHUNK_BYTES)

    def chunk(self, request: FlashChunk) -> FlashOffset:
        slot = self._free_slot()
        meta = self._meta(slot)
        if meta is None or meta["state"] != "receiving":
            raise OpError("no upload in progress: send flash_begin first")
        offset = within("offset", request.offset, 0, max(meta["length"] - 1, 0))
        data = request.data
        if offset % CHUNK_BYTES or len(data) != min(CHUNK_BYTES, meta["length"] - offset):
            raise OpError(f"chunk at {offset} of {len(data)} bytes does not fit "
                          f"{CHUNK_BYTES}-byte chunks of a {meta['length']}-byte image")
        if zlib.crc32(data) != request.crc32:
            raise OpError(f"chunk at {offset} fails its CRC32")
        self.nvm.nvm_write(f"slot.{slot}.data.{offset}", data)
        return FlashOffset(offset)

    def end(self, _: None) -> FlashEnded:
        slot = self._free_slot()
        meta = self._meta(slot)
        if meta is None or meta["state"] != "receiving":
            raise OpError("no upload in progress: send flash_begin first")
        payload = self._assemble(slot, meta["length"])
        if payload is None:
            raise OpError("chunks are missing: the upload is incomplete")
        if zlib.crc32(payload) != meta["crc32"]:
            raise OpError("the image fails its CRC32 as a whole; upload it again")
        self.nvm.nvm_write(f"slot.{slot}.meta", _seal({**meta, "state": "ready"}))
        return FlashEnded(slot, tuple(meta["version"]))

    def activate(self, _: None) -> FlashActivated:
        slot = self._free_slot()
        if not self._slot_ok(slot):
            raise OpError(f"slot {slot} holds no verified image: nothing to activate")
        record = self._record()
        assert record is not None
        self._write_record({**record, "pending": slot, "trial": True, "tries": 0})
        return FlashActivated(slot, rebooting=True)  # the server reboots after replying

    def confirm(self, _: None) -> Confirmed:
        record = self._record()
        assert record is not None
        if record.get("trial") and record.get("pending") == self.running:
            self._write_record({**record, "active": self.running, "pending": None,
                                "trial": False, "tries": 0})
        return Confirmed(self.running, confirmed=True)

    def info(self, _: None) -> BootInfo:
        record = self._record() or {}
        slots = {}
        for slot in SLOTS:
            meta = self._meta(slot)
            slots[slot] = (SlotState(meta["state"], ".".join(map(str, meta["version"])))
                           if meta else SlotState("empty"))
        return BootInfo(running=self.running, version=self.version,
                        boot_cause=self.boot_cause, trial=bool(record.get("trial")),
                        rolled_back=record.get("rolled_back"), slots=slots)

    def tick(self) -> bool:
        """Trial window: True when the board must reboot (and so roll back)."""
        record = self._record() or {}
        return bool(record.get("trial") and record.get("pending") == self.running
                    and self.nvm.uptime_s() > TRIAL_S)

    @property
    def version(self) -> str:
        meta = self._meta(self.running)
        return ".".join(map(str, meta["version"])) if meta else "unknown"

    # -- storage ----------------------------------------------------------------------

    def _record(self) -> dict[str, Any] | None:
        raw = (self.nvm.nvm_read("boot.0"), self.nvm.nvm_read("boot.1"))
        if self._cached is not None and self._cached[0] == raw:
            return self._cached[1]  # the same bytes as last time: checked once, not every tick
        copies = [_unseal(r) for r in raw]
        valid = [c for c in copies if c is not None and c.get("active") in SLOTS
                 and type(c.get("seq")) is int and c.get("pending") in (None, *SLOTS)
                 and type(c.get("tries", 0)) is int]
        record = max(valid, key=lambda c: c["seq"]) if valid else None
        self._cached = (raw, record)
        return record

    def _write_record(self, record: dict[str, Any]) -> None:
        copies = [_unseal(self.nvm.nvm_read(f"boot.{i}")) for i in (0, 1)]
        seqs = [c["seq"] if c and type(c.get("seq")) is int else -1 for c in copies]
        older = 0 if seqs[0] <= seqs[1] else 1
        self.nvm.nvm_write(f"boot.{older}", _seal({**record, "seq": max(seqs) + 1}))

    def _meta(self, slot: str) -> dict[str, Any] | None:
        meta = _unseal(self.nvm.nvm_read(f"slot.{slot}.meta"))
        if meta is None or not (meta.get("state") in ("receiving", "ready")
                                and type(meta.get("length")) is int and meta["length"] >= 0
                                and type(meta.get("crc32")) is int
                                and isinstance(meta.get("version"), list)):
            return None
        return meta

    def _assemble(self, slot: str, length: int) -> bytes | None:
        parts = []
        for offset in range(0, length, CHUNK_BYTES):
            part = self.nvm.nvm_read(f"slot.{slot}.data.{offset}")
            if part is None:
                return None
            parts.append(part)
        return b"".join(parts)[:length] if length else b""

    def _payload(self, slot: str) -> bytes:
        meta = self._meta(slot)
        return self._assemble(slot, meta["length"]) or b"" if meta else b""

    def _slot_ok(self, slot: str) -> bool:
        meta = self._meta(slot)
        if meta is None or meta["state"] != "ready":
            return False
        payload = self._assemble(slot, meta["length"])
        return payload is not None and zlib.crc32(payload) == meta["crc32"]

    def _write_slot(self, slot: str, image: bytes, header: Any) -> None:
        payload = image[HEADER_BYTES:]
        for offset in range(0, len(payload), CHUNK_BYTES):
            self.nvm.nvm_write(f"slot.{slot}.data.{offset}", payload[offset:offset + CHUNK_BYTES])
        self.nvm.nvm_write(f"slot.{slot}.meta", _seal({
            "state": "ready", "header": image[:HEADER_BYTES], "length": header.length,
            "crc32": header.crc32, "version": list(header.version)}))
