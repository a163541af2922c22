"""Checkpoints that survive a power cut at any instant.

Two slots, A and B, each a data file and a commit record. A save brings the older slot
up to date in place, then replaces its commit record; the newer slot is never touched,
so whatever instant the power goes, one slot still holds a complete checkpoint.

Incremental: a slot's commit record keeps the CRC32C of every block it holds. A save
writes only the blocks whose current CRC (the same table the scrubber keeps) differs
from the slot's, in runs, with pwrite. Before a block goes to disk its bytes are checked
against that CRC, so a bit flipped since the last commit is repaired or refused, never
checkpointed.

A commit record is only ever a true statement about its data file: before the first
byte of a slot's data changes, its record is removed (and the removal made durable).
So a save cut midway leaves a slot with no record, and the next save into it writes
every block, rather than trusting CRCs of blocks that the cut save half overwrote.

Order of a save: remove the slot's record, fsync the directory; data blocks, fsync
data; commit record to a temporary file, fsync, rename over the slot's record, fsync
the directory. Every section is CRC-protected: the data block by block (CRCs in the
record), the record as a whole (a trailer).

Every checkpoint names its owner (for a compute job: its id and a digest of workload,
parameters and seed), and a store restores only its own owner's checkpoints.

Commit record: b"SKCK", u16 version, u32 body length, msgpack body, u32 CRC32C of all
that precedes it (little-endian).
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from flight.shield._kernel import ffi, lib
from flight.shield.kernel import ShieldError, byte_view
from flight.shield.region import DEFAULT_BLOCK_BYTES, ShieldedRegion
from hal.durable import fsync_directory

MAGIC = b"SKCK"
VERSION = 2  # 2: the record names its owner
HEADER = struct.Struct("<4sHI")
TRAILER = struct.Struct("<I")
SLOTS = ("a", "b")
ALIGN_BYTES = 4096
EMPTY = "no checkpoint written yet"
CUT = "no commit record: the last save into it was cut short"
# Where a save can be cut; "data.write" comes before each run of blocks, so more than once.
STEPS = ("record.invalidate", "data.write", "data.fsync", "record.write", "record.fsync",
         "record.rename", "dir.fsync")


class CheckpointError(ShieldError):
    """No checkpoint could be written or restored; the message says why, and `rejected`
    (at restore) each slot's reason."""

    def __init__(self, message: str, rejected: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.rejected = rejected or {}


def unusable(rejected: dict[str, str]) -> list[str]:
    """What among `rejected` was a checkpoint and could not be used (damaged, or another
    owner's), as "slot X: why"; an empty slot, or one whose save was cut, is no loss."""
    return [f"slot {slot}: {why}" for slot, why in sorted(rejected.items())
            if why not in (EMPTY, CUT)]


class PowerCut(Exception):  # noqa: N818 - what it simulates, not a programming error
    """Raised by a crash hook to stop a save between two steps, as a power cut would."""


@dataclass(frozen=True, slots=True)
class Saved:
    slot: str
    generation: int
    blocks_written: int
    bytes_written: int


@dataclass(frozen=True, slots=True)
class Restored:
    slot: str
    generation: int
    arrays: dict[str, np.ndarray]
    metadata: Any
    # Why each slot newer than the one used (or unreadable) was rejected; an older slot
    # is never read once a newer one checks out.
    rejected: dict[str, str] = field(default_factory=dict)

    @property
    def fell_back(self) -> bool:
        """A slot held a checkpoint that was damaged or not this owner's, so an older
        one (or none) was used; an empty slot, or one whose save was cut, is no loss."""
        return bool(unusable(self.rejected))


@dataclass(frozen=True, slots=True)
class _Layout:
    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    block_bytes: int


class CheckpointStore:
    """A/B checkpoints of named buffers in one directory.

    `owner` names whose checkpoints these are; a record written for another owner is
    refused at restore. `crash_hook(step)` runs before each step of a save (see STEPS);
    tests make it raise PowerCut to stop a save exactly there.
    """

    def __init__(self, directory: str | Path, *, owner: str = "",
                 crash_hook: Callable[[str], None] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.owner = owner
        self.crash_hook = crash_hook

    # -- saving ---------------------------------------------------------------------

    def save(self, buffers: Mapping[str, ShieldedRegion | np.ndarray],
             metadata: Any = None) -> Saved:
        """Checkpoint `buffers` (regions or arrays, by name) and msgpack-able `metadata`."""
        if not buffers:
            raise CheckpointError("nothing to checkpoint: no buffers given")
        try:
            packed_metadata = msgpack.packb(metadata)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"metadata cannot be stored as msgpack: {e}") from None
        sources = {name: self._source(name, buf) for name, buf in buffers.items()}
        layouts = self._layout(sources)
        records = {slot: self._read_record(slot) for slot in SLOTS}
        generations = {s: r["generation"] if isinstance(r, dict) else -1
                       for s, r in records.items()}
        slot = min(SLOTS, key=lambda s: (generations[s], s))  # the older (or empty) one
        generation = max(generations.values()) + 1
        found = records[slot]
        old = found if isinstance(found, dict) else None
        same_layout = (old is not None and old["owner"] == self.owner
                       and old["layout"] == [_layout_doc(x) for x in layouts])
        self._invalidate(slot)  # from here until the new record, the slot claims nothing

        blocks = bytes_out = 0
        data_path = self._data_path(slot)
        fd = os.open(data_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            total = layouts[-1].offset + layouts[-1].nbytes
            if not same_layout:
                os.ftruncate(fd, 0)
            os.ftruncate(fd, total)
            for layout in layouts:
                region, crcs = sources[layout.name]
                previous = (np.frombuffer(old["crcs"][layout.name], dtype=np.uint32)
                            if same_layout and old is not None else None)
                n, nbytes = self._write_dirty(fd, layout, region, crcs, previous)
                blocks += n
                bytes_out += nbytes
            self._step("data.fsync")
            os.fsync(fd)
        finally:
            os.close(fd)

        body = msgpack.packb({
            "generation": generation,
            "owner": self.owner,
            "layout": [_layout_doc(x) for x in layouts],
            "crcs": {name: crcs.tobytes() for name, (_, crcs) in sources.items()},
            "metadata": packed_metadata,
        })
        head = HEADER.pack(MAGIC, VERSION, len(body)) + body
        record = head + TRAILER.pack(_crc(head))
        self._write_record(slot, record)
        return Saved(slot.upper(), generation, blocks, bytes_out)

    def _source(self, name: Any, buf: Any) -> tuple[ShieldedRegion | _Plain, np.ndarray]:
        """(the buffer's bytes, its block CRC table)."""
        if not isinstance(name, str) or not name:
            raise CheckpointError(f"buffer names must be non-empty strings, got {name!r}")
        if isinstance(buf, ShieldedRegion):
            return buf, buf.crcs.copy()
        if isinstance(buf, np.ndarray):
            byte_view(buf, f"buffer {name!r}")
            if buf.nbytes == 0:
                raise CheckpointError(f"buffer {name!r} is empty")
            region = _Plain(buf)
            return region, region.crcs
        raise CheckpointError(f"buffer {name!r} is a {type(buf).__name__}, "
                              "not a ShieldedRegion or numpy array")

    def _layout(self, sources: dict[str, Any]) -> list[_Layout]:
        layouts, offset = [], 0
        for name, (region, _) in sources.items():
            a = region.array
            layouts.append(_Layout(name, a.dtype.str, tuple(a.shape), offset, a.nbytes,
                                   region.block_bytes))
            offset += -(-a.nbytes // ALIGN_BYTES) * ALIGN_BYTES
        return layouts

    def _write_dirty(self, fd: int, layout: _Layout, region: Any, crcs: np.ndarray,
                     previous: np.ndarray | None) -> tuple[int, int]:
        dirty = np.arange(len(crcs)) if previous is None else np.flatnonzero(crcs != previous)
        if len(dirty) == 0:
            return 0, 0
        data = region.array.reshape(-1).view(np.uint8)
        block = layout.block_bytes
        self._check_before_writing(layout.name, region, crcs, dirty)
        written = 0
        # Runs of consecutive dirty blocks go out in one pwrite each.
        breaks = np.flatnonzero(np.diff(dirty) != 1) + 1
        for run in np.split(dirty, breaks):
            self._step("data.write")
            start = int(run[0]) * block
            end = min((int(run[-1]) + 1) * block, layout.nbytes)
            view = memoryview(data[start:end])
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], layout.offset + start + done)
            written += end - start
        return len(dirty), written

    def _check_before_writing(self, name: str, region: Any, crcs: np.ndarray,
                              dirty: np.ndarray) -> None:
        bad = region.bad_among(dirty)
        if bad and isinstance(region, ShieldedRegion):
            report = region.repair(bad)
            bad = list(report.uncorrectable)
        if bad:
            raise CheckpointError(f"buffer {name!r}: blocks {bad[:8]} fail their CRC and "
                                  "cannot be repaired; refusing to checkpoint damaged data")

    def _invalidate(self, slot: str) -> None:
        path = self._record_path(slot)
        if not path.exists():
            return
        self._step("record.invalidate")
        path.unlink()
        fsync_directory(self.directory)

    def _write_record(self, slot: str, record: bytes) -> None:
        path = self._record_path(slot)
        tmp = path.with_name(path.name + ".tmp")
        self._step("record.write")
        with open(tmp, "wb") as f:
            f.write(record)
            f.flush()
            self._step("record.fsync")
            os.fsync(f.fileno())
        self._step("record.rename")
        os.replace(tmp, path)
        self._step("dir.fsync")
        fsync_directory(self.directory)

    def _step(self, step: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(step)

    # -- restoring ------------------------------------------------------------------

    def restore(self) -> Restored:
        """The newest checkpoint whose every CRC checks out, which slot it came from, and
        why any newer or unreadable slot was rejected. Raises CheckpointError when none
        is usable, with every slot's reason."""
        rejected: dict[str, str] = {}
        candidates = []
        for slot in SLOTS:
            record = self._read_record(slot)
            if isinstance(record, str):
                rejected[slot.upper()] = record
            elif record["owner"] != self.owner:
                rejected[slot.upper()] = (f"slot-{slot}.commit belongs to {record['owner']!r}, "
                                          f"not {self.owner!r}")
            else:
                candidates.append((record["generation"], slot, record))
        for generation, slot, record in sorted(candidates, reverse=True):
            try:
                arrays = self._read_data(slot, record)
            except CheckpointError as e:
                rejected[slot.upper()] = str(e)
                continue
            return Restored(slot.upper(), generation, arrays,
                            msgpack.unpackb(record["metadata"]), rejected)
        reasons = "; ".join(f"slot {s}: {why}" for s, why in sorted(rejected.items()))
        raise CheckpointError(f"no valid checkpoint in {self.directory}: {reasons}", rejected)

    def _read_record(self, slot: str) -> dict[str, Any] | str:
        """The slot's commit record, or the reason it is unusable."""
        path = self._record_path(slot)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return CUT if self._data_path(slot).exists() else EMPTY
        except OSError as e:
            return f"cannot read {path.name}: {e.strerror}"
        if len(raw) < HEADER.size + TRAILER.size:
            return f"{path.name} is truncated ({len(raw)} bytes)"
        magic, version, length = HEADER.unpack_from(raw)
        if magic != MAGIC:
            return f"{path.name} is not a checkpoint record (magic {magic!r})"
        if version != VERSION:
            return f"{path.name} has version {version}; this software reads {VERSION}"
        if len(raw) != HEADER.size + length + TRAILER.size:
            return (f"{path.name} is truncated: {len(raw)} bytes, "
                    f"header says {HEADER.size + length + TRAILER.size}")
        (stored,) = TRAILER.unpack_from(raw, len(raw) - TRAILER.size)
        if _crc(raw[:-TRAILER.size]) != stored:
            return f"{path.name} fails its CRC"
        try:
            return _checked_record(msgpack.unpackb(raw[HEADER.size:-TRAILER.size]))
        except (ValueError, KeyError, TypeError, msgpack.UnpackException) as e:
            return f"{path.name} has a malformed body: {e}"

    def _read_data(self, slot: str, record: dict[str, Any]) -> dict[str, np.ndarray]:
        path = self._data_path(slot)
        try:
            raw = np.fromfile(path, dtype=np.uint8)
        except FileNotFoundError:
            raise CheckpointError(f"{path.name} is missing") from None
        layouts = [_Layout(**{**x, "shape": tuple(x["shape"])}) for x in record["layout"]]
        need = layouts[-1].offset + layouts[-1].nbytes
        if raw.nbytes < need:
            raise CheckpointError(f"{path.name} is truncated: {raw.nbytes} bytes, "
                                  f"needs {need}")
        arrays = {}
        for x in layouts:
            data = raw[x.offset:x.offset + x.nbytes]
            table = np.frombuffer(record["crcs"][x.name], dtype=np.uint32)
            got = _block_crcs(data, x.block_bytes)
            if len(got) != len(table):
                raise CheckpointError(f"buffer {x.name!r}: CRC table has {len(table)} "
                                      f"entries for {len(got)} blocks")
            bad = np.flatnonzero(got != table)
            if len(bad):
                raise CheckpointError(f"buffer {x.name!r}: block {int(bad[0])} fails its CRC"
                                      f"{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}")
            arrays[x.name] = data.view(np.dtype(x.dtype)).reshape(x.shape)
        return arrays

    def _data_path(self, slot: str) -> Path:
        return self.directory / f"slot-{slot}.data"

    def _record_path(self, slot: str) -> Path:
        return self.directory / f"slot-{slot}.commit"


class _Plain:
    """A bare array seen through the same face a ShieldedRegion shows the checkpointer."""

    def __init__(self, array: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        self.array = np.ascontiguousarray(array)
        self.block_bytes = block_bytes
        self.crcs = _block_crcs(self.array.reshape(-1).view(np.uint8), block_bytes)

    def bad_among(self, blocks: np.ndarray) -> list[int]:
        return []  # its CRCs were taken just now, from these very bytes


def _checked_record(body: Any) -> dict[str, Any]:
    """A decoded record body, every field of the type the restore path relies on (its
    CRC checked out, but a record is still input: it may have been written by anyone).
    Raises ValueError, TypeError or KeyError."""
    if not isinstance(body, dict):
        raise TypeError("not a map")
    generation, owner, metadata = body["generation"], body["owner"], body["metadata"]
    if not (isinstance(generation, int) and generation >= 0 and isinstance(owner, str)
            and isinstance(metadata, bytes)):
        raise TypeError("generation, owner or metadata of the wrong type")
    msgpack.unpackb(metadata)
    layouts, end = [], 0
    for doc in body["layout"]:
        x = _Layout(name=doc["name"], dtype=doc["dtype"], shape=tuple(doc["shape"]),
                    offset=doc["offset"], nbytes=doc["nbytes"], block_bytes=doc["block_bytes"])
        if not isinstance(x.dtype, str):
            raise TypeError(f"dtype {x.dtype!r} is not a string")
        dtype = np.dtype(x.dtype)
        if not (isinstance(x.name, str) and all(isinstance(d, int) and d >= 0 for d in x.shape)
                and isinstance(x.offset, int) and x.offset >= end
                and x.nbytes == dtype.itemsize * math.prod(x.shape) > 0
                and isinstance(x.block_bytes, int) and x.block_bytes > 0 and not dtype.hasobject
                and isinstance(body["crcs"][x.name], bytes)
                and len(body["crcs"][x.name]) == 4 * -(-x.nbytes // x.block_bytes)):
            raise ValueError(f"layout of {x.name!r} is inconsistent")
        end = x.offset + x.nbytes
        layouts.append(_layout_doc(x))
    if not layouts:
        raise ValueError("no buffers")
    return {**body, "layout": layouts}


def _layout_doc(x: _Layout) -> dict[str, Any]:
    return {"name": x.name, "dtype": x.dtype, "shape": list(x.shape), "offset": x.offset,
            "nbytes": x.nbytes, "block_bytes": x.block_bytes}


def _crc(data: bytes) -> int:
    return int(lib.sk_crc32c(0, ffi.from_buffer("uint8_t[]", data), len(data), 1))


def _block_crcs(data: np.ndarray, block_bytes: int) -> np.ndarray:
    count = -(-data.nbytes // block_bytes)
    out = np.empty(count, dtype=np.uint32)
    lib.sk_crc_blocks(ffi.from_buffer("uint8_t[]", data), data.nbytes, block_bytes, 0, count,
                      ffi.from_buffer("uint32_t[]", out), 1)
    return out
