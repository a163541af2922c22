"""The ground's key file and its anti-replay counter, kept beside it across restarts."""

import multiprocessing
import os

import pytest

from ground.keys import sequence_for, signer_from_file
from hal.auth import KeyFile
from hal.errors import InputError
from hal.spacepacket import SEQ_MODULO


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "keys.json"
    KeyFile.generate().save_new(path)
    return str(path)


def test_a_restarted_ground_goes_on_after_the_last_counter_it_used(key_file) -> None:
    first = signer_from_file(key_file)
    assert [first.next_counter() for _ in range(3)] == [1, 2, 3]
    again = signer_from_file(key_file)
    assert again.next_counter() == 4
    other = signer_from_file(key_file, key_id=2)  # each key has its own counter
    assert other.next_counter() == 1


def test_a_damaged_counter_file_or_a_missing_key_is_refused_in_one_line(key_file) -> None:
    with open(f"{key_file}.counter-1", "w") as f:
        f.write("12x\n")
    with pytest.raises(InputError, match=r"counter-1 is damaged \('12x'\)"):
        signer_from_file(key_file)
    with pytest.raises(InputError, match="no key 9"):
        signer_from_file(key_file, key_id=9)


def test_a_key_file_others_can_read_or_write_is_refused(key_file) -> None:
    os.chmod(key_file, 0o644)
    with pytest.raises(InputError, match=r"keys.json: mode 0644 lets other users read or "
                       r"change the keys; chmod 600 it"):
        signer_from_file(key_file)
    os.chmod(key_file, 0o602)
    with pytest.raises(InputError, match="mode 0602"):
        KeyFile.load(key_file)
    os.chmod(key_file, 0o600)
    assert KeyFile.load(key_file).active == 1


def test_a_new_key_file_is_private_and_never_overwrites_one(tmp_path) -> None:
    path = tmp_path / "new.json"
    first = KeyFile.generate()
    first.save_new(path)
    assert os.stat(path).st_mode & 0o777 == 0o600 and KeyFile.load(path) == first
    with pytest.raises(FileExistsError):
        KeyFile.generate().save_new(path)
    assert KeyFile.load(path) == first


def _take(path: str, n: int, out) -> None:
    signer = signer_from_file(path)
    sequence = sequence_for(path, 3)
    out.put([(signer.next_counter(), sequence.take()) for _ in range(n)])


def test_ground_processes_sharing_a_key_file_never_take_one_number_twice(key_file) -> None:
    """Four processes at once, 50 TCs each: 200 distinct anti-replay counters and 200
    distinct sequence counts, and the files hold the last of each."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(key_file, 50, out)) for _ in range(4)]
    for p in procs:
        p.start()
    taken = [pair for _ in procs for pair in out.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    counters, sequences = zip(*taken, strict=True)
    assert sorted(counters) == list(range(1, 201))
    assert sorted(sequences) == list(range(0, 200))
    assert signer_from_file(key_file).next_counter() == 201
    assert sequence_for(key_file, 3).take() == 200
    assert sequence_for(key_file, 4).take() == 0  # another station's counts are its own


def test_sequence_counts_wrap_at_14_bits_and_need_no_key_file() -> None:
    sequence = sequence_for(None, 1)
    sequence.last = SEQ_MODULO - 2
    assert [sequence.take() for _ in range(3)] == [SEQ_MODULO - 1, 0, 1]
