"""Algorithm-based fault tolerance for GEMMs, exact because the operands are integers.

For C = A @ B with golden B, keep B's row sums s = B e and weighted row sums t = B w
(w = 1..m) from load time; then C e must equal A s and C w must equal A t. With golden
A, keep e^T A and w^T A; then e^T C must equal (e^T A) B and w^T C = (w^T A) B. All
values are integers below 2^53, so these sums are exact in float64 and the checks are
equalities, not tolerances.

What they catch:
- a weight hit in memory since the last scrub: C e - A s = A (B' - B) e, non-zero unless
  every row of A that meets the hit is zero, in which case C itself is unaffected;
- a logic upset in C: a flip in a high mantissa bit, the exponent or the sign moves an
  integer by an integer amount (or to inf/nan), which the plain sum sees; a flip low in
  the mantissa makes the entry non-integer, which the integrality check sees;
- two errors in one row that cancel in the plain sum (+d and -d) differ in the weighted
  sum, since their columns carry different weights.
Errors that cancel in both sums need three or more hits in one row with matched values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hal.compute import ComputeDevice


class ComputeFault(Exception):
    """A check found wrong data; `mechanism` names the check that found it."""

    mechanism = "abft"


class AbftMismatch(ComputeFault):
    mechanism = "abft"


@dataclass(frozen=True, slots=True)
class RightSums:
    """Checksums of a golden right operand B (n x m)."""

    plain: np.ndarray  # B e, shape (n,)
    weighted: np.ndarray  # B w, shape (n,)

    @classmethod
    def of(cls, b: np.ndarray) -> RightSums:
        w = np.arange(1, b.shape[1] + 1, dtype=np.float64)
        return cls(b.sum(axis=1), b @ w)


@dataclass(frozen=True, slots=True)
class LeftSums:
    """Checksums of a golden left operand A (k x n)."""

    plain: np.ndarray  # e^T A, shape (n,)
    weighted: np.ndarray  # w^T A, shape (n,)

    @classmethod
    def of(cls, a: np.ndarray) -> LeftSums:
        w = np.arange(1, a.shape[0] + 1, dtype=np.float64)
        return cls(a.sum(axis=0), w @ a)


def checked_gemm(device: ComputeDevice, a: np.ndarray, b: np.ndarray, *,
                 right: RightSums | None = None, left: LeftSums | None = None,
                 what: str = "gemm") -> np.ndarray:
    """a @ b on the device, checked. Without `right` the check is taken from b as it is
    now (it then vouches for the product, not for b). Raises AbftMismatch."""
    c = device.gemm(a, b)
    c += 0.0  # a sign flipped on a zero leaves -0.0: equal to 0.0, but not bit for bit
    if not np.array_equal(c, np.rint(c)):
        raise AbftMismatch(f"{what}: non-integer result (a low-order bit flipped)")
    r = right or RightSums.of(b)
    w_cols = np.arange(1, c.shape[1] + 1, dtype=np.float64)
    if not (np.array_equal(c.sum(axis=1), a @ r.plain)
            and np.array_equal(c @ w_cols, a @ r.weighted)):
        raise AbftMismatch(f"{what}: row checksums disagree")
    if left is not None:
        w_rows = np.arange(1, c.shape[0] + 1, dtype=np.float64)
        if not (np.array_equal(c.sum(axis=0), left.plain @ b)
                and np.array_equal(w_rows @ c, left.weighted @ b)):
            raise AbftMismatch(f"{what}: column checksums disagree")
    return c
