"""Numbers a ground station must never take twice (anti-replay counters, TC sequence
counts), in memory or kept in a file that any number of ground processes share."""

from __future__ import annotations

import fcntl
from pathlib import Path

from hal.durable import replace_file
from hal.errors import InputError


class Series:
    """Numbers taken one at a time: 1, 2, ... up to `limit` (then exhausted), or, with
    `wrap`, modulo `limit` + 1. With a `path`, the last one taken is kept in that file
    and taken under `lock`'s flock; otherwise in memory."""

    def __init__(self, what: str, limit: int, *, wrap: bool = False, last: int = 0,
                 path: str | Path | None = None, lock: str | Path | None = None) -> None:
        self.what = what
        self.limit = limit
        self.wrap = wrap
        self.last = last
        self.path = Path(path) if path is not None else None
        self.lock = Path(lock) if lock is not None else None
        if self.path is not None:
            self.last = self._read()

    def take(self) -> int:
        if self.path is None:
            self.last = self._after(self.last)
            return self.last
        assert self.lock is not None
        with open(self.lock, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when closed
            value = self._after(self._read())
            replace_file(self.path, f"{value}\n".encode())  # before the TC goes
        self.last = value
        return value

    def _after(self, last: int) -> int:
        if self.wrap:
            return (last + 1) % (self.limit + 1)
        if last >= self.limit:
            raise InputError(f"{self.what} is exhausted: rotate the key")
        return last + 1

    def _read(self) -> int:
        assert self.path is not None
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return self.last
        if not text.isdigit() or int(text) > self.limit:
            raise InputError(f"{self.path} is damaged ({text[:24]!r}): it holds the last "
                             f"{self.what}; put back a value at or above the last one used")
        return int(text)
