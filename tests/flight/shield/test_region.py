import numpy as np
import pytest

from flight.shield import ShieldedRegion, ShieldError

BLOCK = 4096
K = 8


def region(nbytes: int = BLOCK * K * 4 + 1000, seed: int = 1):
    data = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)
    return ShieldedRegion(data, block_bytes=BLOCK, stripe_blocks=K), data.copy()


def flip(r: ShieldedRegion, byte: int, bit: int) -> None:
    r._bytes()[byte] ^= np.uint8(1 << bit)


def test_a_clean_region_verifies_clean() -> None:
    r, _ = region()
    assert r.verify() == [] and r.bad_parity() == []
    assert r.nblocks == K * 4 + 1 and r.nstripes == 5


def test_random_single_bit_flips_are_found_and_repaired_exactly() -> None:
    rng = np.random.default_rng(11)
    r, golden = region()
    for _ in range(200):
        byte = int(rng.integers(0, r.nbytes))
        flip(r, byte, int(rng.integers(0, 8)))
        assert r.verify() == [byte // BLOCK]
        report = r.repair()
        assert report.ok and report.repaired == (byte // BLOCK,)
        assert np.array_equal(r._bytes(), golden)


def test_bursts_in_two_blocks_of_one_stripe_are_rebuilt() -> None:
    rng = np.random.default_rng(12)
    r, golden = region()
    for _ in range(50):
        stripe = int(rng.integers(0, 4))
        a, b = sorted(rng.choice(K, 2, replace=False) + stripe * K)
        for blk in (a, b):
            start = int(blk * BLOCK + rng.integers(0, BLOCK - 16))
            r._bytes()[start:start + 16] ^= rng.integers(1, 256, 16, dtype=np.uint8)
        assert r.verify() == [a, b]
        assert r.repair().repaired == (a, b)
        assert np.array_equal(r._bytes(), golden)


def test_the_short_last_block_is_protected_too() -> None:
    r, golden = region()
    flip(r, r.nbytes - 1, 3)
    assert r.verify() == [r.nblocks - 1]
    assert r.repair().ok and np.array_equal(r._bytes(), golden)


def test_a_hit_parity_block_is_rebuilt_and_a_data_loss_beside_it_still_heals() -> None:
    r, golden = region()
    r.parity[1, 0, 100] ^= 0xFF  # P of stripe 1
    flip(r, K * BLOCK + 5, 0)  # block K, in stripe 1
    assert r.bad_parity() == [(1, 0)]
    report = r.repair()
    assert report.repaired == (K,) and report.parity_rebuilt == (1,)
    assert r.bad_parity() == [] and np.array_equal(r._bytes(), golden)


def test_damage_beyond_the_code_is_reported_never_miscorrected() -> None:
    r, _ = region()
    for blk in (0, 1, 2):  # three lost in stripe 0
        flip(r, blk * BLOCK + 7, 1)
    damaged = r._bytes().copy()
    report = r.repair()
    assert not report.ok and report.uncorrectable == (0, 1, 2)
    assert np.array_equal(r._bytes(), damaged)  # left as it was
    assert r.verify() == [0, 1, 2]


def test_two_losses_with_a_hit_parity_are_uncorrectable() -> None:
    r, _ = region()
    r.parity[0, 1, 0] ^= 1  # Q of stripe 0
    flip(r, 0, 0)
    flip(r, BLOCK, 0)
    assert r.repair().uncorrectable == (0, 1)


def test_commit_takes_a_legitimate_write() -> None:
    r, golden = region()
    r._bytes()[BLOCK * 3:BLOCK * 3 + 10] = 42
    assert r.verify() == [3]
    assert r.commit([3]).ok
    assert r.verify() == []
    golden[BLOCK * 3:BLOCK * 3 + 10] = 42
    flip(r, BLOCK * 3 + 1, 0)  # the new bytes are protected
    assert r.repair().ok and np.array_equal(r._bytes(), golden)


def test_commit_repairs_a_hit_neighbour_instead_of_baking_it_into_parity() -> None:
    r, golden = region()
    flip(r, BLOCK * 5 + 9, 6)  # a hit in block 5, not yet scrubbed
    r._bytes()[BLOCK * 4:BLOCK * 5] = 7  # a legitimate write to block 4, same stripe
    golden[BLOCK * 4:BLOCK * 5] = 7
    report = r.commit([4])
    assert report.repaired == (5,)
    assert r.verify() == [] and np.array_equal(r._bytes(), golden)


def test_every_core_verifies_the_same_answer_as_one() -> None:
    data = np.random.default_rng(3).integers(0, 256, BLOCK * 1000, dtype=np.uint8)
    many = ShieldedRegion(data, block_bytes=BLOCK, threads=4)
    one = ShieldedRegion(data.copy(), block_bytes=BLOCK, threads=1)
    assert np.array_equal(many.crcs, one.crcs)
    for b in (0, 499, 500, 999):
        flip(many, b * BLOCK, 0)
    assert many.verify() == [0, 499, 500, 999]


@pytest.mark.parametrize("make,reason", [
    (lambda: ShieldedRegion(np.zeros(0, np.uint8)), "cannot be empty"),
    (lambda: ShieldedRegion(np.zeros(100, np.uint8), block_bytes=1000), "power of two"),
    (lambda: ShieldedRegion(np.zeros(100, np.uint8), block_bytes=32), "power of two >= 64"),
    (lambda: ShieldedRegion(np.zeros((10, 10))[:, ::2]), "C-contiguous"),
    (lambda: ShieldedRegion(np.array([object()] * 8)), "Python objects"),
    (lambda: ShieldedRegion(b"bytes are not an array"), "needs a numpy array"),
    (lambda: ShieldedRegion(np.zeros(100, np.uint8), stripe_blocks=300), "1..255"),
])
def test_bad_input_is_refused_with_the_reason(make, reason: str) -> None:
    with pytest.raises(ShieldError, match=reason):
        make()


def test_a_read_only_array_is_refused_and_block_indices_are_checked() -> None:
    ro = np.zeros(4096, np.uint8)
    ro.flags.writeable = False
    with pytest.raises(ShieldError, match="writable"):
        ShieldedRegion(ro)
    r, _ = region()
    with pytest.raises(ShieldError, match="block 99 is not in 0..32"):
        r.commit([99])


def test_a_partial_write_moves_parity_by_the_change_alone_to_what_a_re_encode_gives() -> None:
    rng = np.random.default_rng(11)
    for trial in range(60):
        r, _ = region(seed=trial)
        full = ShieldedRegion(r.array.copy(), block_bytes=BLOCK, stripe_blocks=K)
        blocks = sorted({int(b) for b in rng.integers(0, r.nblocks, int(rng.integers(1, 5)))})
        copies, bad = r.copy_for_write(blocks)
        assert bad == []
        # Copies are kept of blocks in stripes written in part (the short last stripe,
        # block 32 alone, is always written whole).
        assert set(copies) == {b for b in blocks if b < K * 4}
        for b in blocks:
            lo, hi = b * BLOCK, min((b + 1) * BLOCK, r.nbytes)
            new = rng.integers(0, 256, hi - lo, dtype=np.uint8)
            r._bytes()[lo:hi] = new
            full._bytes()[lo:hi] = new
        assert r.commit(blocks, copies).ok and full.commit(blocks).ok
        assert np.array_equal(r.parity, full.parity), trial
        assert np.array_equal(r.crcs, full.crcs)
        assert np.array_equal(r.parity_crcs, full.parity_crcs)
    golden = r._bytes().copy()
    flip(r, BLOCK * blocks[0] + 3, 2)  # what was written is protected as written
    assert r.repair().ok and np.array_equal(r._bytes(), golden)


def test_a_block_hit_before_the_write_is_named_and_not_copied() -> None:
    r, _ = region()
    flip(r, BLOCK * 2 + 5, 1)
    copies, bad = r.copy_for_write([1, 2])
    assert bad == [2] and set(copies) == {1}


def test_a_hit_parity_block_is_re_encoded_rather_than_moved_by_the_change() -> None:
    r, golden = region()
    copies, _ = r.copy_for_write([3])
    r.parity[0, 1, 17] ^= 4  # Q of stripe 0 hit before the commit
    r._bytes()[BLOCK * 3:BLOCK * 4] = 9
    golden[BLOCK * 3:BLOCK * 4] = 9
    assert r.commit([3], copies).ok
    assert r.bad_parity() == [] and r.verify() == []
    flip(r, BLOCK * 3 + 1, 0)  # both parities good again: the block still heals
    flip(r, BLOCK * 5 + 1, 0)
    assert r.repair().ok and np.array_equal(r._bytes(), golden)


def test_a_region_smaller_than_a_block_is_one_block_of_its_own_size() -> None:
    data = np.random.default_rng(3).integers(0, 256, 1000, dtype=np.uint8)
    r = ShieldedRegion(data, block_bytes=65536, stripe_blocks=16)
    assert r.block_bytes == 1024 and r.nblocks == 1 and r.parity.shape == (1, 2, 1024)
    golden = data.copy()
    flip(r, 999, 7)
    assert r.verify() == [0] and r.repair().ok and np.array_equal(r._bytes(), golden)


def test_a_stripe_written_whole_gets_the_crcs_and_parity_of_a_separate_pass() -> None:
    """Stripes written whole take their CRCs in the parity's read (sk_pq_encode_crc):
    every block's CRC is crc32c of its bytes (software path, the short last block
    too), P is the XOR of the stripe's blocks, and P and Q are what the encode alone
    gives; a stripe written in part beside them keeps the separate CRC pass."""
    from flight.shield import crc32c
    from flight.shield._kernel import ffi, lib

    rng = np.random.default_rng(5)
    r, _ = region(seed=3)
    for blocks in (range(0, 2 * K), range(K, r.nblocks), [0, 1, 2, K + 1], range(r.nblocks)):
        for b in blocks:
            lo, hi = b * BLOCK, min((b + 1) * BLOCK, r.nbytes)
            r._bytes()[lo:hi] = rng.integers(0, 256, hi - lo, dtype=np.uint8)
        assert r.commit(blocks).ok
        data = r._bytes()
        for b in range(r.nblocks):
            lo, hi = b * BLOCK, min((b + 1) * BLOCK, r.nbytes)
            assert r.crcs[b] == crc32c(data[lo:hi].tobytes(), hardware=False), b
        for s in range(r.nstripes):
            padded = np.zeros((K, BLOCK), np.uint8)
            chunk = data[s * K * BLOCK:(s + 1) * K * BLOCK]
            padded.reshape(-1)[:chunk.size] = chunk
            assert np.array_equal(r.parity[s, 0], np.bitwise_xor.reduce(padded)), s
            p, q = np.empty(BLOCK, np.uint8), np.empty(BLOCK, np.uint8)
            lib.sk_pq_encode(ffi.from_buffer("uint8_t[]", data), r.nbytes, BLOCK, K, s,
                             ffi.from_buffer("uint8_t[]", p), ffi.from_buffer("uint8_t[]", q))
            assert np.array_equal(r.parity[s, 0], p) and np.array_equal(r.parity[s, 1], q)
        assert r.verify() == [] and r.bad_parity() == []


def test_a_replacement_copied_and_encoded_in_one_read_is_a_fresh_region() -> None:
    """replace(values): the region holds values, and its CRCs and parity are those of a
    region made from them (the short last block too), so a later hit heals to them."""
    r, _ = region(seed=4)
    new = np.random.default_rng(6).integers(0, 256, r.nbytes, dtype=np.uint8)
    r.replace(new)
    fresh = ShieldedRegion(new.copy(), block_bytes=BLOCK, stripe_blocks=K)
    assert np.array_equal(r._bytes(), new)
    assert np.array_equal(r.crcs, fresh.crcs) and np.array_equal(r.parity, fresh.parity)
    assert np.array_equal(r.parity_crcs, fresh.parity_crcs)
    flip(r, 5, 3)
    flip(r, r.nbytes - 1, 0)
    assert r.repair().ok and np.array_equal(r._bytes(), new)
    with pytest.raises(ShieldError, match="must be uint8"):
        r.replace(new[:-1])
    with pytest.raises(ShieldError, match="cannot overlap"):
        r.replace(r.array)


def test_a_write_within_a_block_leaves_what_a_fresh_encode_of_the_region_gives() -> None:
    rng = np.random.default_rng(5)
    r, golden = region()
    for trial in range(80):
        block = int(rng.integers(0, r.nblocks))
        lo, hi = block * BLOCK, min((block + 1) * BLOCK, r.nbytes)
        # Any run of bytes: a word's tail, a block's end, the short last block's end.
        start = int(rng.integers(lo, hi))
        stop = int(rng.choice([hi, int(rng.integers(start + 1, hi + 1))]))
        new = rng.integers(0, 256, stop - start, dtype=np.uint8)
        assert r.within_block(start, stop) and r.write(start, new) == 0
        golden[start:stop] = new
        fresh = ShieldedRegion(golden.copy(), block_bytes=BLOCK, stripe_blocks=K)
        assert np.array_equal(r._bytes(), golden), trial
        assert np.array_equal(r.parity, fresh.parity) and np.array_equal(r.crcs, fresh.crcs)
        assert np.array_equal(r.parity_crcs, fresh.parity_crcs)
    flip(r, BLOCK * 9 + 7, 3)  # what was written is protected as written
    flip(r, BLOCK * 10 + 7, 3)
    assert r.repair().ok and np.array_equal(r._bytes(), golden)


def test_a_write_within_a_block_refuses_a_hit_block_a_hit_parity_and_a_range_across() -> None:
    r, golden = region()
    flip(r, BLOCK * 2 + 100, 1)
    assert r.write_check(BLOCK * 2, BLOCK * 2 + 8) == 1
    assert r.write(BLOCK * 2 + 8, np.zeros(8, np.uint8)) == 1
    assert r._bytes()[BLOCK * 2 + 8:BLOCK * 2 + 16].tolist() == golden[
        BLOCK * 2 + 8:BLOCK * 2 + 16].tolist()  # nothing written
    assert r.repair().ok and np.array_equal(r._bytes(), golden)
    r.parity[1, 0, 5] ^= 1  # P of stripe 1 hit
    assert r.write(BLOCK * (K + 1), np.ones(4, np.uint8)) == 2
    assert r.bad_parity() == [(1, 0)] and np.array_equal(r._bytes(), golden)
    assert not r.within_block(BLOCK - 4, BLOCK + 4)
    with pytest.raises(ShieldError, match="not within one block"):
        r.write(BLOCK - 4, np.ones(8, np.uint8))
    with pytest.raises(ShieldError, match="not within one block"):
        r.write_check(r.nbytes - 2, r.nbytes + 2)
