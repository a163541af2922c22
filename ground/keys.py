"""The ground's side of the key file: the key telecommands are signed with, and the
anti-replay counter kept beside the file (KEYS.counter-ID) so that a restarted ground
never signs with a counter it used before."""

from __future__ import annotations

import os

from ground.client import Signer
from hal.auth import MAX_COUNTER, KeyFile
from hal.durable import replace_file
from hal.errors import InputError


def signer_from_file(path: str, key_id: int | None = None) -> Signer:
    """A Signer for key `key_id` of the key file at `path` (default: its active key),
    starting after the last counter used with it. Raises InputError for a key the file
    lacks or a counter file that is damaged, OSError for a file that cannot be read."""
    keys = KeyFile.load(path)
    key_id = key_id or keys.active
    if key_id not in keys.keys:
        raise InputError(f"{path}: no key {key_id}")
    counter_path = f"{path}.counter-{key_id}"
    counter = 0
    if os.path.exists(counter_path):
        with open(counter_path) as f:
            text = f.read().strip()
        if not text.isdigit() or int(text) > MAX_COUNTER:
            raise InputError(f"{counter_path} is damaged ({text[:24]!r}): it holds the last "
                             f"anti-replay counter key {key_id} signed with; put back a "
                             "value at or above the last one used")
        counter = int(text)

    def save(value: int) -> None:  # before the TC goes: a crash never reuses a counter
        replace_file(counter_path, f"{value}\n".encode())

    return Signer(key_id, keys.keys[key_id], counter, save)
