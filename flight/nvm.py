"""What the flight computer keeps across reboots: named records in its storage.

Each record is kept as two copies, `NAME.a` and `NAME.b`, written one after the other,
each replaced atomically by the storage. A copy is sealed: magic, format version, the
record's own schema version, a sequence number, the msgpack body and a CRC32 over all
of it. Reading takes the valid copy with the highest sequence number; a body is then
checked field by field by the owner's `check`, since a CRC that checks out says only
that the bytes are the ones somebody wrote.

A copy that is missing is normal (nothing saved yet, or a cut between the two writes).
A copy that is damaged, of another version, or fails its check is a problem: it is
noted (and reported by the flight software as an event naming the file), and the other
copy is used and written over the damaged one, or the owner's defaults are used when
neither is good. `scrub()` reads the other records in storage the same way, a few at a
time and round robin, so that a record nobody reads at boot (a job's result) is checked
and repaired too. Nothing read here raises.

    copy: b"SKNV" | u16 format 1 | u16 schema | u32 sequence | u32 length | u8 name length
          | name | body | u32 CRC32

The name inside each copy means a copy of one record stored under another's name (a
swapped or misplaced file) is refused, not read as if it were that record.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack

from hal.errors import SkyrackError
from hal.storage import Storage, StorageError

MAGIC = b"SKNV"
FORMAT = 1
HEAD = struct.Struct(">4sHHII")
CRC = struct.Struct(">I")
COPIES = ("a", "b")
MAX_BODY_BYTES = 16 << 20  # no record of ours is near this; a larger length is damage

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    file: str  # the storage name of the copy
    reason: str
    fallback: str  # what was used instead: "the other copy" or "defaults"


class RecordError(SkyrackError, ValueError):
    """A stored copy that cannot be used; the message says why."""


def seal(name: str, value: Any, schema: int, sequence: int) -> bytes:
    body = msgpack.packb(value)
    label = name.encode()
    head = (HEAD.pack(MAGIC, FORMAT, schema, sequence, len(body))
            + bytes([len(label)]) + label + body)
    return head + CRC.pack(zlib.crc32(head))


def unseal(raw: bytes, name: str, schema: int | None) -> tuple[int, Any]:
    """(sequence, decoded body) of one copy of record `name`, of schema version `schema`
    (None: any). Raises RecordError."""
    if len(raw) < HEAD.size + 1 + CRC.size:
        raise RecordError(f"truncated ({len(raw)} bytes)")
    magic, fmt, version, sequence, length = HEAD.unpack_from(raw)
    if magic != MAGIC:
        raise RecordError(f"not a record (magic {magic!r})")
    label = raw[HEAD.size + 1:HEAD.size + 1 + raw[HEAD.size]]
    start = HEAD.size + 1 + len(label)
    if len(raw) != start + length + CRC.size or length > MAX_BODY_BYTES:
        raise RecordError(f"truncated or padded: {len(raw)} bytes, header says "
                          f"{start + length + CRC.size}")
    if zlib.crc32(raw[:-CRC.size]) != CRC.unpack_from(raw, len(raw) - CRC.size)[0]:
        raise RecordError("fails its CRC")
    if label != name.encode():
        raise RecordError(f"holds record {label.decode(errors='replace')!r}, not {name!r}")
    if fmt != FORMAT or (schema is not None and version != schema):
        raise RecordError(f"format {fmt} schema {version}; this software reads "
                          f"format {FORMAT} schema {schema}")
    try:
        return sequence, msgpack.unpackb(raw[start:-CRC.size], strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise RecordError(f"body does not decode: {e}") from None


class Records:
    """Records in one storage, with the problems met while loading them."""

    def __init__(self, storage: Storage | None) -> None:
        self.storage = storage
        self.problems: list[Problem] = []
        self._sequence: dict[str, int] = {}
        self._loaded: set[str] = set()  # by their owners, who check them
        self._unscrubbed: list[str] = []  # what this scrub pass has still to read
        self._lost: set[Problem] = set()

    def load(self, name: str, check: Callable[[Any], T], default: T,
             schema: int | None = 1) -> T:
        """The newest good copy of `name`, passed through `check` (which raises
        ValueError, TypeError or KeyError on a body it cannot use), else `default`."""
        if self.storage is None:
            return default
        self._loaded.add(name)
        good: list[tuple[int, T, bytes]] = []
        bad: list[tuple[str, str]] = []
        for copy in COPIES:
            file = f"{name}.{copy}"
            try:
                raw = self.storage.read(file)
            except OSError as e:
                if not isinstance(e, StorageError) or self._exists(file):
                    bad.append((file, f"cannot be read: {e}"))
                continue
            try:
                sequence, body = unseal(raw, name, schema)
                good.append((sequence, check(body), raw))
            except RecordError as e:
                bad.append((file, str(e)))
            except (ValueError, TypeError, KeyError, AttributeError, IndexError,
                    OverflowError) as e:
                bad.append((file, f"does not hold a valid {name} ({type(e).__name__}: {e})"))
        if good:
            sequence, value, raw = max(good, key=lambda g: g[0])
            self._sequence[name] = sequence
            for file, _ in bad:
                self._repair(file, raw)
        else:
            value = default
        for file, reason in bad:
            problem = Problem(file, reason, "the other copy" if good else "defaults")
            if problem not in self._lost:  # a lost copy is said once, not every pass
                self.problems.append(problem)
            if not good:
                self._lost.add(problem)
        return value

    def scrub(self, limit: int, new_pass: bool = True) -> int:
        """Read (and repair) up to `limit` records that no owner loads, round robin over
        the storage, so that records nobody reads at boot (job results) are checked
        too, a few at a time; `new_pass` says whether to start over once a pass is
        done. Returns how many were read."""
        if not self._unscrubbed and new_pass:
            self._unscrubbed = [n for n in self.names() if n not in self._loaded][::-1]
        done = 0
        while self._unscrubbed and done < limit:
            name = self._unscrubbed.pop()
            self.load(name, lambda body: body, None, None)
            self._loaded.discard(name)  # not an owner's: read again on the next pass
            done += 1
        return done

    @property
    def scrubbing(self) -> bool:
        """A scrub pass is under way."""
        return bool(self._unscrubbed)

    def _repair(self, file: str, raw: bytes) -> None:
        try:
            self.storage.write(file, raw)  # type: ignore[union-attr]
        except OSError:
            pass  # still damaged; read from the other copy again next boot

    def save(self, name: str, value: Any, schema: int = 1) -> None:
        """Both copies, one after the other: a cut between them leaves one new and one
        old, and the newer wins. Raises OSError (StorageError is one) when the storage
        refuses."""
        if self.storage is None:
            return
        if name not in self._sequence:
            self._sequence[name] = self._newest_sequence(name)
        self._sequence[name] += 1
        sealed = seal(name, value, schema, self._sequence[name] & 0xFFFFFFFF)
        for copy in COPIES:
            self.storage.write(f"{name}.{copy}", sealed)

    def names(self) -> list[str]:
        """The names of the records in storage."""
        if self.storage is None:
            return []
        try:
            files = self.storage.names()
        except OSError:
            return []
        return sorted({f.rsplit(".", 1)[0] for f in files
                       if f.rsplit(".", 1)[-1] in COPIES and "." in f})

    def take_problems(self) -> list[Problem]:
        out, self.problems = self.problems, []
        return out

    def _newest_sequence(self, name: str) -> int:
        best = 0
        for copy in COPIES:
            try:
                raw = self.storage.read(f"{name}.{copy}")  # type: ignore[union-attr]
                if len(raw) >= HEAD.size:
                    best = max(best, HEAD.unpack_from(raw)[3])
            except OSError:
                continue
        return best

    def _exists(self, file: str) -> bool:
        try:
            return file in self.storage.names()  # type: ignore[union-attr]
        except OSError:
            return True
