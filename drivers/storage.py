"""Storage on a file system: one file per name, replaced atomically and durably."""

from __future__ import annotations

from pathlib import Path

from hal.durable import TMP_SUFFIX, is_plain_name, replace_file
from hal.storage import StorageError


class DirectoryStorage:
    """hal.storage.Storage in a directory. A write goes to a temporary file that is
    fsynced and renamed over the old one, then the directory is fsynced, so a power
    cut leaves the old bytes or the new ones."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        if not is_plain_name(name):
            raise StorageError(f"invalid storage name {name!r}: use letters, digits, '.', '_', '-'")
        return self.root / name

    def read(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"{name!r} is not stored in {self.root}") from None

    def write(self, name: str, data: bytes) -> None:
        replace_file(self._path(name), data)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_file() and not p.name.endswith(TMP_SUFFIX))
