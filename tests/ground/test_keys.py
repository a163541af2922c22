"""The ground's key file and its anti-replay counter, kept beside it across restarts."""

import os

import pytest

from ground.keys import signer_from_file
from hal.auth import KeyFile
from hal.errors import InputError


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
