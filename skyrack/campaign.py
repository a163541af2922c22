"""Fault-injection campaign: jobs run with one injected fault each, outputs compared bit
for bit with a fault-free golden run, outcomes tallied by how the fault was handled.

Outcomes: masked (no check fired, output correct); corrected, by the mechanism that
detected it first (scrub, abft, crc, invariant, rollback for hangs and lost
checkpoints); benign (float work only: the output differs from the golden run, by no
more than BENIGN_RELATIVE of its largest value: a flip too small for the float32 check
bound, flight.compute.abft); DUE (the job gave up: detected, unrecoverable); SDC (any
other difference from the golden run).
Everything is a pure function of (seed, injection index), so a campaign is reproducible
whatever the number of workers.
"""

from __future__ import annotations

import collections
import functools
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.compute import NumpyDevice
from flight.compute.catalog import make_workload
from flight.compute.runner import JobFailed, JobRunner, Protection
from flight.shield import CheckpointStore
from hal.errors import InputError
from sim.faults import KINDS, FaultInjector, Injection
from skyrack.assembly import scratch_root

# Small jobs: a campaign is many runs, and what is measured is the handling, not the math.
JOBS: dict[str, dict[str, int]] = {
    "mlp": {"steps": 8, "batch": 16, "inputs": 64, "hidden": 64, "outputs": 16},
    "train": {"steps": 16, "batch": 16, "features": 32, "outputs": 4, "batches": 4},
    "transformer": {"steps": 8, "batch": 2, "context": 16, "layers": 2, "heads": 2,
                    "width": 32, "corpus_kb": 4},
    "generate": {"steps": 8, "context": 24, "layers": 2, "heads": 2, "width": 32,
                 "train_steps": 20, "corpus_kb": 4},
}
# A float job's result that differs by at most this much, relative to its largest value
# (final losses and weights), is a benign deviation; anything more is corruption.
BENIGN_RELATIVE = 1e-3
PROTECTION = Protection(scrub_every=4, checkpoint_every=4, block_bytes=2048, stripe_blocks=8)
MECHANISMS = {"scrub": "scrub", "abft": "abft", "crc": "crc", "invariant": "invariant",
              "hang": "rollback", "rollback": "rollback", "reload": "scrub",
              "checkpoint_fallback": "rollback"}
OUTCOMES = ("masked", "scrub", "abft", "crc", "invariant", "rollback", "benign", "due", "sdc")
BATCH = 50
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True, slots=True)
class Trial:
    index: int
    workload: str
    injection: Injection


def trial(seed: int, index: int, workloads: tuple[str, ...] = tuple(JOBS)) -> Trial:
    rng = np.random.default_rng([seed, index])
    names = sorted(workloads)
    workload = names[int(rng.integers(0, len(names)))]
    kind = KINDS[int(rng.integers(0, len(KINDS)))]
    step = int(rng.integers(0, JOBS[workload]["steps"]))
    return Trial(index, workload, Injection(kind, step, int(rng.integers(0, 2**63))))


def run_job(workload: str, *, protection: Protection = PROTECTION,
            injection: Injection | None = None, seed: int = 0) -> tuple[np.ndarray | None, Any]:
    """One job, optionally with one injection: (result or None if it failed, stats)."""
    directory = tempfile.mkdtemp(prefix="skyrack-campaign-", dir=scratch_root())
    try:
        device: Any = NumpyDevice()
        between = None
        if injection is not None:
            device = FaultInjector(device, injection, checkpoint_dir=directory,
                                   block_bytes=protection.block_bytes,
                                   stripe_blocks=protection.stripe_blocks)
            between = device.between
        runner = JobRunner(make_workload(workload, seed, **JOBS[workload]), device,
                           CheckpointStore(directory) if protection.enabled else None,
                           protection, between=between)
        try:
            return runner.run(), runner.stats
        except JobFailed:
            return None, runner.stats
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def deviation(result: np.ndarray, golden: np.ndarray) -> float:
    """The largest difference of a float result from the golden one, relative to the
    golden's largest magnitude (inf for an integer result or a non-finite value)."""
    if result.dtype != np.float32 or result.shape != golden.shape:
        return float("inf")
    with np.errstate(invalid="ignore", over="ignore"):
        worst = float(np.max(np.abs(result.astype(np.float64) - golden)))
    scale = float(np.max(np.abs(golden)))
    return worst / scale if np.isfinite(worst) and scale > 0 else float("inf")


def classify(result: np.ndarray | None, golden: np.ndarray, stats: Any) -> tuple[str, float]:
    """(outcome, the result's relative deviation from the golden run)."""
    if result is None:
        return "due", 0.0
    if result.tobytes() != golden.tobytes():
        size = deviation(result, golden)
        return ("benign" if size <= BENIGN_RELATIVE else "sdc"), size
    if not stats.events:
        return "masked", 0.0
    return MECHANISMS.get(stats.events[0][0], "rollback"), 0.0


@functools.lru_cache(maxsize=16)
def golden(workload: str, seed: int) -> np.ndarray:
    """The fault-free result of a campaign job, computed in the process that compares
    with it (a float result is the same bit for bit only on one BLAS set-up)."""
    result, _ = run_job(workload, protection=Protection(enabled=False), seed=seed)
    assert result is not None
    return result


def run_batch(seed: int, indices: list[int],
              workloads: tuple[str, ...] = tuple(JOBS)) -> list[dict[str, Any]]:
    out = []
    for index in indices:
        t = trial(seed, index, workloads)
        result, stats = run_job(t.workload, injection=t.injection, seed=seed)
        outcome, size = classify(result, golden(t.workload, seed), stats)
        out.append({
            "index": index, "workload": t.workload, "kind": t.injection.kind,
            "outcome": outcome, "deviation": size,
            "steps_lost": stats.steps_lost, "steps_run": stats.steps_run,
            "rollbacks": stats.rollbacks, "power_cycles": stats.power_cycles,
            "reloads": stats.reloads, "blocks_repaired": stats.blocks_repaired,
        })
    return out


def overhead(seed: int, repeats: int = 5, workloads: tuple[str, ...] = tuple(JOBS)) -> float:
    """Median wall time of the fault-free jobs, protected over unprotected."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for enabled in (True, False):
            started = time.perf_counter()
            for workload in workloads:
                run_job(workload, protection=Protection(enabled=enabled, **{
                    k: getattr(PROTECTION, k) for k in ("scrub_every", "checkpoint_every",
                                                        "block_bytes", "stripe_blocks")}),
                        seed=seed)
            times[enabled].append(time.perf_counter() - started)
    return float(np.median(times[True]) / np.median(times[False]))


def campaign(injections: int, seed: int, workers: int = 1,
             progress: Callable[[int, int], None] | None = None,
             workloads: tuple[str, ...] = tuple(JOBS)) -> dict[str, Any]:
    """Run `injections` trials over `workloads`; returns the report (plain data)."""
    unknown = sorted(set(workloads) - set(JOBS))
    if unknown or not workloads:
        raise InputError(f"unknown workload {unknown[0]!r} (known: {', '.join(sorted(JOBS))})"
                         if unknown else "no workloads to inject into")
    workloads = tuple(sorted(set(workloads)))
    started = time.perf_counter()
    batches = [list(range(i, min(i + BATCH, injections))) for i in range(0, injections, BATCH)]
    rows: list[dict[str, Any]] = []
    if workers <= 1:
        for batch in batches:
            rows += run_batch(seed, batch, workloads)
            if progress:
                progress(len(rows), injections)
    else:
        # One BLAS thread a worker, a worker a core: BLAS threads of several processes
        # contending for the same cores make small GEMMs a hundred times slower. The
        # variables must be set before a worker imports numpy, so workers are spawned.
        saved = {k: os.environ.get(k) for k in BLAS_THREADS}
        os.environ.update({k: "1" for k in BLAS_THREADS})
        try:
            with ProcessPoolExecutor(max_workers=workers,
                                     mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(run_batch, seed, batch, workloads) for batch in batches]
                for future in as_completed(futures):
                    rows += future.result()
                    if progress:
                        progress(len(rows), injections)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    rows.sort(key=lambda r: r["index"])
    outcomes = collections.Counter(r["outcome"] for r in rows)
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in rows:
        by_kind[r["kind"]][r["outcome"]] += 1
    benign = [r["deviation"] for r in rows if r["outcome"] == "benign"]
    return {
        "injections": injections,
        "seed": seed,
        "workers": workers,
        "workloads": list(workloads),
        "benign_max_deviation": max(benign, default=0.0),
        "benign_bound": BENIGN_RELATIVE,
        "outcomes": {o: outcomes[o] for o in OUTCOMES},
        "by_kind": {k: {o: by_kind[k][o] for o in OUTCOMES if by_kind[k][o]}
                    for k in KINDS if k in by_kind},
        "steps_lost": sum(r["steps_lost"] for r in rows),
        "steps_run": sum(r["steps_run"] for r in rows),
        "rollbacks": sum(r["rollbacks"] for r in rows),
        "power_cycles": sum(r["power_cycles"] for r in rows),
        "reloads": sum(r["reloads"] for r in rows),
        "blocks_repaired": sum(r["blocks_repaired"] for r in rows),
        "protection_overhead": round(overhead(seed, workloads=workloads), 3),
        "wall_s": round(time.perf_counter() - started, 2),
    }
