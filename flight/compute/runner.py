"""Runs a workload step by step on a compute device, so that it finishes with the
result a fault-free run gives, bit for bit.

Protection, all on the shield:
- golden data (weights, training sets) and state sit in shielded regions; a scrub
  verifies and repairs them every `scrub_every` steps and after any detection;
- every GEMM is checked by ABFT against checksums taken when the golden data was
  loaded (flight.compute.abft), so a weight hit between scrubs is still caught;
- activations are CRC-checked from when they are written to when they are read;
- state is checkpointed every `checkpoint_every` steps (A/B, power-cut safe).

On a detection the step is run again after a scrub. Golden data beyond the parity's
power is reloaded from its source; state beyond it is rolled back to the last good
checkpoint (or to step 0 if none survives). A hung device is power-cycled, its memory
reloaded and the state rolled back. Every event is recorded with its mechanism.

`between(phase)` is called whenever data sits idle in device memory (before a step,
and while an activation waits to be read): the moments the sim's radiation, or a fault
campaign, acts.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flight.compute.abft import (
    AppendedRows,
    AppendedSums,
    ComputeFault,
    Deferred,
    FloatRightSums,
    RightSums,
    checked_float_gemm,
    checked_gemm,
    verify,
)
from flight.compute.workloads import Workload
from flight.shield import (
    CheckpointError,
    CheckpointStore,
    ShieldedRegion,
    copy_crc32c,
    crc32c,
    unusable,
)
from hal.compute import ComputeDevice, DeviceHang
from hal.errors import SkyrackError


class ActivationCorrupt(ComputeFault):
    mechanism = "crc"


class StateCorrupt(ComputeFault):
    """State the step may have read was hit: repaired, and the step runs again."""

    mechanism = "scrub"


def _check_activation(region: np.ndarray, crc: int, what: str) -> None:
    if crc32c(region) != crc:
        raise ActivationCorrupt(f"{what} changed while it waited")


def _check_rows(shield: ShieldedRegion, start: int, stop: int, error: type[ComputeFault],
                what: str) -> None:
    """The blocks of bytes [start, stop) that a step reads, CRC-checked."""
    bad = shield.bad_in_bytes(start, stop)
    if bad:
        raise error(f"{what} blocks {bad} fail their CRC")


def _exactly(values: Any, part: np.ndarray) -> bool:
    """Whether `values` holds the bytes `part` of a region is to hold, as they are: an
    array of its dtype and shape, C-contiguous, apart from it."""
    return (isinstance(values, np.ndarray) and values.dtype == part.dtype
            and values.shape == part.shape and values.flags.c_contiguous
            and not np.may_share_memory(values, part))


class JobFailed(SkyrackError):
    """The job could not be brought to a correct finish (a detected, unrecoverable error)."""


class _Uncorrectable(Exception):
    """State damage beyond the parity: roll back."""


@dataclass(frozen=True, slots=True)
class Protection:
    enabled: bool = True
    scrub_every: int = 16
    checkpoint_every: int = 64
    block_bytes: int = 65536  # the shield's defaults: 64 KiB blocks, stripes of 16
    stripe_blocks: int = 16
    max_attempts: int = 4  # runs of one step before the job is declared failed


@dataclass
class RunStats:
    events: list[tuple[str, int]] = field(default_factory=list)  # (mechanism, step)
    steps_run: int = 0  # including reruns
    blocks_repaired: int = 0
    rollbacks: int = 0
    steps_lost: int = 0  # steps run again because of rollbacks and reruns
    power_cycles: int = 0
    reloads: int = 0
    checkpoints: int = 0

    def count(self) -> collections.Counter[str]:
        return collections.Counter(m for m, _ in self.events)


class JobRunner:
    def __init__(self, workload: Workload, device: ComputeDevice,
                 store: CheckpointStore | None, protection: Protection = Protection(), *,
                 between: Callable[[str], None] | None = None,
                 power_cycle: Callable[[], None] | None = None) -> None:
        if protection.enabled and store is None:
            raise ValueError("a protected job needs a checkpoint store")
        self.workload = workload
        workload.checking = protection.enabled
        self.device = device
        self.store = store
        self.protection = protection
        self.between = between or (lambda phase: None)
        self.power_cycle = power_cycle or device.reset
        self.stats = RunStats()
        self.next_step = 0
        self.step_in_progress = -1
        self.golden: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.outputs: dict[int, tuple[np.ndarray, int]] = {}  # step -> (output, its CRC32C)
        self._pending: np.ndarray | None = None
        self.later = Deferred()  # the checks the step in progress has held back
        self._shields: dict[str, ShieldedRegion] = {}
        self.refused: list[str] = []  # checkpoints met in the store and not used, why
        self._load()

    # -- the job --------------------------------------------------------------------

    @property
    def memory_bits(self) -> int:
        """Bits of shielded device memory this job holds (its exposure to upsets)."""
        return sum(s.nbytes for s in self._shields.values()) * 8

    @property
    def stripes(self) -> int:
        return sum(s.nstripes for s in self._shields.values())

    @property
    def state_bytes(self) -> int:
        return sum(region.nbytes for region in self.state.values())

    @property
    def done(self) -> bool:
        return self.next_step >= self.workload.steps

    def run(self) -> np.ndarray:
        while not self.done:
            self.run_step()
        if self.protection.enabled:
            # What is handed over is what was committed: the state the result is made
            # of (golden data feeds no result once the last step has run).
            self._scrub(state_only=True)
            for step, (output, crc) in self.outputs.items():
                if crc32c(output) != crc:
                    raise JobFailed(f"{self.workload.name}: output of step {step} changed "
                                    "after it was committed")
        outputs = [self.outputs[i][0] for i in sorted(self.outputs)]
        return self.workload.result(self.state, outputs)

    def run_step(self) -> None:
        p = self.protection
        i = self.next_step
        last = ""  # what the last failed attempt's check said
        for attempt in range(p.max_attempts):
            self.step_in_progress = i
            try:
                # Not before step 0: the golden data and the state were shielded just
                # now, and what could hit them since a GEMM's ABFT or a read's CRC sees.
                if p.enabled and ((i % p.scrub_every == 0 and i > 0) or attempt > 0):
                    self._scrub()
                self.between(f"step {i}")
                self.stats.steps_run += 1
                self._pending = None
                updates = self._work(i)
                self._apply(updates)
                if self._pending is not None:
                    self.outputs[i] = (self._pending, crc32c(self._pending))
            except ComputeFault as e:
                if not p.enabled:
                    raise
                self._event(e.mechanism, i)
                self.stats.steps_lost += 1
                last = str(e)
                continue
            except DeviceHang:
                self._event("hang", i)
                self._recover_from_hang()
                return
            except _Uncorrectable:
                self._rollback()
                return
            self.next_step = i + 1
            if p.enabled and self.next_step % p.checkpoint_every == 0 and not self.done:
                self._checkpoint()
            return
        raise JobFailed(f"{self.workload.name}: step {i} failed its checks "
                        f"{p.max_attempts} times (the last: {last})")

    def _work(self, i: int) -> dict[str, tuple[Any, np.ndarray]]:
        """Step i's updates, every check it held back passed."""
        self.later = Deferred()
        if not self.protection.enabled:
            return self.workload.step(i, self, self.golden, self.state)
        # Held-back checks let a hit's NaN or inf reach later arithmetic: quietly, as the
        # checks will say what it was.
        with np.errstate(all="ignore"):
            try:
                updates = self.workload.step(i, self, self.golden, self.state)
            except (ComputeFault, DeviceHang):
                raise  # a hang is the power cycle's, whatever else the step met
            except Exception:
                self.later.run()  # a hit a held-back check sees may be what broke the step
                raise
            self.later.run()
        return updates

    # -- what a step may use (flight.compute.workloads.StepContext) ---------------------

    def gemm(self, a: np.ndarray, b: np.ndarray, *,
             right: RightSums | AppendedSums | FloatRightSums | None = None,
             left: AppendedRows | None = None, what: str = "gemm") -> np.ndarray:
        if not self.protection.enabled:
            return self.device.gemm(a, b)
        what = f"step {self.step_in_progress} {what}"
        if a.dtype == np.float32:
            assert right is None or isinstance(right, FloatRightSums)
            return checked_float_gemm(self.device, a, b, right=right, what=what)
        assert right is None or isinstance(right, (RightSums, AppendedSums))
        return checked_gemm(self.device, a, b, right=right, left=left, what=what,
                            later=self.later if self.workload.DEFERS_CHECKS else None)

    @property
    def _check(self) -> Deferred | bool:
        """How the context's own checks run: held for a workload that DEFERS_CHECKS."""
        return self.later if self.workload.DEFERS_CHECKS else True

    def boundary(self, name: str, values: np.ndarray) -> np.ndarray:
        region_name = f"act.{name}"
        try:
            region = self.device.region(region_name)
            if region.shape != values.shape or region.dtype != values.dtype:
                raise KeyError(region_name)
        except Exception:
            region = self.device.alloc(region_name, values.shape, values.dtype)
        if not self.protection.enabled:
            region[...] = values
            self.between(name)
            return region
        crc = copy_crc32c(region, values)
        self.between(name)
        verify(self._check, _check_activation, region, crc,
               f"step {self.step_in_progress}: activation {name!r}")
        return region

    def emit(self, values: np.ndarray) -> None:
        self._pending = np.array(values)  # off the device, into flight computer memory

    def golden_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        return self._checked_rows("golden", self.golden, name, start, stop, ActivationCorrupt)

    def state_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        return self._checked_rows("state", self.state, name, start, stop, StateCorrupt)

    def _checked_rows(self, kind: str, regions: dict[str, np.ndarray], name: str, start: int,
                      stop: int, error: type[ComputeFault]) -> np.ndarray:
        """Rows [start, stop) of a region, their blocks' CRCs checked first."""
        region = regions[name]
        rows = region[start:stop]
        if self.protection.enabled and rows.size:
            row_bytes = region.strides[0]  # regions are C-contiguous
            verify(self._check, _check_rows, self._shields[f"{kind}.{name}"],
                   start * row_bytes, (start + len(rows)) * row_bytes, error,
                   f"step {self.step_in_progress}: {kind} {name!r}")
        return rows

    # -- protection -----------------------------------------------------------------

    def _load(self) -> None:
        """Golden data and fresh state into device memory, shielded. No checkpoint yet: a
        rollback with none restarts at step 0 from fresh state, which is all it would hold."""

        def load() -> None:
            self._load_golden()
            self._alloc_state()

        self._through_hangs(load)
        self.workload.init_state(self.state)
        self._shield_state()
        self.workload.state_committed(self.state)

    def _alloc_state(self) -> None:
        for name, shape in self.workload.state_shapes().items():
            self.state[name] = self.device.alloc(f"state.{name}", shape,
                                                 self.workload.state_dtype(name))

    def _through_hangs(self, action: Callable[[], None]) -> None:
        """`action()`, power-cycling the device and trying again while it hangs."""
        for _ in range(self.protection.max_attempts):
            try:
                action()
                return
            except DeviceHang:
                self._event("hang", self.step_in_progress)
                self.stats.power_cycles += 1
                self.power_cycle()
                self.device.reset()
        raise JobFailed(f"{self.workload.name}: the device hung "
                        f"{self.protection.max_attempts} times in a row")

    def _load_golden(self) -> None:
        for name, values in self.workload.golden().items():
            region = self.device.alloc(f"golden.{name}", values.shape, values.dtype)
            region[...] = values
            self.golden[name] = region
            if self.protection.enabled:
                self._shields[f"golden.{name}"] = self._shield(region)
        self.workload.prepare(self.golden)

    def _shield(self, region: np.ndarray) -> ShieldedRegion:
        p = self.protection
        return ShieldedRegion(region, block_bytes=p.block_bytes, stripe_blocks=p.stripe_blocks,
                              threads=1)

    def _shield_state(self) -> None:
        if self.protection.enabled:
            for name, region in self.state.items():
                self._shields[f"state.{name}"] = self._shield(region)

    def _apply(self, updates: dict[str, tuple[Any, np.ndarray]]) -> None:
        if not self.protection.enabled:
            for name, (index, values) in updates.items():
                self.state[name][index] = values
            self.workload.state_committed(self.state)
            return
        # First check the blocks about to be written, all of them before any write. A hit
        # there would be blessed by the new CRC if the write did not cover it; and since a
        # step may read the state it writes, the updates themselves may carry the hit: the
        # step must run again on repaired state.
        blocks: dict[str, range] = {}
        damaged = False
        before: dict[str, dict[int, np.ndarray]] = {}
        # A write within one block (a row into a KV cache, a token into the outputs), its
        # block and parity sound: written and committed in one kernel call (write).
        within: dict[str, tuple[int, np.ndarray]] = {}
        whole: set[str] = set()  # written from end to end: copied and encoded in one read
        for name, (index, _) in updates.items():
            shield = self._shields[f"state.{name}"]
            base = self.state[name]
            part = base[index]
            span = self._span(base, part)
            if span is not None and shield.within_block(*span) \
                    and shield.write_check(*span) == 0:
                within[name] = span[0], part
                continue
            if span == (0, base.nbytes):
                whole.add(name)
            blocks[name] = touched = self._blocks_of(base, part, shield)
            # Copies of what a partial write replaces (checked as they are taken): the
            # parity then follows the change alone, not a re-read of the whole stripe.
            before[name], bad = shield.copy_for_write(touched)
            if bad:
                damaged = True
                if not shield.repair(bad).ok:
                    self._event("scrub", self.step_in_progress)
                    raise _Uncorrectable(name)
        if damaged:
            raise StateCorrupt(f"step {self.step_in_progress}: state hit during the step")
        for name, (index, values) in updates.items():
            shield = self._shields[f"state.{name}"]
            if name in within:
                offset, part = within[name]
                new = values
                if not _exactly(new, part):
                    new = np.empty_like(part)  # the bytes as the region holds them
                    new[...] = values
                shield.write(offset, new, checked=True)  # checked just above
                continue
            if name in whole and _exactly(values, self.state[name]):
                shield.replace(values)  # every block checked above
                continue
            self.state[name][index] = values
            report = shield.commit(blocks[name], before[name])
            if report.repaired or report.uncorrectable:
                self._event("scrub", self.step_in_progress)
            if report.uncorrectable:
                raise _Uncorrectable(name)
        self.workload.state_committed(self.state)

    @staticmethod
    def _span(base: np.ndarray, part: Any) -> tuple[int, int] | None:
        """The bytes [start, stop) of `base` that `part` (`base[index]`) covers, when they
        are one contiguous run (a slice of rows); None otherwise."""
        if not isinstance(part, np.ndarray) or not part.flags.c_contiguous or not part.size \
                or not np.may_share_memory(part, base):
            return None
        start = part.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        return start, start + part.nbytes

    @staticmethod
    def _blocks_of(base: np.ndarray, part: np.ndarray, shield: ShieldedRegion) -> range:
        start = part.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        first = start // shield.block_bytes
        last = (start + max(part.nbytes, 1) - 1) // shield.block_bytes
        return range(first, last + 1)

    def _scrub(self, state_only: bool = False) -> None:
        step = self.step_in_progress
        for key, shield in self._shields.items():
            if state_only and not key.startswith("state."):
                continue
            bad = shield.verify()
            if not bad and not shield.bad_parity():
                continue
            report = shield.repair(bad)
            self.stats.blocks_repaired += len(report.repaired)
            self._event("scrub", step)
            if report.uncorrectable:
                if key.startswith("golden."):
                    self._event("reload", step)
                    self.stats.reloads += 1
                    self._reload_golden(key.removeprefix("golden."))
                else:
                    raise _Uncorrectable(key)

    def _reload_golden(self, name: str) -> None:
        region = self.golden[name]
        region[...] = self.workload.golden()[name]
        self._shields[f"golden.{name}"] = self._shield(region)

    def resume(self) -> None:
        """After a reboot: carry on from the job's last checkpoint, when it has one that
        holds all the job had (outputs live in memory, so a checkpoint taken while the
        job held outputs cannot bring them back: the job starts again). Checkpoints of
        other jobs, and damaged ones, are refused and noted in `refused`."""
        restored = self._restore()
        if restored is not None and restored.metadata.get("outputs") == 0:
            self._install(restored)
            self._shield_state()
            self.workload.state_committed(self.state)

    def take_refused(self) -> list[str]:
        out, self.refused = self.refused, []
        return out

    def _checkpoint(self) -> None:
        assert self.store is not None
        if not self.state:
            return  # nothing evolves: committed outputs and the step count are all there is
        shields = {name: self._shields[f"state.{name}"] for name in self.state}
        try:
            self.store.save(shields, {"step": self.next_step, "workload": self.workload.name,
                                      "outputs": len(self.outputs)})
        except CheckpointError:
            self._event("scrub", self.step_in_progress)
            raise _Uncorrectable("state") from None
        self.stats.checkpoints += 1

    def _rollback(self) -> None:
        """State back to the last checkpoint that verifies, or to step 0."""
        self._event("rollback", self.step_in_progress)
        self.stats.rollbacks += 1
        before = self.next_step
        if not self.state:
            return  # steps are independent: rerun the current one, keep what was committed
        restored = self._restore()
        if restored is not None:
            if restored.fell_back:
                self._event("checkpoint_fallback", self.step_in_progress)
            self._install(restored)
        else:
            for region in self.state.values():
                region[...] = 0.0
            self.workload.init_state(self.state)
            self.next_step = 0
        self._shield_state()
        self.workload.state_committed(self.state)
        self.stats.steps_lost += max(before - self.next_step, 0)

    def _restore(self) -> Any:
        """The newest of this job's checkpoints that verifies, or None."""
        if self.store is None:
            return None
        try:
            restored = self.store.restore()
        except CheckpointError as e:
            self.refused += unusable(e.rejected)
            return None
        self.refused += unusable(restored.rejected)
        arrays = restored.arrays
        if set(arrays) != set(self.state) or any(arrays[n].shape != self.state[n].shape
                                                 for n in self.state):
            # The owner's digest covers the workload, so this is damage: refuse, not crash.
            self.refused.append(f"the checkpoint's buffers {sorted(arrays)} are not this "
                                "job's state")
            return None
        return restored

    def _install(self, restored: Any) -> None:
        for name, region in self.state.items():
            region[...] = restored.arrays[name]
        self.next_step = int(restored.metadata["step"])

    def _recover_from_hang(self) -> None:
        self.stats.power_cycles += 1
        self.power_cycle()
        self.device.reset()

        def reload() -> None:
            self.golden.clear()
            self._shields.clear()
            self._load_golden()
            self._alloc_state()

        self._through_hangs(reload)
        if not self.protection.enabled:
            raise JobFailed(f"{self.workload.name}: the device hung and the job has no "
                            "checkpoint to resume from")
        self._rollback()

    def _event(self, mechanism: str, step: int) -> None:
        self.stats.events.append((mechanism, step))
