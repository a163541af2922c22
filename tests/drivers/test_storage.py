import pytest

from drivers.storage import DirectoryStorage
from hal.storage import StorageError


def test_write_read_replace_delete(tmp_path) -> None:
    store = DirectoryStorage(tmp_path / "nv")
    store.write("params.msgpack", b"one")
    store.write("params.msgpack", b"two")
    store.write("log-0001", b"")
    assert store.read("params.msgpack") == b"two"
    assert store.names() == ["log-0001", "params.msgpack"]
    store.delete("log-0001")
    store.delete("log-0001")  # already gone: no error
    assert store.names() == ["params.msgpack"]


def test_a_leftover_temporary_from_a_power_cut_is_not_an_item(tmp_path) -> None:
    store = DirectoryStorage(tmp_path)
    store.write("a", b"old")
    (tmp_path / "a.tmp").write_bytes(b"half-writ")  # cut before the rename
    assert store.read("a") == b"old" and store.names() == ["a"]
    store.write("a", b"new")
    assert store.read("a") == b"new"


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x.tmp", "a" * 200])
def test_bad_names_are_refused(tmp_path, name: str) -> None:
    with pytest.raises(StorageError, match="invalid storage name"):
        DirectoryStorage(tmp_path).write(name, b"x")


def test_reading_a_missing_item_says_so(tmp_path) -> None:
    with pytest.raises(StorageError, match="'nothing' is not stored"):
        DirectoryStorage(tmp_path).read("nothing")
