"""Shielded regions: memory that finds and heals its own bit flips.

A region is a numpy buffer cut into fixed-size blocks (64 KiB by default). Each block
has a CRC32C in a table; `verify()` recomputes them (on every core, outside the GIL) and
names the blocks whose CRC no longer matches, which were hit since their last legitimate
write. Blocks are grouped into stripes of k (16 by default) with two parity blocks each.

The code: RAID-6 P+Q, a Reed-Solomon code over GF(2^8) with two parity symbols per byte
column. The CRCs tell us *which* blocks are bad, so every loss is an erasure, and two
parity blocks rebuild any two erased blocks in a stripe; XOR parity would rebuild only
one. Two matters in orbit: a multi-bit upset or a latch-up can take out neighbouring
words in more than one block of a stripe, and an upset can land in a parity block
itself. Each parity block has its own CRC, so a hit parity block is known bad and
rebuilt from the data, and a block lost alongside it still comes back from the other
parity. The cost is 2/k of the region in memory (12.5 % at k = 16) and a re-encode of
one stripe on each commit.

A rebuilt block is accepted only if its CRC matches the table; anything beyond the
code's power (three lost blocks in a stripe, or two with a parity block also hit) is
reported as uncorrectable and left as it is, never "repaired" into wrong bytes.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from flight.shield._kernel import ffi, lib
from flight.shield.kernel import ShieldError, byte_view

DEFAULT_BLOCK_BYTES = 64 * 1024
DEFAULT_STRIPE_BLOCKS = 16
MIN_BLOCK_BYTES = 64
MAX_STRIPE_BLOCKS = 255  # g^i must differ for every block of a stripe in GF(2^8)
BLOCKS_PER_TASK = 64  # below this a thread costs more than it saves
WRITE_CHECK, WRITE_COMMIT = 1, 2  # sk_region_write's modes (shield.h)


@dataclass(frozen=True, slots=True)
class RepairReport:
    repaired: tuple[int, ...] = ()  # data blocks rebuilt to their committed bytes
    parity_rebuilt: tuple[int, ...] = ()  # stripes whose parity was re-encoded
    uncorrectable: tuple[int, ...] = ()  # data blocks left damaged

    @property
    def ok(self) -> bool:
        return not self.uncorrectable


class ShieldedRegion:
    """Block CRCs and P+Q parity over a numpy array, kept in step by `commit`."""

    def __init__(self, array: np.ndarray, *, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 stripe_blocks: int = DEFAULT_STRIPE_BLOCKS, threads: int | None = None) -> None:
        if not isinstance(array, np.ndarray):
            raise ShieldError(f"a region needs a numpy array, got {type(array).__name__}")
        if array.nbytes == 0:
            raise ShieldError("a region cannot be empty (zero bytes)")
        if block_bytes < MIN_BLOCK_BYTES or block_bytes & (block_bytes - 1):
            raise ShieldError(f"block size must be a power of two >= {MIN_BLOCK_BYTES} bytes, "
                              f"got {block_bytes}")
        if not 1 <= stripe_blocks <= MAX_STRIPE_BLOCKS:
            raise ShieldError(f"stripe must hold 1..{MAX_STRIPE_BLOCKS} blocks, "
                              f"got {stripe_blocks}")
        self._view = byte_view(array, "region array", writable=True)
        self.array = array
        self.nbytes = array.nbytes
        # A region smaller than a block is one block of its own size (a power of two):
        # its parity and every re-encode are then no larger than the region.
        self.block_bytes = min(block_bytes, max(MIN_BLOCK_BYTES,
                                                1 << (self.nbytes - 1).bit_length()))
        self.stripe_blocks = stripe_blocks
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.nblocks = -(-self.nbytes // self.block_bytes)
        self.nstripes = -(-self.nblocks // stripe_blocks)
        self.crcs = np.empty(self.nblocks, dtype=np.uint32)
        self._scratch = ffi.new("uint32_t[]", 2 * BLOCKS_PER_TASK)  # a spot check's bad list
        self.parity = np.zeros((self.nstripes, 2, self.block_bytes), dtype=np.uint8)
        self.parity_crcs = np.empty((self.nstripes, 2), dtype=np.uint32)
        self._encode_stripes(range(self.nstripes), crcs=True)

    # -- detection ------------------------------------------------------------------

    def verify(self) -> list[int]:
        """Data blocks whose CRC no longer matches the table, in order."""
        return self._verify(0, self.nblocks)

    def _verify(self, first: int, count: int) -> list[int]:
        """Blocks of [first, first + count) whose CRC no longer matches."""
        table = ffi.from_buffer("uint32_t[]", self.crcs)
        if count < 2 * BLOCKS_PER_TASK:  # one call, no thread: a spot check's usual size
            found = lib.sk_verify_blocks(self._view, self.nbytes, self.block_bytes, first,
                                         count, table, self._scratch, 1)
            return [int(self._scratch[i]) for i in range(found)]
        bad = np.empty(count, dtype=np.uint32)

        def run(start: int, n: int) -> list[int]:
            out = bad[start - first:start - first + n]
            found = lib.sk_verify_blocks(self._view, self.nbytes, self.block_bytes, start, n,
                                         table, ffi.from_buffer("uint32_t[]", out), 1)
            return out[:found].tolist()

        return [b for found in self._parallel(run, first, count) for b in found]

    def bad_in_bytes(self, start: int, stop: int) -> list[int]:
        """The blocks holding bytes [start, stop) whose CRC no longer matches (a spot
        check of what is about to be read)."""
        if not 0 <= start < stop <= self.nbytes:
            raise ShieldError(f"bytes {start}..{stop} are not within the region's "
                              f"{self.nbytes}")
        first = start // self.block_bytes
        return self._verify(first, (stop - 1) // self.block_bytes - first + 1)

    def bad_among(self, blocks: Iterable[int]) -> list[int]:
        """Those of `blocks` whose CRC no longer matches (a spot check, not a scrub)."""
        checked = sorted(set(self._check_blocks(blocks)))
        return [b for first, count in _runs(checked) for b in self._verify(first, count)]

    def bad_parity(self) -> list[tuple[int, int]]:
        """(stripe, 0 for P or 1 for Q) of parity blocks whose CRC no longer matches."""
        return [(s, w) for s in range(self.nstripes) for w in (0, 1)
                if self._parity_crc(s, w) != self.parity_crcs[s, w]]

    # -- correction -----------------------------------------------------------------

    def repair(self, blocks: Iterable[int] | None = None) -> RepairReport:
        """Rebuild bad blocks from parity (found by `verify()` unless given), and
        re-encode parity blocks that were hit."""
        lost = sorted(set(self.verify() if blocks is None else self._check_blocks(blocks)))
        stripes: dict[int, list[int]] = defaultdict(list)
        for b in lost:
            stripes[b // self.stripe_blocks].append(b)
        for s, _ in self.bad_parity():
            stripes.setdefault(s, [])
        repaired: list[int] = []
        uncorrectable: list[int] = []
        parity_rebuilt: list[int] = []
        for stripe in sorted(stripes):
            fixed, failed = self._rebuild(stripe, stripes[stripe], keep=set())
            repaired += fixed
            uncorrectable += failed
            if not failed and (self._parity_crc(stripe, 0) != self.parity_crcs[stripe, 0]
                               or self._parity_crc(stripe, 1) != self.parity_crcs[stripe, 1]):
                self._encode(stripe)
                parity_rebuilt.append(stripe)
        return RepairReport(tuple(repaired), tuple(parity_rebuilt), tuple(uncorrectable))

    def copy_for_write(self, blocks: Iterable[int]) -> tuple[dict[int, np.ndarray], list[int]]:
        """Before `blocks` are written: copies of those that share a stripe with blocks
        not written, for `commit(blocks, before=copies)` to bring parity up to date by
        the change alone, and the blocks whose CRC no longer matches (hit since their
        commit; none of those is copied). A copy is checked after it is taken, so it
        holds the committed bytes."""
        copies: dict[int, np.ndarray] = {}
        bad: list[int] = []
        data = self._bytes()
        for stripe, mine in self._by_stripe(blocks).items():
            if len(mine) == self._stripe_count(stripe):  # all rewritten: nothing to keep
                bad += [b for start, n in _runs(mine) for b in self._verify(start, n)]
                continue
            for start, n in _runs(mine):
                lo, hi = start * self.block_bytes, min((start + n) * self.block_bytes,
                                                       self.nbytes)
                copy = data[lo:hi].copy()
                crcs = np.empty(n, dtype=np.uint32)
                lib.sk_crc_blocks(ffi.from_buffer("uint8_t[]", copy), hi - lo,
                                  self.block_bytes, 0, n, ffi.from_buffer("uint32_t[]", crcs), 1)
                for i in range(n):
                    if crcs[i] != self.crcs[start + i]:
                        bad.append(start + i)
                    else:
                        copies[start + i] = copy[i * self.block_bytes:(i + 1) * self.block_bytes]
        return copies, sorted(bad)

    def within_block(self, start: int, stop: int) -> bool:
        """Whether bytes [start, stop) lie in one block (what `write` takes)."""
        return 0 <= start < stop <= self.nbytes and \
            start // self.block_bytes == (stop - 1) // self.block_bytes

    def write(self, offset: int, values: np.ndarray, *, checked: bool = False) -> int:
        """Write `values`' bytes (C-contiguous) at byte `offset` and commit them, for a
        write within one block (`within_block`): the block's CRC and its stripe's parity
        CRCs are checked first (unless `write_check` just passed: checked=True), and P
        and Q follow the change of those bytes alone, so that a row written into a large
        region costs its own size and a few CRCs, not a copy of its block and a pass over
        it. Returns 0 when written, 1 when the block was hit since its commit, 2 when a
        parity block of its stripe was: nothing is written then (`copy_for_write` and
        `commit` repair and rebuild)."""
        return self._write(offset, values.nbytes, values,
                           WRITE_COMMIT if checked else WRITE_CHECK | WRITE_COMMIT)

    def write_check(self, start: int, stop: int) -> int:
        """`write`'s checks for bytes [start, stop), writing nothing: 0, 1 or 2 as there."""
        return self._write(start, stop - start, None, WRITE_CHECK)

    def _write(self, offset: int, n: int, values: np.ndarray | None, mode: int) -> int:
        if not self.within_block(offset, offset + n):
            raise ShieldError(f"bytes {offset}..{offset + n} are not within one block of the "
                              f"region's {self.nbytes}")
        src = byte_view(values, "written values") if values is not None else ffi.NULL
        return int(lib.sk_region_write(self._view, self.nbytes, self.block_bytes,
                                       self.stripe_blocks, offset, src, n,
                                       ffi.from_buffer("uint32_t[]", self.crcs),
                                       ffi.from_buffer("uint8_t[]", self.parity),
                                       ffi.from_buffer("uint32_t[]", self.parity_crcs), mode))

    def commit(self, blocks: Iterable[int],
               before: dict[int, np.ndarray] | None = None) -> RepairReport:
        """Take the current bytes of `blocks` as legitimate: update their CRCs and their
        stripes' parity.

        With `before` (copy_for_write's copies of the written blocks as committed), a
        stripe written in part has its parity updated by the change alone (P ^= D,
        Q ^= g^i D), once its parity blocks check out. Otherwise the other blocks of the
        stripe are checked first, since re-encoding would bake any damage in them into
        the parity. One found hit is rebuilt from the old parity, counting the written
        blocks as lost too; the report names what was repaired and what could not be
        (those blocks stay flagged by `verify()`).
        """
        by_stripe = self._by_stripe(blocks)
        repaired: list[int] = []
        uncorrectable: list[int] = []
        updated: set[int] = set()
        for stripe, mine in sorted(by_stripe.items()):
            first = stripe * self.stripe_blocks
            count = self._stripe_count(stripe)
            if len(mine) == count:
                continue  # the whole stripe is written: nothing else in it to protect
            if before is not None and all(b in before for b in mine) and self._update(
                    stripe, {b: before[b] for b in mine}):
                updated.add(stripe)
                continue
            written_here = set(mine)
            others = [b for b in range(first, first + count) if b not in written_here]
            damaged = [b for start, n in _runs(others) for b in self._verify(start, n)]
            if damaged:
                fixed, failed = self._rebuild(stripe, mine + damaged, keep=written_here)
                repaired += fixed
                uncorrectable += failed
        whole = {stripe for stripe, mine in by_stripe.items()
                 if len(mine) == self._stripe_count(stripe)}
        in_part = [b for stripe, mine in by_stripe.items() if stripe not in whole for b in mine]
        for start, n in _runs(sorted(in_part)):  # the new CRCs, a run of blocks a call
            self._crc_blocks(start, n, self.crcs[start:start + n])
        # A stripe written whole gets its blocks' CRCs in the same read as its parity.
        self._encode_stripes(sorted(whole), crcs=True)
        self._encode_stripes(sorted(set(by_stripe) - updated - whole), crcs=False)
        return RepairReport(tuple(repaired), (), tuple(uncorrectable))

    def replace(self, values: np.ndarray) -> None:
        """Write `values` (the region's dtype and shape, C-contiguous) over the whole
        region and commit them: each block copied, and its CRC and its stripe's parity
        taken from it, in one read. What was there is not looked at: check it first
        (`copy_for_write` of every block), as for any write that the step computed
        from it."""
        if values.dtype != self.array.dtype or values.shape != self.array.shape:
            raise ShieldError(f"a replacement must be {self.array.dtype} {self.array.shape}, "
                              f"got {values.dtype} {values.shape}")
        if np.may_share_memory(values, self.array):
            raise ShieldError("a replacement cannot overlap the region it replaces")
        self._encode_stripes(range(self.nstripes), crcs=True,
                             src=byte_view(values, "replacement values"))

    def _update(self, stripe: int, before: dict[int, np.ndarray]) -> bool:
        """Parity of `stripe` brought up to date by the change of the blocks in `before`
        (block -> its committed bytes); False, with nothing changed, when a parity block
        of the stripe was hit (the full re-encode then rebuilds it)."""
        if (self._parity_crc(stripe, 0) != self.parity_crcs[stripe, 0]
                or self._parity_crc(stripe, 1) != self.parity_crcs[stripe, 1]):
            return False
        p = ffi.from_buffer("uint8_t[]", self.parity[stripe, 0])
        q = ffi.from_buffer("uint8_t[]", self.parity[stripe, 1])
        data = self._bytes()
        for b, old in before.items():
            n = self._length(b)
            start = b * self.block_bytes
            lib.sk_pq_update(p, q, ffi.from_buffer("uint8_t[]", old), ffi.from_buffer(
                "uint8_t[]", data[start:start + n]), n, b - stripe * self.stripe_blocks)
        self.parity_crcs[stripe, 0] = self._parity_crc(stripe, 0)
        self.parity_crcs[stripe, 1] = self._parity_crc(stripe, 1)
        return True

    def _by_stripe(self, blocks: Iterable[int]) -> dict[int, list[int]]:
        by_stripe: dict[int, list[int]] = defaultdict(list)
        for b in sorted(set(self._check_blocks(blocks))):
            by_stripe[b // self.stripe_blocks].append(b)
        return by_stripe

    def _stripe_count(self, stripe: int) -> int:
        """Data blocks in `stripe` (the last may have fewer)."""
        return min(self.stripe_blocks, self.nblocks - stripe * self.stripe_blocks)

    # -- internals ------------------------------------------------------------------

    def _check_blocks(self, blocks: Iterable[int]) -> list[int]:
        if isinstance(blocks, range) and blocks.step == 1:
            if len(blocks) and not (0 <= blocks.start and blocks.stop <= self.nblocks):
                bad = blocks.start if blocks.start < 0 else blocks.stop - 1
                raise ShieldError(f"block {bad!r} is not in 0..{self.nblocks - 1}")
            return list(blocks)
        out = []
        for b in blocks:
            if not isinstance(b, (int, np.integer)) or not 0 <= b < self.nblocks:
                raise ShieldError(f"block {b!r} is not in 0..{self.nblocks - 1}")
            out.append(int(b))
        return out

    def _rebuild(self, stripe: int, lost: list[int], keep: set[int]) -> tuple[list[int], list[int]]:
        """Rebuild `lost` blocks of a stripe from parity; blocks in `keep` are rebuilt only
        to make the arithmetic work and are not written back. Returns (fixed, failed)."""
        lost = sorted(lost)
        restore = [b for b in lost if b not in keep]
        if not lost:
            return [], []
        p_ok = self._parity_crc(stripe, 0) == self.parity_crcs[stripe, 0]
        q_ok = self._parity_crc(stripe, 1) == self.parity_crcs[stripe, 1]
        if len(lost) > 2 or (len(lost) == 2 and not (p_ok and q_ok)) or not (p_ok or q_ok):
            return [], restore
        first = stripe * self.stripe_blocks
        x = lost[0] - first
        y = lost[1] - first if len(lost) == 2 else -1
        outx = np.empty(self.block_bytes, dtype=np.uint8)
        outy = np.empty(self.block_bytes, dtype=np.uint8)
        p = ffi.from_buffer("uint8_t[]", self.parity[stripe, 0]) if p_ok else ffi.NULL
        q = ffi.from_buffer("uint8_t[]", self.parity[stripe, 1]) if q_ok else ffi.NULL
        status = lib.sk_pq_rebuild(self._view, self.nbytes, self.block_bytes,
                                   self.stripe_blocks, stripe, p, q, x, y,
                                   ffi.from_buffer("uint8_t[]", outx),
                                   ffi.from_buffer("uint8_t[]", outy))
        if status != 0:
            return [], restore
        rebuilt = dict(zip(lost, (outx, outy), strict=False))
        fixed, failed = [], []
        for b in restore:
            n = self._length(b)
            data = rebuilt[b][:n]
            if int(lib.sk_crc32c(0, ffi.from_buffer("uint8_t[]", data), n, 1)) != self.crcs[b]:
                failed.append(b)  # the arithmetic disagrees with the CRC: do not write
                continue
            start = b * self.block_bytes
            self._bytes()[start:start + n] = data
            fixed.append(b)
        return fixed, failed

    def _bytes(self) -> np.ndarray:
        return self.array.reshape(-1).view(np.uint8)

    def _length(self, block: int) -> int:
        return min(self.block_bytes, self.nbytes - block * self.block_bytes)

    def _block_crc(self, block: int) -> int:
        out = np.empty(1, dtype=np.uint32)
        self._crc_blocks(block, 1, out)
        return int(out[0])

    def _crc_blocks(self, first: int, count: int, out: np.ndarray) -> None:
        def run(start: int, n: int) -> None:
            lib.sk_crc_blocks(self._view, self.nbytes, self.block_bytes, start, n,
                              ffi.from_buffer("uint32_t[]", out[start - first:start - first + n]),
                              1)

        self._parallel(run, first, count)

    def _parity_crc(self, stripe: int, which: int) -> int:
        return int(lib.sk_crc32c(0, ffi.from_buffer("uint8_t[]", self.parity[stripe, which]),
                                 self.block_bytes, 1))

    def _encode(self, stripe: int, crcs: bool = False, src: Any = None) -> None:
        """The parity of `stripe` and its CRCs; with `crcs`, the CRCs of the stripe's data
        blocks too, from the same read; with `src` (a byte view of the region's size),
        the stripe's blocks copied from it first, in that same read."""
        p = ffi.from_buffer("uint8_t[]", self.parity[stripe, 0])
        q = ffi.from_buffer("uint8_t[]", self.parity[stripe, 1])
        if crcs or src is not None:
            first = stripe * self.stripe_blocks
            out = ffi.from_buffer("uint32_t[]",
                                  self.crcs[first:first + self._stripe_count(stripe)])
            if src is not None:
                lib.sk_pq_copy_encode_crc(self._view, src, self.nbytes, self.block_bytes,
                                          self.stripe_blocks, stripe, p, q, out, 1)
            else:
                lib.sk_pq_encode_crc(self._view, self.nbytes, self.block_bytes,
                                     self.stripe_blocks, stripe, p, q, out, 1)
        else:
            lib.sk_pq_encode(self._view, self.nbytes, self.block_bytes, self.stripe_blocks,
                             stripe, p, q)
        self.parity_crcs[stripe, 0] = self._parity_crc(stripe, 0)
        self.parity_crcs[stripe, 1] = self._parity_crc(stripe, 1)

    def _encode_stripes(self, stripes: list[int] | range, crcs: bool, src: Any = None) -> None:
        """`_encode` each of `stripes`, split across threads when there are enough."""
        per_task = max(1, BLOCKS_PER_TASK // self.stripe_blocks)
        tasks = min(self.threads, max(1, len(stripes) // per_task))
        if tasks == 1:
            for stripe in stripes:
                self._encode(stripe, crcs, src)
            return
        chunks = [stripes[i::tasks] for i in range(tasks)]

        def run(chunk: list[int] | range) -> None:
            for stripe in chunk:
                self._encode(stripe, crcs, src)

        with ThreadPoolExecutor(max_workers=tasks) as pool:
            list(pool.map(run, chunks))

    def _parallel(self, run, first: int = 0, count: int | None = None) -> list:
        """`run(start, n)` over [first, first+count) blocks, split across threads."""
        count = self.nblocks - first if count is None else count
        tasks = min(self.threads, max(1, count // BLOCKS_PER_TASK))
        if tasks == 1:
            return [run(first, count)]
        edges = [first + count * i // tasks for i in range(tasks + 1)]
        with ThreadPoolExecutor(max_workers=tasks) as pool:
            return list(pool.map(run, edges[:-1], [b - a for a, b in pairwise(edges)]))


def _runs(blocks: list[int]) -> list[tuple[int, int]]:
    """Sorted block numbers as (first, count) runs of consecutive blocks."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        if out and out[-1][0] + out[-1][1] == b:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((b, 1))
    return out
