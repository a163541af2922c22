"""Durable file replacement, the one way every layer makes a write survive a power cut."""

from __future__ import annotations

import os
import re
from pathlib import Path

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TMP_SUFFIX = ".tmp"  # what replace_file writes first


def is_plain_name(name: str) -> bool:
    """A file name a store of files may use: no path in it, nothing hidden, and not
    one of replace_file's temporaries."""
    return bool(_PLAIN.fullmatch(name)) and not name.endswith(TMP_SUFFIX)


def fsync_directory(directory: str | Path) -> None:
    """Make a rename inside `directory` durable: its entry is only on disk once the
    directory itself is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that after a power cut the file holds the old bytes or
    the new ones: a temporary file, fsynced, renamed over it, the directory fsynced."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)
