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

import functools
from dataclasses import dataclass

import numpy as np

from flight.shield import abft_scan
from hal.compute import ComputeDevice
from hal.errors import SkyrackError


class ComputeFault(SkyrackError):
    """A check found wrong data; `mechanism` names the check that found it."""

    mechanism = "abft"


class AbftMismatch(ComputeFault):
    mechanism = "abft"


@dataclass(frozen=True, slots=True)
class RightSums:
    """Checksums of a golden right operand B (n x m): B e and B w side by side (n x 2)."""

    both: np.ndarray

    @classmethod
    def of(cls, b: np.ndarray) -> RightSums:
        return cls(b @ _pair(b.shape[1]))


@dataclass(frozen=True, slots=True)
class LeftSums:
    """Checksums of a golden left operand A (k x n): e^T A over w^T A (2 x n)."""

    both: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray) -> LeftSums:
        return cls(_pair(a.shape[0]).T @ a)


def checked_gemm(device: ComputeDevice, a: np.ndarray, b: np.ndarray, *,
                 right: RightSums | None = None, left: LeftSums | None = None,
                 what: str = "gemm") -> np.ndarray:
    """a @ b on the device, checked. Without `right` the check is taken from b as it is
    now (it then vouches for the product, not for b). Raises AbftMismatch."""
    c = device.gemm(a, b)
    # One vectorised pass: integrality, -0.0 made 0.0 (a sign flipped on a zero is equal,
    # but not bit for bit), and for a golden left operand the column sums.
    scan = abft_scan(c, columns=left is not None)
    if scan.non_integer:
        raise AbftMismatch(f"{what}: {scan.non_integer} non-integer results "
                           "(a low-order bit flipped)")
    r = right or RightSums.of(b)
    # Plain and weighted sums travel in pairs: one BLAS call reads each operand once.
    if not np.array_equal(c @ _pair(c.shape[1]), a @ r.both):
        raise AbftMismatch(f"{what}: row checksums disagree")
    if left is not None and scan.col_sum is not None and scan.col_wsum is not None \
            and not np.array_equal(np.stack([scan.col_sum, scan.col_wsum]), left.both @ b):
        raise AbftMismatch(f"{what}: column checksums disagree")
    return c


@functools.lru_cache(maxsize=64)
def _pair(n: int) -> np.ndarray:
    """e and w = 1..n side by side (n x 2), read-only."""
    w = np.ones((n, 2))
    w[:, 1] = np.arange(1, n + 1)
    w.flags.writeable = False
    return w
