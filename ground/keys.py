"""The ground station's side of the key file: the key telecommands are signed with, and
the numbers a station must never take twice, kept beside the file in series files:
KEYS.counter-ID (the last anti-replay counter used with key ID) and KEYS.seq-SOURCE
(the last TC sequence count of ground source SOURCE).

A series file is read, advanced and replaced under an exclusive lock (KEYS.lock), so
any number of ground processes of one station can send at once: none reuses a counter
(the satellite would refuse its TC as replayed) or a sequence count (its verification
reports would reach the wrong sender), and a restarted ground goes on from where the
last one stopped."""

from __future__ import annotations

from ground.client import Signer
from ground.series import Series
from hal.auth import MAX_COUNTER, KeyFile
from hal.errors import InputError
from hal.spacepacket import SEQ_MODULO


def signer_from_file(path: str, key_id: int | None = None) -> Signer:
    """A Signer for key `key_id` of the key file at `path` (default: its active key),
    for the spacecraft the file is for, taking anti-replay counters from the file's
    series. Raises InputError for a key the file lacks or a series file that is
    damaged, OSError for a file that cannot be read."""
    keys = KeyFile.load(path)
    key_id = key_id or keys.active
    if key_id not in keys.keys:
        raise InputError(f"{path}: no key {key_id}")
    counter = Series(f"anti-replay counter of key {key_id}", MAX_COUNTER,
                     path=f"{path}.counter-{key_id}", lock=f"{path}.lock")
    return Signer(key_id, keys.keys[key_id], counter, spacecraft=keys.spacecraft)


def sequence_for(keys_path: str | None, source_id: int) -> Series:
    """The TC sequence counts of ground source `source_id`: kept beside the key file,
    shared by every ground process signing with it; in memory without one."""
    limit = SEQ_MODULO - 1
    if keys_path is None:
        return Series(f"sequence count of source {source_id}", limit, wrap=True, last=limit)
    return Series(f"sequence count of source {source_id}", limit, wrap=True, last=limit,
                  path=f"{keys_path}.seq-{source_id}", lock=f"{keys_path}.lock")

