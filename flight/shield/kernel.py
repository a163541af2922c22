"""The C kernel behind a small Python API: buffers in, integers and numpy arrays out.

No pointer ever leaves this module. Every C call releases the GIL (cffi API mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flight.shield._kernel import ffi, lib
from hal.errors import SkyrackError

lib.sk_init()

HARDWARE_PATHS = {0: None, 1: "sse4.2", 2: "armv8-crc"}


class ShieldError(SkyrackError, ValueError):
    """A shield call was given something it cannot work on; the message says what."""


def hardware_crc() -> str | None:
    """The CPU's CRC32C path in use ("sse4.2+vpclmulqdq", "sse4.2", "armv8-crc"), or None."""
    path = HARDWARE_PATHS[lib.sk_crc32c_hw_kind()]
    return f"{path}+vpclmulqdq" if path and lib.sk_crc32c_fold_available() else path


def _use_hardware(hardware: bool | None) -> int:
    if hardware is None:
        return 1
    if hardware and hardware_crc() is None:
        raise ShieldError("this CPU has no CRC32C instruction; use hardware=None or False")
    return int(hardware)


def byte_view(buffer: Any, what: str = "buffer", *, writable: bool = False) -> Any:
    """A cffi uint8_t view of a contiguous buffer. Raises ShieldError for anything else."""
    if isinstance(buffer, np.ndarray):
        if buffer.dtype.hasobject:
            raise ShieldError(f"{what} holds Python objects (dtype {buffer.dtype}), not data")
        if not buffer.flags.c_contiguous:
            raise ShieldError(f"{what} must be C-contiguous; pass np.ascontiguousarray(...)")
        if writable and not buffer.flags.writeable:
            raise ShieldError(f"{what} must be writable")
    try:
        return ffi.from_buffer("uint8_t[]", buffer, require_writable=writable)
    except (TypeError, BufferError, ValueError) as e:
        raise ShieldError(f"{what} is not a contiguous byte buffer: {e}") from None


def crc32c(buffer: Any, value: int = 0, *, hardware: bool | None = None) -> int:
    """CRC32C (Castagnoli) of `buffer`, continuing from `value` as zlib.crc32 does.

    hardware: None picks the CPU's CRC instruction when it has one; False forces the
    portable table path; True insists on the instruction (ShieldError without it).
    """
    if not 0 <= value <= 0xFFFFFFFF:
        raise ShieldError(f"value must be a 32-bit unsigned CRC, got {value}")
    view = byte_view(buffer)
    return lib.sk_crc32c(value, view, len(view), _use_hardware(hardware))


@dataclass(frozen=True, slots=True)
class AbftScan:
    non_integer: int
    col_sum: np.ndarray | None = None
    col_wsum: np.ndarray | None = None


def abft_scan(c: np.ndarray, *, columns: bool = False) -> AbftScan:
    """One vectorised pass over a 2-D float64 matrix: -0.0 made 0.0 in place, how many
    entries are not integers, and with `columns` its column sums and column sums weighted
    1..rows (flight.compute.abft)."""
    if (c.ndim != 2 or c.dtype != np.float64 or not c.flags.c_contiguous
            or not c.flags.writeable):
        raise ShieldError(f"abft_scan needs a writable C-contiguous 2-D float64 matrix, got "
                          f"{c.dtype} {c.shape}")
    rows, cols = c.shape
    col = (np.empty(cols), np.empty(cols)) if columns else None
    f = ffi.from_buffer
    views = [f("double[]", x) for x in col] if col else [ffi.NULL, ffi.NULL]
    bad = lib.sk_abft_scan(f("double[]", c), rows, cols, *views)
    return AbftScan(int(bad), *(col or (None, None)))


def abft_product(a: np.ndarray, b: np.ndarray | None, sums: np.ndarray | None,
                 c: np.ndarray) -> tuple[int, int]:
    """abft_scan of a small float64 product c = a @ b and its row checksums in one call:
    (entries that are not integers, rows whose sum and sum weighted 1..m differ from
    a's row times b's sums). a is (..., r, k) and c (..., r, m) with the same leading
    dimensions; b's sums (B e and B w) are `sums`, taken when b was committed (k x 2
    for every member, or (..., k, 2) one for each), or, with sums None, b's (..., k, m)
    as it is now. For small products (flight.compute.abft)."""
    k, m = a.shape[-1], c.shape[-1]
    batch = a.size // (a.shape[-2] * k) if a.size else 0
    if (a.dtype != np.float64 or c.dtype != np.float64 or not c.flags.c_contiguous
            or not c.flags.writeable or a.shape[:-1] != c.shape[:-1]
            or (sums is None) == (b is None)
            or (sums is not None and (sums.shape not in ((k, 2), (*a.shape[:-2], k, 2))
                                      or sums.dtype != np.float64))
            or (b is not None and (b.shape != (*a.shape[:-2], k, m) or b.dtype != np.float64))):
        raise ShieldError(f"abft_product needs float64 a (..., r, k), a writable C-contiguous "
                          f"c (..., r, m) and either b (..., k, m) or its k x 2 sums, got "
                          f"{a.dtype} {a.shape}, {c.dtype} {c.shape}, "
                          f"{None if b is None else b.shape}, "
                          f"{None if sums is None else sums.shape}")
    mismatched = ffi.new("size_t *")
    f = ffi.from_buffer
    bad = lib.sk_abft_product(
        f("double[]", np.ascontiguousarray(a)),
        ffi.NULL if b is None else f("double[]", np.ascontiguousarray(b)),
        ffi.NULL if sums is None else f("double[]", np.ascontiguousarray(sums)),
        int(sums is not None and sums.ndim > 2), f("double[]", c), batch,
        a.shape[-2] if a.ndim >= 2 else 0, k, m, mismatched)
    return int(bad), int(mismatched[0])


def abft_appended(c: np.ndarray) -> tuple[int, int]:
    """The check of c = a @ [B | B e | B w] in one call: (entries that are not integers,
    rows of c whose sum and sum weighted 1..m of their first m entries differ from their
    last two). c is a writable C-contiguous float64 (..., m + 2) (flight.compute.abft)."""
    if (c.dtype != np.float64 or c.ndim < 2 or c.shape[-1] < 2 or not c.flags.c_contiguous
            or not c.flags.writeable):
        raise ShieldError(f"abft_appended needs a writable C-contiguous float64 product with "
                          f"two checksum columns, got {c.dtype} {c.shape}")
    mismatched = ffi.new("size_t *")
    bad = lib.sk_abft_appended(ffi.from_buffer("double[]", c), c.size // c.shape[-1],
                               c.shape[-1], mismatched)
    return int(bad), int(mismatched[0])


def float_block_check(c: np.ndarray, sums: np.ndarray, block: int, fp: float,
                      fq: float) -> int:
    """How many row blocks of a float32 product C (..., m, n) fail |fl(C e_b) - t| <=
    fp max(|t|, q) + fq q, where q = fl(|C| e_b) and sums (..., m, nb) holds t (A B e_b)
    for each of the nb blocks of `block` columns, in one pass over C
    (flight.compute.abft). NaN and an infinite bound fail."""
    if c.dtype != np.float32 or sums.dtype != np.float32 or c.ndim < 2:
        raise ShieldError(f"float_block_check needs float32 C and sums, got {c.dtype} "
                          f"{c.shape} and {sums.dtype} {sums.shape}")
    rows, cols = c.size // c.shape[-1] if c.size else 0, c.shape[-1]
    nb = -(-cols // block) if block > 0 else 0
    if block <= 0 or sums.shape != (*c.shape[:-1], nb):
        raise ShieldError(f"float_block_check: sums {sums.shape} do not pair with C "
                          f"{c.shape} in blocks of {block}")
    f = ffi.from_buffer
    return int(lib.sk_float_block_check(f("float[]", np.ascontiguousarray(c)), rows, cols,
                                        block, f("float[]", np.ascontiguousarray(sums)),
                                        fp, fq))


def _rows_f32(*arrays: np.ndarray) -> list[Any]:
    """C-contiguous float32 buffers for the row checks (copies only where needed)."""
    out = []
    for a in arrays:
        if a.dtype != np.float32:
            raise ShieldError(f"a transformer check needs float32, got {a.dtype}")
        out.append(ffi.from_buffer("float[]", np.ascontiguousarray(a)))
    return out


def layernorm_check(xhat: np.ndarray, mu: np.ndarray, rstd: np.ndarray, var: np.ndarray,
                    eps: float) -> int:
    """The first row of a layer norm's output (..., cols) whose mean or mean square is
    off (shield.h, sk_layernorm_check), or -1. mu, rstd and var: one value a row."""
    rows, cols = (xhat.size // xhat.shape[-1], xhat.shape[-1]) if xhat.size else (0, 1)
    if not mu.size == rstd.size == var.size == rows:
        raise ShieldError(f"layernorm_check: {mu.size}, {rstd.size}, {var.size} row values "
                          f"for {rows} rows")
    return int(lib.sk_layernorm_check(*_rows_f32(xhat, mu, rstd, var), rows, cols, eps))


def softmax_check(p: np.ndarray, tol: float) -> int:
    """The first row of probabilities (..., cols) that does not sum to 1 within `tol` or
    holds an entry outside [0, 1], or -1."""
    rows, cols = (p.size // p.shape[-1], p.shape[-1]) if p.size else (0, 1)
    return int(lib.sk_softmax_check(*_rows_f32(p), rows, cols, tol))


def gelu_check(x: np.ndarray, y: np.ndarray, low: float) -> bool:
    """Whether every GELU output y of inputs x lies in [low, max(max x, 0)], all of them
    finite."""
    if x.shape != y.shape:
        raise ShieldError(f"gelu_check: inputs {x.shape} and outputs {y.shape} differ")
    return bool(lib.sk_gelu_check(*_rows_f32(x, y), x.size, low))


ADAMW_CONSTANTS = 10  # sk_adamw's k


def adamw_step(w: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, mask: np.ndarray,
               constants: np.ndarray, out: tuple[np.ndarray, np.ndarray, np.ndarray],
               check: bool) -> int:
    """One AdamW step of float32 vectors into `out` (new w, m, v), in one pass
    (shield.h, sk_adamw, whose k `constants` are); with `check`, the first index whose
    new values the step cannot have made, or -1."""
    arrays = (w, m, v, g, mask, *out)
    if any(a.dtype != np.float32 or a.ndim != 1 or a.shape != w.shape
           or not a.flags.c_contiguous for a in arrays) \
            or not all(a.flags.writeable for a in out) \
            or constants.dtype != np.float32 or constants.shape != (ADAMW_CONSTANTS,) \
            or any(np.may_share_memory(a, b) for i, a in enumerate(arrays)
                   for b in arrays[i + 1:]):
        raise ShieldError(f"adamw_step needs contiguous float32 vectors of one length, none "
                          f"overlapping another, and {ADAMW_CONSTANTS} float32 constants, got "
                          f"{[(a.dtype.name, a.shape) for a in arrays]}")
    f = ffi.from_buffer
    return int(lib.sk_adamw(*(f("float[]", a) for a in arrays[:5]), w.size,
                            f("float[]", constants), *(f("float[]", a) for a in out),
                            int(check)))


def float_block_sums(b: np.ndarray, block: int) -> np.ndarray | None:
    """For a float32 B (..., k, n): its sums over blocks of `block` columns (..., k, nb)
    (flight.compute.abft). B may be C-contiguous or the transpose of a C-contiguous
    matrix in its last two axes (X^T, summed over blocks of X's rows); None for any
    other layout."""
    if b.dtype != np.float32 or b.ndim < 2 or block <= 0:
        raise ShieldError(f"float_block_sums needs a float32 matrix, got {b.dtype} {b.shape}")
    *lead, k, n = b.shape
    nb = -(-n // block)
    out = np.empty((*lead, k, nb), np.float32)
    if b.size == 0:
        out[...] = 0
        return out
    f = ffi.from_buffer
    if b.flags.c_contiguous:
        lib.sk_float_block_sums(f("float[]", b), b.size // n, n, block, f("float[]", out))
        return out
    x = np.swapaxes(b, -1, -2)
    if x.flags.c_contiguous:
        lib.sk_float_block_sums_t(f("float[]", x), x.size // (n * k), n, k, block,
                                  f("float[]", out))
        return out
    return None


def copy_crc32c(dst: np.ndarray, src: np.ndarray) -> int:
    """Copy src into dst (same shape, float64, contiguous) and return the CRC32C of dst,
    in one pass."""
    if dst.shape != src.shape or dst.dtype != src.dtype:
        raise ShieldError(f"copy_crc32c: {src.dtype} {src.shape} into {dst.dtype} {dst.shape}")
    d = byte_view(dst, "destination", writable=True)
    return int(lib.sk_copy_crc32c(d, byte_view(np.ascontiguousarray(src), "source"), len(d)))
