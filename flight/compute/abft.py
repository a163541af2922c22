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

Float32 GEMMs round, so their checks cannot be equalities. `checked_float_gemm` holds
them to a bound instead: for C = A @ B (k the inner dimension) and each block of b
columns of C, with u = 2^-24 and g(n) = n u / (1 - n u),

    | fl(C) e_b - fl(A fl(B e_b)) | <= (2 g(k) + g(b) + g(k) g(b)) P + g(b) Q

where P = |A| |B| e_b and Q = |fl(C)| e_b. The four terms are the GEMM's own rounding
(|fl(AB) - AB| <= g(k) |A||B|, whatever the order of summation or FMA), the block sum
of C, the block sum of B and the product of A with it (Higham, Accuracy and Stability
of Numerical Algorithms, 3.5). It holds for any result the arithmetic can give, so a
fault-free GEMM never fails it, and anything that moves a block sum further is a fault:
an exponent or sign flip, or a high mantissa bit, in C or in a weight since its sums
were taken. Smaller flips pass, and change the result by less than the bound: benign
deviations, counted as such by the campaign. Most blocks are cleared by a cheaper
bound first: |A fl(B e_b)| <= P and |fl(C) e_b| <= Q, up to rounding, so only a block
that fails with those lower bounds pays for |A| |B| and |C|.
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


U32 = 2.0 ** -24  # the unit roundoff of float32
TINY32 = 2.0 ** -149  # float32's smallest subnormal: what an underflow can lose
CHECK_BLOCK = 64  # columns of C a checksum covers


def _gamma(n: int) -> float:
    return n * U32 / (1.0 - n * U32)


@dataclass(frozen=True, slots=True)
class FloatRightSums:
    """Block sums of a float32 right operand B (..., k, n): B e_b for each block of
    CHECK_BLOCK columns (..., k, blocks), and |B| e_b beside them when asked for."""

    sums: np.ndarray
    n: int
    abs_sums: np.ndarray | None = None

    @classmethod
    def of(cls, b: np.ndarray, *, with_abs: bool = False) -> FloatRightSums:
        return cls(_block_sums(b), b.shape[-1], _block_sums(np.abs(b)) if with_abs else None)


def _block_sums(x: np.ndarray) -> np.ndarray:
    """Sums over blocks of CHECK_BLOCK along the last axis (the last block may be short)."""
    n = x.shape[-1]
    full = n - n % CHECK_BLOCK
    blocks = []
    if full:
        blocks.append(np.einsum("...j->...", x[..., :full].reshape(
            *x.shape[:-1], full // CHECK_BLOCK, CHECK_BLOCK)))
    if full < n:
        blocks.append(x[..., full:].sum(-1, keepdims=True))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=-1)


def _bound_terms(k: int, block: int) -> tuple[float, float, float]:
    """(the factor of P, the factor of Q, the underflow floor) of the bound."""
    gk, gb = _gamma(k), _gamma(block)
    return 2 * gk + gb + gk * gb, gb, (k * block + k + block) * TINY32


def float_gemm_bound(a: np.ndarray, b: np.ndarray, c: np.ndarray,
                     right: FloatRightSums | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(|fl(C) e_b - fl(A fl(B e_b))|, the bound it must stay within), per row and block,
    both float64, with P and Q computed in full for every block. The sums of B are
    `right`'s when given (taken when B was committed, so that B hit since then shows),
    else B's as it is now."""
    sums = right.sums if right is not None else _block_sums(b)
    abs_sums = right.abs_sums if right is not None and right.abs_sums is not None \
        else _block_sums(np.abs(b))
    k, block = a.shape[-1], min(CHECK_BLOCK, c.shape[-1])
    fp, fq, floor = _bound_terms(k, block)
    gk, gb = _gamma(k), _gamma(block)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(_block_sums(c).astype(np.float64)
                   - np.matmul(a, sums).astype(np.float64))
        p = np.matmul(np.abs(a), abs_sums).astype(np.float64) / ((1 - gk) * (1 - gb))
        q = _block_sums(np.abs(c)).astype(np.float64) / (1 - gb)
    return d, (fp * p + fq * q + floor) * (1 + 1e-9)


def checked_float_gemm(device: ComputeDevice, a: np.ndarray, b: np.ndarray, *,
                       right: FloatRightSums | None = None, what: str = "gemm") -> np.ndarray:
    """a @ b in float32 on the device, held to the bound above. Without `right` the sums
    are taken from b as it is now (they then vouch for the product, not for b).
    Raises AbftMismatch."""
    c = device.gemm(a, b)
    k, block = a.shape[-1], min(CHECK_BLOCK, c.shape[-1])
    fp, fq, floor = _bound_terms(k, block)
    gk, gb = _gamma(k), _gamma(block)
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.matmul(a, right.sums if right is not None else _block_sums(b))
        s = _block_sums(c)
        d = np.abs(s.astype(np.float64) - t)
        low = fp * np.abs(t) / ((1 + gk) * (1 + gb)) + fq * np.abs(s) / (1 + gb)
        suspect = ~(d <= low) | ~np.isfinite(low)  # NaN is suspect
        if not suspect.any():
            return c
        # Only the suspect blocks pay for P and Q in full.
        *batch, rows, blocks = np.nonzero(suspect)
        abs_sums = right.abs_sums if right is not None and right.abs_sums is not None \
            else _block_sums(np.abs(b))
        a_rows = np.abs(a[(*batch, rows)]).astype(np.float64)
        p = np.einsum("ik,ik->i", a_rows,
                      np.swapaxes(abs_sums, -1, -2)[(*batch, blocks)].astype(np.float64))
        q = _block_sums(np.abs(c[(*batch, rows)]))[np.arange(rows.size), blocks]
        bound = (fp * p / ((1 - gk) * (1 - gb)) + fq * q.astype(np.float64) / (1 - gb)
                 + floor) * (1 + 1e-9)
        dev = d[suspect]
        bad = ~(dev <= bound) | ~np.isfinite(bound)  # an inf in C makes its bound inf
    if bad.any():
        raise AbftMismatch(f"{what}: {int(bad.sum())} block checksum(s) outside the float32 "
                           f"rounding bound (worst {float(np.nanmax(np.where(bad, dev, 0))):.3g})")
    return c


@functools.lru_cache(maxsize=64)
def _pair(n: int) -> np.ndarray:
    """e and w = 1..n side by side (n x 2), read-only."""
    w = np.ones((n, 2))
    w[:, 1] = np.arange(1, n + 1)
    w.flags.writeable = False
    return w
