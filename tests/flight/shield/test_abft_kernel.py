"""The small-product check kernel against numpy: a product of integers passes, any one
changed entry, a pair that cancels in the plain sum, a low-order bit and a hit in a
non-committed b are caught; the batch, the committed-sums and the large-k paths agree."""

import numpy as np
import pytest

from flight.shield import ShieldError, abft_product


def ints(rng, shape):
    return rng.integers(-127, 128, shape).astype(np.float64)


def sums_of(b):
    return np.stack([b.sum(axis=-1), b @ np.arange(1, b.shape[-1] + 1.0)], axis=-1)


@pytest.mark.parametrize("shape", [((1, 384), (384, 1152)), ((6, 1, 64), (6, 64, 200)),
                                   ((2, 3, 1500), (2, 1500, 7))])  # k > 1024: heap sums
def test_a_true_product_passes_and_every_kind_of_damage_is_caught(shape) -> None:
    rng = np.random.default_rng(1)
    a, b = ints(rng, shape[0]), ints(rng, shape[1])
    c = a @ b
    assert abft_product(a, b, None, c.copy()) == (0, 0)
    # b's sums taken at its commit: one for all (a weight) or one for each member (the
    # heads of a KV cache); sums that b no longer matches fail the product.
    assert abft_product(a, None, sums_of(b), c.copy()) == (0, 0)
    stale = sums_of(b)
    stale.reshape(-1)[-1] += 1.0
    # (the last member's last weighted sum: every row of it whose last entry of a is not 0)
    last = a.reshape(-1, *a.shape[-2:])[-1, :, -1]
    assert abft_product(a, None, stale, c.copy())[1] == np.count_nonzero(last) > 0
    flat = c.reshape(-1, c.shape[-1])
    one = c.copy()
    one.reshape(-1, c.shape[-1])[flat.shape[0] - 1, 3] += 1.0
    assert abft_product(a, b, None, one) == (0, 1)
    pair = c.copy()  # cancels in the plain sum, not in the weighted one
    pair.reshape(-1, c.shape[-1])[0, 1] += 8.0
    pair.reshape(-1, c.shape[-1])[0, 2] -= 8.0
    assert abft_product(a, b, None, pair) == (0, 1)
    low = c.copy()
    low.reshape(-1).view(np.uint64)[5] ^= np.uint64(1)
    assert abft_product(a, b, None, low)[0] == 1
    hit_b = b.copy()  # b as it is now vouches for the product alone: a hit b disagrees
    hit_b.reshape(-1)[0] += 2.0
    assert abft_product(a, hit_b, None, c.copy())[1] >= 1


def test_minus_zero_is_made_zero_and_bad_arguments_are_refused() -> None:
    a, b = np.zeros((1, 4)), np.zeros((4, 3))
    c = np.full((1, 3), -0.0)
    assert abft_product(a, b, None, c) == (0, 0)
    assert not np.signbit(c).any()
    with pytest.raises(ShieldError, match="abft_product needs"):
        abft_product(a, b, sums_of(b), c)  # b and its sums: one or the other
    with pytest.raises(ShieldError, match="abft_product needs"):
        abft_product(a, None, np.zeros((3, 2)), c)  # sums for another k
    with pytest.raises(ShieldError, match="abft_product needs"):
        abft_product(a.astype(np.float32), b, None, c)
    with pytest.raises(ShieldError, match="abft_product needs"):
        abft_product(a, b, None, np.zeros((1, 6))[:, ::2])  # not C-contiguous


def test_a_product_that_carries_its_own_checksums_passes_and_any_damage_is_caught() -> None:
    from flight.compute.abft import with_sums
    from flight.shield import abft_appended
    rng = np.random.default_rng(2)
    w = with_sums(ints(rng, (384, 1152)))
    for rows in (1, 4):
        a = ints(rng, (rows, 384))
        c = a @ w
        assert abft_appended(c.copy()) == (0, 0)
        for entry, delta in ((5, 1.0), (1152, 1.0), (1153, -1.0)):  # a product, B e, B w
            hit = c.copy()
            hit[rows - 1, entry] += delta
            assert abft_appended(hit) == (0, 1)
        pair = c.copy()
        pair[0, 10] += 4.0
        pair[0, 11] -= 4.0
        assert abft_appended(pair) == (0, 1)
        low = c.copy()
        low.reshape(-1).view(np.uint64)[7] ^= np.uint64(1)
        assert abft_appended(low)[0] == 1
    with pytest.raises(ShieldError, match="abft_appended needs"):
        abft_appended(np.zeros((2, 1)))
