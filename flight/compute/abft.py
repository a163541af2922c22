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

where P = |A| |B| e_b and Q = |fl(C)| e_b <= (1 + g(k)) P. The four terms are the
GEMM's own rounding (|fl(AB) - AB| <= g(k) |A||B|, whatever the order of summation or
FMA), the block sum of C, the block sum of B and the product of A with it (Higham,
Accuracy and Stability of Numerical Algorithms, 3.5). It holds for any result the
arithmetic can give, so a fault-free GEMM never fails it, and anything that moves a
block sum further is a fault: an exponent or sign flip, or a high mantissa bit, in C
or in a weight since its sums were taken. Smaller flips pass, and change the result by
less than the bound: benign deviations, counted as such by the campaign.

A product is first cleared, if it can be, by lower bounds of the bound that come from
the same pass over C: with t = fl(A fl(B e_b)) and q = fl(|fl(C)| e_b),
P >= max(|t|, q) / ((1 + g(k)) (1 + g(b))) (|A x| <= |A| |x|, and each |fl(c)| <=
(1 + g(k)) (|A| |B|) entrywise) and Q >= q / (1 + g(b)). Only a block these cannot clear
pays for |A| |B| e_b in full. q reads C, so a hit of size d in C (or in a weight, through
the products it enters) raises its block's cleared bound by at most (fp + fq) |d|,
about 2 (k + b) u |d|: what passes is within 1 / (1 - 2 (k + b) u) of what the full
bound lets through (within 1 % for k + b <= 80 000).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from flight.shield import (
    abft_appended,
    abft_product,
    abft_scan,
    float_block_check,
    float_block_sums,
)
from hal.compute import ComputeDevice
from hal.errors import SkyrackError


class ComputeFault(SkyrackError):
    """A check found wrong data; `mechanism` names the check that found it."""

    mechanism = "abft"


# Products of at most this many entries are scanned and row-checked in one kernel call:
# below it the BLAS and numpy calls of the general path cost more than the arithmetic.
FUSED_MAX = 1 << 16


class AbftMismatch(ComputeFault):
    mechanism = "abft"


class Deferred:
    """Checks held back until a step's work is done, then run before anything the step
    made is committed. Between two memory-bound GEMMs a check is a cold call (its code
    and data evicted by the weights streaming past: ~15 us for what takes 3 us warm);
    held back, a step's checks run together, warm. A step that defers lets an
    intermediate that a check would have stopped flow on to the end of the step: it
    must not act on anything outside itself before it commits (a generation step,
    whose every effect is its state update, does not). What a held check reads must
    not change before it runs; abft_scan's -0.0 -> 0.0 then comes after the product was
    used, which a generation's tokens do not see (a zero's sign changes no sum, no
    quantized value and no argmax)."""

    __slots__ = ("_checks",)

    def __init__(self) -> None:
        self._checks: list[tuple[Callable[..., None], tuple[Any, ...]]] = []

    def add(self, check: Callable[..., None], *args: Any) -> None:
        """Hold check(*args), which raises a ComputeFault when what it checks is wrong."""
        self._checks.append((check, args))

    def run(self) -> None:
        """Every check held, in order; the first that fails raises. Nothing is held after.
        (A plain loop: gathering them into one kernel call cost more Python, a few us an
        entry, than the calls it saved.)"""
        checks, self._checks = self._checks, []
        for check, args in checks:
            check(*args)


Check = bool | Deferred  # a check runs now (True), is held in a Deferred, or is not made


def verify(check: Check, fn: Callable[..., None], *args: Any) -> None:
    """fn(*args), a check that raises on what it finds wrong, as `check` says."""
    if isinstance(check, Deferred):
        check.add(fn, *args)
    elif check:
        fn(*args)


@dataclass(frozen=True, slots=True)
class RightSums:
    """Checksums of a golden right operand B (..., n x m): B e and B w side by side
    (..., n x 2)."""

    both: np.ndarray

    @classmethod
    def of(cls, b: np.ndarray) -> RightSums:
        return cls(b @ sum_weights(b.shape[-1]))


@dataclass(frozen=True, slots=True)
class AppendedSums:
    """Says that a golden right operand carries its own row checksums as its last two
    columns, B' = [B | B e | B w] (`with_sums`, when it is committed): a @ B' then holds
    the product's wanted row checksums in its last two columns, made by the GEMM itself
    while a is in its registers, and the check is one pass over the product's rows
    (Huang and Abraham's checksum matrix). The product handed back is a @ B, a view."""


APPENDED = AppendedSums()


def with_sums(b: np.ndarray) -> np.ndarray:
    """[B | B e | B w] for an integer-valued float64 B (k x m): AppendedSums' operand."""
    return np.concatenate([b, b @ sum_weights(b.shape[-1])], axis=-1)


@dataclass(frozen=True, slots=True)
class AppendedRows:
    """Says that a golden left operand carries its column checksums as its last two rows,
    A' = [A; e^T A; w^T A] (`with_column_sums`, when it is loaded): A' @ b then holds the
    wanted column checksums of A @ b in its last two rows, made by the GEMM itself from
    b as it streams past, and the check is one scan of the product (integrality and its
    column sums) against them. It vouches for the product and for A; b is the caller's
    to vouch for (a CRC-checked state or activation). The product handed back is A @ b, a view."""


APPENDED_ROWS = AppendedRows()


def with_column_sums(a: np.ndarray) -> np.ndarray:
    """[A; e^T A; w^T A] for an integer-valued float64 A (k x n): AppendedRows' operand."""
    return np.concatenate([a, sum_weights(a.shape[0]).T @ a], axis=0)


def checked_gemm(device: ComputeDevice, a: np.ndarray, b: np.ndarray, *,
                 right: RightSums | AppendedSums | None = None,
                 left: AppendedRows | None = None, what: str = "gemm",
                 later: Deferred | None = None) -> np.ndarray:
    """a @ b on the device, checked. With `right` (sums of b taken when b was committed)
    the row checksums vouch for the product and for b. Without, the row checksums are
    taken from b as it is now and vouch for the product alone. With APPENDED, b is
    [B | B e | B w] and a @ B comes back (see AppendedSums); with APPENDED_ROWS, a is
    [A; e^T A; w^T A] and A @ b comes back (see AppendedRows). Raises AbftMismatch.
    With `later`, the check of an appended product or of one small enough for one kernel
    call is held there instead (Deferred)."""
    c = device.gemm(a, b)
    if isinstance(right, AppendedSums):
        if left is not None:
            raise ValueError(f"{what}: appended row checksums take no column checksums")
        verify(later or True, _check_appended, c, what)
        return c[..., :-2]
    if isinstance(left, AppendedRows):
        if right is not None or c.ndim != 2 or c.shape[0] < 3:
            raise ValueError(f"{what}: appended column checksums are for 2-D products "
                             f"without row checksums, got {c.shape}")
        verify(later or True, _check_appended_rows, c, what)
        return c[:-2]
    if c.size <= FUSED_MAX and (right is None or right.both.ndim == 2
                                or right.both.shape[:-2] == a.shape[:-2]):
        # A GEMV or a few rows: scan, b's sums (unless taken at its commit), the wanted
        # row sums and the comparison in one kernel call.
        verify(later or True, _check_product, a, None if right else b,
               right.both if right else None, c, what)
        return c
    flat = c.reshape(-1, c.shape[-1])  # a batch of products (heads leading) as rows
    # Plain and weighted sums travel in pairs (one BLAS call).
    want = a @ (right or RightSums.of(b)).both
    # One vectorised pass: integrality, and -0.0 made 0.0 (a sign flipped on a zero is
    # equal, but not bit for bit).
    scan = abft_scan(flat)
    _fail_on(what, scan.non_integer,
             not np.array_equal(c @ sum_weights(c.shape[-1]), want))
    return c


def _check_appended(c: np.ndarray, what: str) -> None:
    non_integer, rows_off = abft_appended(c)
    _fail_on(what, non_integer, bool(rows_off))


def _check_appended_rows(c: np.ndarray, what: str) -> None:
    scan = abft_scan(c[:-2], columns=True)
    _fail_on(what, scan.non_integer, False)
    if scan.col_sum is None or scan.col_wsum is None \
            or not (np.array_equal(scan.col_sum, c[-2]) and np.array_equal(scan.col_wsum, c[-1])):
        raise AbftMismatch(f"{what}: column checksums disagree")


def _check_product(a: np.ndarray, b: np.ndarray | None, sums: np.ndarray | None,
                   c: np.ndarray, what: str) -> None:
    non_integer, rows_off = abft_product(a, b, sums, c)
    _fail_on(what, non_integer, bool(rows_off))


def _fail_on(what: str, non_integer: int, rows_off: bool) -> None:
    """AbftMismatch for an integer product's check that found entries not integers (a
    low-order bit flipped) or rows whose checksums disagree."""
    if non_integer:
        raise AbftMismatch(f"{what}: {non_integer} non-integer results "
                           "(a low-order bit flipped)")
    if rows_off:
        raise AbftMismatch(f"{what}: row checksums disagree")


U32 = 2.0 ** -24  # the unit roundoff of float32
TINY32 = 2.0 ** -149  # float32's smallest subnormal: what an underflow can lose
CHECK_BLOCK = 64  # columns of C a checksum covers


def _gamma(n: int) -> float:
    return n * U32 / (1.0 - n * U32)


@dataclass(frozen=True, slots=True)
class FloatRightSums:
    """Block sums of a float32 right operand B (..., k, n): B e_b for each block of
    CHECK_BLOCK columns (..., k, nb), so that one product with A gives A B e_b."""

    sums: np.ndarray

    @classmethod
    def of(cls, b: np.ndarray) -> FloatRightSums:
        sums = float_block_sums(b, CHECK_BLOCK) if b.dtype == np.float32 else None
        return cls(_block_sums(b) if sums is None else sums)  # None: a layout it does not take


def _block_sums(x: np.ndarray) -> np.ndarray:
    """Sums over blocks of CHECK_BLOCK along the last axis (the last block may be short)."""
    n = x.shape[-1]
    full = n - n % CHECK_BLOCK
    if x.ndim == 2 and not x.flags.c_contiguous and x.T.flags.c_contiguous:
        # A transposed matrix (W^T of a weight W): sum W's rows in blocks, in its order.
        w = x.T
        parts = []
        if full:
            parts.append(np.einsum("bjn->bn", w[:full].reshape(full // CHECK_BLOCK,
                                                             CHECK_BLOCK, -1)))
        if full < n:
            parts.append(w[full:].sum(axis=0, keepdims=True))
        return np.ascontiguousarray((parts[0] if len(parts) == 1 else np.concatenate(parts)).T)
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
    both float64, with P computed in full for every block (the slow path). The sums of
    B are `right`'s when given (taken when B was committed, so that B hit since then
    shows), else B's as it is now."""
    sums = right.sums if right is not None else _block_sums(b)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(_block_sums(c).astype(np.float64)
                   - np.matmul(a, sums).astype(np.float64))
    return d, _bound(a, b, c)


def _bound(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The bound for every row and block, from |B| as it is now (a weight hit since its
    sums were taken moves C's block sums by far more than it moves P). Q is bounded
    through P: |fl(AB)| <= (1 + g(k)) |A||B| entry by entry, so Q <= (1 + g(k)) P, and C
    need not be read again (a C hit beyond its rounding is what is being looked for, so
    it may not raise its own bound)."""
    abs_sums = _block_sums(np.abs(b))
    k, block = a.shape[-1], min(CHECK_BLOCK, c.shape[-1])
    fp, fq, floor = _bound_terms(k, block)
    gk, gb = _gamma(k), _gamma(block)
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.matmul(np.abs(a), abs_sums).astype(np.float64) / ((1 - gk) * (1 - gb))
    return ((fp + fq * (1 + gk)) * p + floor) * (1 + 1e-9)


def checked_float_gemm(device: ComputeDevice, a: np.ndarray, b: np.ndarray, *,
                       right: FloatRightSums | None = None, what: str = "gemm") -> np.ndarray:
    """a @ b in float32 on the device, held to the bound above. Without `right` the sums
    are taken from b as it is now (they then vouch for the product, not for b).
    Raises AbftMismatch."""
    c = device.gemm(a, b)
    k, block = a.shape[-1], min(CHECK_BLOCK, c.shape[-1])
    fp, fq, _ = _bound_terms(k, block)
    gk, gb = _gamma(k), _gamma(block)
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.matmul(a, (right or FloatRightSums.of(b)).sums)
        # One pass over C in the kernel: its block sums against the lower bounds (NaN
        # and an infinite bound are suspect). Only a block that fails costs the full P.
        if c.dtype == np.float32 and t.dtype == np.float32 and float_block_check(
                c, t, CHECK_BLOCK, fp / ((1 + gk) * (1 + gb)), fq / (1 + gb)) == 0:
            return c
        d, bound = np.abs(_block_sums(c).astype(np.float64) - t), _bound(a, b, c)
        bad = ~(d <= bound) | ~np.isfinite(bound)
    if bad.any():
        raise AbftMismatch(f"{what}: {int(bad.sum())} block checksum(s) outside the float32 "
                           f"rounding bound (worst {float(np.nanmax(np.where(bad, d, 0))):.3g})")
    return c


@functools.lru_cache(maxsize=64)
def sum_weights(n: int) -> np.ndarray:
    """e and w = 1..n side by side (n x 2), read-only."""
    w = np.ones((n, 2))
    w[:, 1] = np.arange(1, n + 1)
    w.flags.writeable = False
    return w
