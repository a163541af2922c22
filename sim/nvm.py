"""A board's non-volatile memory in a directory, so that it outlives the process that
serves the board (`skyrack board serve --nvm DIR`): kill that process, start it again,
and the board boots from what it had written, as a real board boots from its flash.

Each key is a file, replaced atomically (temp + fsync + rename + directory fsync): a
kill or a power cut leaves the old bytes or the new ones, as a flash page write does.
"""

from __future__ import annotations

from pathlib import Path

from hal.durable import is_plain_name, replace_file


class DirectoryNvm:
    """The part of a mapping the board platform uses: `get` and item assignment."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not is_plain_name(key):
            raise ValueError(f"NVM key {key!r} is not a plain name")
        return self.root / key

    def get(self, key: str, default: bytes | None = None) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return default

    def __setitem__(self, key: str, data: bytes) -> None:
        replace_file(self._path(key), bytes(data))
