"""Durable file replacement, the one way every layer makes a write survive a power cut."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: str | Path) -> None:
    """Make a rename inside `directory` durable: its entry is only on disk once the
    directory itself is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
