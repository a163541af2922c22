import numpy as np
import pytest

from flight.shield import CheckpointError, CheckpointStore, PowerCut, ShieldedRegion, ShieldError
from flight.shield.checkpoint import CUT

BLOCK = 4096


def weights(seed: int = 1, n: int = 200_000) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


def test_round_trip_keeps_names_dtypes_shapes_and_metadata(tmp_path) -> None:
    w = weights().reshape(400, 500)
    counts = np.arange(7, dtype=np.int64)
    store = CheckpointStore(tmp_path)
    saved = store.save({"w": ShieldedRegion(w, block_bytes=BLOCK), "counts": counts},
                       {"job": "mlp", "step": 12})
    assert (saved.slot, saved.generation) == ("A", 0)
    got = store.restore()
    assert got.slot == "A" and got.metadata == {"job": "mlp", "step": 12}
    assert got.arrays["w"].shape == (400, 500) and got.arrays["w"].dtype == np.float32
    assert np.array_equal(got.arrays["w"], w) and np.array_equal(got.arrays["counts"], counts)
    assert got.rejected == {"B": "no checkpoint written yet"}


def test_saves_alternate_slots_and_write_only_blocks_whose_crc_changed(tmp_path) -> None:
    w = weights()
    region = ShieldedRegion(w, block_bytes=BLOCK)
    store = CheckpointStore(tmp_path)
    full = store.save({"w": region})
    assert full.blocks_written == region.nblocks
    assert store.save({"w": region}).slot == "B"  # B was empty: written in full
    w[5] = 1.0
    w[100_000] = 2.0
    region.commit([0, 100_000 * 4 // BLOCK])
    third = store.save({"w": region}, {"step": 3})
    assert (third.slot, third.blocks_written) == ("A", 2)
    assert third.bytes_written == 2 * BLOCK
    got = store.restore()
    assert got.generation == 2 and np.array_equal(got.arrays["w"], w)


def three_generations(tmp_path, hook=None):
    """Generations 0 (A) and 1 (B) saved cleanly, and generation 2 committed in memory:
    blocks 0 and 150 changed, so against slot A it is dirty in two runs (0-98, 150)."""
    w = weights()
    region = ShieldedRegion(w, block_bytes=BLOCK)
    store = CheckpointStore(tmp_path)
    store.save({"w": region}, {"step": 0})
    w[: len(w) // 2] += 1.0  # half the blocks change
    region.commit(range(region.nblocks // 2 + 1))
    gen1 = w.copy()
    store.save({"w": region}, {"step": 1})
    w[0] += 1.0
    w[150 * BLOCK // 4] += 1.0
    region.commit([0, 150])
    store.crash_hook = hook
    return store, region, gen1, w.copy()


@pytest.mark.parametrize("step,run", [
    ("record.invalidate", 1), ("data.write", 1), ("data.write", 2), ("data.fsync", 1),
    ("record.write", 1), ("record.fsync", 1), ("record.rename", 1), ("dir.fsync", 1),
])
def test_a_power_cut_at_any_step_leaves_a_good_checkpoint(tmp_path, step, run) -> None:
    calls = []

    def hook(at: str) -> None:
        calls.append(at)
        if at == step and calls.count(at) == run:
            raise PowerCut(at)

    store, region, gen1, gen2 = three_generations(tmp_path, hook)
    with pytest.raises(PowerCut):
        store.save({"w": region}, {"step": 2})
    store.crash_hook = None
    got = store.restore()
    if step == "dir.fsync":  # the new record was already in place
        assert got.generation == 2 and np.array_equal(got.arrays["w"], gen2)
    else:
        assert got.generation == 1 and got.metadata == {"step": 1}
        assert np.array_equal(got.arrays["w"], gen1)
        # The cut save took slot A's record away before touching its data, so A claims
        # nothing it does not hold, and the next save into it is written in full.
        if step != "record.invalidate":
            assert got.rejected == {"A": CUT} and not got.fell_back
            again = store.save({"w": region}, {"step": 2})
            assert (again.slot, again.blocks_written) == ("A", region.nblocks)
            assert np.array_equal(store.restore().arrays["w"], gen2)


def test_a_save_after_a_cut_save_is_never_lost(tmp_path) -> None:
    """The cut save overwrote blocks 0-98 of slot A. The next save into A brings block 5
    back to what A's old record says: a save that trusted that record would skip block
    5, leave the cut save's bytes there and "succeed" with data that fails its CRC."""
    cuts = iter([False, True])  # the second run of the first save into A is cut

    def hook(at: str) -> None:
        if at == "data.write" and next(cuts, False):
            raise PowerCut(at)

    original = weights()
    store, region, _, _ = three_generations(tmp_path, hook)
    with pytest.raises(PowerCut):
        store.save({"w": region}, {"step": 2})
    store.crash_hook = None
    w = region.array
    block5 = slice(5 * BLOCK // 4, 6 * BLOCK // 4)
    w[block5] = original[block5]
    region.commit([5])
    store.save({"w": region}, {"step": 3})  # into A again
    got = store.restore()
    assert (got.slot, got.metadata) == ("A", {"step": 3}) and np.array_equal(got.arrays["w"], w)


def test_a_checkpoint_of_another_owner_is_refused(tmp_path) -> None:
    CheckpointStore(tmp_path, owner="job 1 aaaa").save({"x": np.ones(10)}, {"step": 5})
    mine = CheckpointStore(tmp_path, owner="job 1 bbbb")
    with pytest.raises(CheckpointError, match="slot-a.commit belongs to 'job 1 aaaa', "
                                              "not 'job 1 bbbb'"):
        mine.restore()
    mine.save({"x": np.zeros(10)}, {"step": 1})  # into B; A is not this owner's to use
    got = mine.restore()
    assert got.slot == "B" and got.fell_back and not got.arrays["x"].any()
    full = mine.save({"x": np.zeros(10)}, {"step": 2})  # over A: nothing of A's trusted
    assert (full.slot, full.blocks_written) == ("A", 1)


def test_a_flipped_bit_in_the_newest_data_falls_back_and_says_why(tmp_path) -> None:
    store, region, gen1, _ = three_generations(tmp_path)
    store.save({"w": region}, {"step": 2})  # generation 2, slot A
    path = tmp_path / "slot-a.data"
    raw = bytearray(path.read_bytes())
    raw[3 * BLOCK + 17] ^= 0x10
    path.write_bytes(bytes(raw))
    got = store.restore()
    assert (got.slot, got.generation) == ("B", 1) and np.array_equal(got.arrays["w"], gen1)
    assert got.rejected == {"A": "buffer 'w': block 3 fails its CRC"}


def test_a_flipped_bit_in_the_newest_record_falls_back(tmp_path) -> None:
    store, region, _, _ = three_generations(tmp_path)
    store.save({"w": region}, {"step": 2})
    path = tmp_path / "slot-a.commit"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    got = store.restore()
    assert got.slot == "B" and got.rejected == {"A": "slot-a.commit fails its CRC"}


@pytest.mark.parametrize("victim,cut,reason", [
    ("slot-a.data", 1000, "slot-a.data is truncated"),
    ("slot-a.commit", 5, "slot-a.commit is truncated (5 bytes)"),
    ("slot-a.commit", 40, "slot-a.commit is truncated: 40 bytes"),
])
def test_a_truncated_file_is_rejected_with_the_reason(tmp_path, victim, cut, reason) -> None:
    store, region, _, _ = three_generations(tmp_path)
    store.save({"w": region}, {"step": 2})
    path = tmp_path / victim
    path.write_bytes(path.read_bytes()[:cut])
    got = store.restore()
    assert got.slot == "B" and got.rejected["A"].startswith(reason)


def test_no_usable_checkpoint_is_a_clear_error(tmp_path) -> None:
    store = CheckpointStore(tmp_path)
    with pytest.raises(CheckpointError, match="no valid checkpoint .* slot A: no checkpoint "
                                              "written yet; slot B: no checkpoint written yet"):
        store.restore()
    store.save({"x": np.ones(10)})
    (tmp_path / "slot-a.data").unlink()
    with pytest.raises(CheckpointError, match="slot A: slot-a.data is missing"):
        store.restore()


def test_a_hit_since_the_last_commit_is_repaired_before_it_is_checkpointed(tmp_path) -> None:
    w = weights()
    region = ShieldedRegion(w, block_bytes=BLOCK)
    golden = w.copy()
    region.array.view(np.uint8)[10] ^= 0x40  # an upset in block 0
    store = CheckpointStore(tmp_path)
    store.save({"w": region})
    assert np.array_equal(store.restore().arrays["w"], golden)


def test_unrepairable_damage_refuses_the_save_and_keeps_the_old_checkpoint(tmp_path) -> None:
    w = weights()
    region = ShieldedRegion(w, block_bytes=BLOCK, stripe_blocks=4)
    store = CheckpointStore(tmp_path)
    store.save({"w": region}, "good")
    for b in (0, 1, 2):
        w[b * BLOCK // 4] += 1.0
    region.commit([0, 1, 2])
    for b in (0, 1, 2):  # three hits in one stripe
        region.array.view(np.uint8)[b * BLOCK + 1] ^= 1
    with pytest.raises(CheckpointError, match=r"blocks \[0, 1, 2\] fail their CRC"):
        store.save({"w": region})
    assert store.restore().metadata == "good"


def test_a_changed_layout_is_written_in_full(tmp_path) -> None:
    store = CheckpointStore(tmp_path)
    store.save({"a": np.ones(100)})
    store.save({"a": np.ones(100)})
    got = store.save({"a": np.zeros(5000), "b": np.arange(3)})
    assert got.bytes_written == 5000 * 8 + 3 * 8
    restored = store.restore()
    assert set(restored.arrays) == {"a", "b"} and not restored.arrays["a"].any()


@pytest.mark.parametrize("buffers,metadata,reason", [
    ({}, None, "no buffers given"),
    ({"": np.ones(3)}, None, "non-empty strings"),
    ({"x": np.ones(0)}, None, "is empty"),
    ({"x": [1, 2, 3]}, None, "not a ShieldedRegion or numpy array"),
    ({"x": np.ones((4, 4))[:, ::2]}, None, "C-contiguous"),
    ({"x": np.ones(3)}, {"f": object()}, "cannot be stored as msgpack"),
])
def test_bad_input_is_refused_with_the_reason(tmp_path, buffers, metadata, reason) -> None:
    with pytest.raises(ShieldError, match=reason):  # CheckpointError is one
        CheckpointStore(tmp_path).save(buffers, metadata)


def test_a_lone_truncated_checkpoint_is_a_clear_error(tmp_path) -> None:
    store = CheckpointStore(tmp_path)
    store.save({"x": np.arange(50_000.0)})
    data = tmp_path / "slot-a.data"
    data.write_bytes(data.read_bytes()[:1234])
    with pytest.raises(CheckpointError, match="slot A: slot-a.data is truncated: 1234 bytes, "
                                              "needs 400000; slot B: no checkpoint written yet"):
        store.restore()


def test_a_sweep_of_damage_to_every_checkpoint_file_never_restores_wrong_data(tmp_path) -> None:
    """Bit flips at seeded offsets, truncations, swapped and foreign files in either
    slot's record and data: restore gives a generation whose data is exactly what was
    saved, or a CheckpointError; never an exception of another kind, never wrong data."""
    import random
    import shutil

    store, region, gen1, _ = three_generations(tmp_path / "base")
    store.save({"w": region}, {"step": 2})
    saved = {1: gen1, 2: region.array.copy()}
    base = tmp_path / "base"
    files = {p.name: p.read_bytes() for p in base.iterdir()}
    rng = random.Random(11)
    damages = []
    for name, data in sorted(files.items()):
        for offset in rng.sample(range(len(data)), min(len(data), 40)):
            flipped = bytearray(data)
            flipped[offset] ^= 1 << rng.randrange(8)
            damages.append((name, bytes(flipped)))
        damages += [(name, data[:rng.randrange(len(data))]), (name, b""),
                    (name, b"not a checkpoint at all\n" * 3),
                    (name, files[name.replace("-a.", "-x.").replace("-b.", "-a.")
                                 .replace("-x.", "-b.")])]  # the other slot's file
    outcomes = {"newest": 0, "fell_back": 0, "none": 0}
    for name, bad in damages:
        trial = tmp_path / "trial"
        shutil.rmtree(trial, ignore_errors=True)
        shutil.copytree(base, trial)
        (trial / name).write_bytes(bad)
        try:
            got = CheckpointStore(trial).restore()
        except CheckpointError:
            outcomes["none"] += 1
            continue
        step = got.metadata["step"]
        assert np.array_equal(got.arrays["w"], saved[step]), (name, step)
        outcomes["newest" if step == 2 else "fell_back"] += 1
    assert outcomes["none"] == 0, outcomes  # one file damaged: the other slot stands
    assert outcomes["fell_back"] > 50 and outcomes["newest"] > 50, outcomes
