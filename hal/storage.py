"""Persistent storage for the flight software: named blobs, written atomically."""

from __future__ import annotations

from typing import Protocol

from hal.errors import SkyrackError


class StorageError(SkyrackError, OSError):
    """A stored item is missing or could not be read or written."""


class Storage(Protocol):
    """Named byte blobs. `write` is atomic: after a power cut a reader sees the old
    bytes or the new ones, never a mix."""

    def read(self, name: str) -> bytes:
        """The stored bytes. Raises StorageError if `name` is not stored."""
        ...

    def write(self, name: str, data: bytes) -> None:
        """Store `data` under `name`, replacing what was there, atomically and durably."""
        ...

    def delete(self, name: str) -> None:
        """Remove `name`; no error if it is not stored."""
        ...

    def names(self) -> list[str]:
        """Every stored name, sorted."""
        ...
