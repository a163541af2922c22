"""Shield kernel throughput against the machine's own baselines, on one buffer, one run.

    python bench/shield.py [--size-mib 256] [--repeats 5] [--dir PATH] [--json out.json]

Every number is a median over repeats; every ratio divides two numbers from this run.
Targets (issue): single-thread verify >= 0.9x numpy read; full checkpoint >= 0.8x raw
write with fsync; an incremental checkpoint at 1 % dirty blocks <= 0.05x a full one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from table import report

from flight.shield import CheckpointStore, ShieldedRegion, crc32c, hardware_crc


def median_s(run: Callable[[], object], repeats: int,
             before: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def raw_write(path: Path, a: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(memoryview(a).cast("B"))
        f.flush()
        os.fsync(f.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where checkpoints are written "
                        "(default: a temporary directory)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()

    size = args.size_mib * 2**20
    gb = size / 1e9
    a = np.random.default_rng(0).integers(0, 2**63, size // 8, dtype=np.uint64)
    dst = np.empty_like(a)
    one = ShieldedRegion(a, threads=1)
    every = ShieldedRegion(a)
    r = args.repeats

    t_read = median_s(lambda: a.view(np.uint64).sum(), r)
    t_copy = median_s(lambda: np.copyto(dst, a), r)
    t_zlib = median_s(lambda: zlib.crc32(a), r)
    t_crc = median_s(lambda: crc32c(a), r)
    t_verify = median_s(one.verify, r)
    t_verify_all = median_s(every.verify, r)

    work = Path(args.dir or tempfile.mkdtemp(prefix="skyrack-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    store_dir = work / "store"

    def fresh_store() -> None:
        shutil.rmtree(store_dir, ignore_errors=True)

    t_raw = median_s(lambda: raw_write(work / "raw.bin", a), r)
    t_full = median_s(lambda: CheckpointStore(store_dir).save({"w": one}), r, fresh_store)

    rng = np.random.default_rng(1)
    dirty_blocks = max(1, one.nblocks // 100)
    store = CheckpointStore(store_dir)

    def make_one_percent_dirty() -> None:
        store.save({"w": one})  # both slots current, so the timed save sees only the 1 %
        store.save({"w": one})
        blocks = rng.choice(one.nblocks, dirty_blocks, replace=False)
        words = blocks * (one.block_bytes // 8)
        a[words] += np.uint64(1)
        one.commit(blocks)

    t_incr = median_s(lambda: store.save({"w": one}), r, make_one_percent_dirty)

    def hit_one_block() -> None:
        a.view(np.uint8)[12345] ^= 1

    t_repair = median_s(lambda: one.repair([0]), r, hit_one_block)
    shutil.rmtree(work, ignore_errors=True) if args.dir is None else None

    results = {
        "buffer_mib": args.size_mib,
        "block_kib": one.block_bytes // 1024,
        "crc_path": hardware_crc() or "table",
        "threads_all_cores": every.threads,
        "numpy_read_gbps": gb / t_read,
        "memcpy_gbps": gb / t_copy,
        "zlib_crc32_gbps": gb / t_zlib,
        "crc32c_whole_buffer_gbps": gb / t_crc,
        "verify_1_thread_gbps": gb / t_verify,
        "verify_all_cores_gbps": gb / t_verify_all,
        "verify_1t_over_numpy_read": t_read / t_verify,
        "verify_1t_over_memcpy": t_copy / t_verify,
        "verify_1t_over_zlib_crc32": t_zlib / t_verify,
        "verify_all_over_numpy_read": t_read / t_verify_all,
        "raw_write_fsync_gbps": gb / t_raw,
        "full_checkpoint_gbps": gb / t_full,
        "full_checkpoint_over_raw_write": t_raw / t_full,
        "incremental_1pct_s": t_incr,
        "incremental_1pct_over_full": t_incr / t_full,
        "repair_one_block_ms": t_repair * 1e3,
    }
    targets = {
        "verify_1t_over_numpy_read": (">=", 0.9),
        "full_checkpoint_over_raw_write": (">=", 0.8),
        "incremental_1pct_over_full": ("<=", 0.05),
    }
    report(results, targets, args.json)


if __name__ == "__main__":
    main()
