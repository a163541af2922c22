"""The text the transformer learns from: the flight software's own source, carried
with it (a wheel and a clone both have it), read in a fixed order. Nothing is fetched;
the bytes are those of this build, so a run is reproducible against the same build."""

from __future__ import annotations

import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the flight package


@functools.lru_cache(maxsize=8)
def corpus(limit_bytes: int) -> bytes:
    """Up to `limit_bytes` of the flight package's Python source, file by file in path
    order, each file's text once (the corpus repeats from the start when it is short)."""
    files = sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)
    text = b"".join(p.read_bytes() for p in files)
    if not text:
        return b""
    return (text * (limit_bytes // len(text) + 1))[:limit_bytes]
