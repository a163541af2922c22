"""Targeted fault injection into a compute device, its memory and its checkpoints.

One Injection strikes once, at a chosen step: a bit flip in golden data (weights),
a burst across three blocks of one parity stripe (beyond the parity's power), a flip in
an activation while it waits in memory, a flipped bit in a GEMM's output (a logic upset),
a flip in committed state, a corrupted newest checkpoint followed by a hang, or a hang.

The injector acts through the same two seams radiation uses: a wrapped device (for
faults inside an operation) and the `between(phase)` call the job runner makes whenever
data sits idle in memory. It reads nothing of the flight software.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hal.compute import ComputeDevice, DeviceHang
from sim.device import DeviceWrapper

KINDS = ("weight", "weight_burst", "activation", "gemm", "state", "checkpoint", "hang")


@dataclass(frozen=True, slots=True)
class Injection:
    kind: str
    step: int
    seed: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown injection kind {self.kind!r} (known: {', '.join(KINDS)})")


def flip_bit(array: np.ndarray, rng: np.random.Generator, byte: int | None = None) -> int:
    """Flip one random bit (in `byte` when given) of an array's memory; returns the byte."""
    raw = array.reshape(-1).view(np.uint8)
    if byte is None:
        byte = int(rng.integers(0, raw.size))
    raw[byte] ^= np.uint8(1 << int(rng.integers(0, 8)))
    return byte


class FaultInjector(DeviceWrapper):
    """Wraps a device and strikes once, as `injection` says."""

    def __init__(self, device: ComputeDevice, injection: Injection, *,
                 checkpoint_dir: str | Path | None = None, block_bytes: int = 4096,
                 stripe_blocks: int = 8) -> None:
        super().__init__(device, f"faulty-{device.name}")
        self.injection = injection
        self.rng = np.random.default_rng(injection.seed)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.block_bytes = block_bytes
        self.stripe_blocks = stripe_blocks
        self.step = -1
        self.fired = False
        self.hang_armed = False

    # -- the radiation seam ---------------------------------------------------------

    def between(self, phase: str) -> None:
        if phase.startswith("step "):
            self.step = int(phase.split()[1])
        if self.fired or self.step != self.injection.step:
            return
        kind = self.injection.kind
        if kind == "activation" and not phase.startswith("step "):
            self._fire(self.inner.region(f"act.{phase}"))
        elif kind == "weight" and phase.startswith("step "):
            self._fire(self._pick("golden."))  # every workload has golden data
        elif kind == "state" and phase.startswith("step "):
            target = self._pick("state.")
            if target is None:
                self.fired = True  # a workload without state: nothing there to hit
            else:
                self._fire(target)
        elif kind == "weight_burst" and phase.startswith("step "):
            self._burst(self._largest("golden."))
        elif kind == "checkpoint" and phase.startswith("step "):
            self._corrupt_newest_checkpoint()
            self.hang_armed = True
            self.fired = True
        elif kind == "hang" and phase.startswith("step "):
            self.hang_armed = True
            self.fired = True

    # -- the device seam -------------------------------------------------------------

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if self.hang_armed:
            self.hang_armed = False
            self.hung = True
            raise DeviceHang(f"{self.name}: gemm: device not responding")
        c = self.inner.gemm(a, b, out)
        if (not self.fired and self.injection.kind == "gemm"
                and self.step == self.injection.step):
            self._fire(c)
        return c

    # -- internals ------------------------------------------------------------------

    def _fire(self, array: np.ndarray) -> None:
        flip_bit(array, self.rng)
        self.fired = True

    def _pick(self, prefix: str) -> np.ndarray | None:
        names = sorted(n for n in self.inner.regions() if n.startswith(prefix))
        if not names:
            return None
        return self.inner.region(names[int(self.rng.integers(0, len(names)))])

    def _largest(self, prefix: str) -> np.ndarray:
        regions = {n: r for n, r in self.inner.regions().items() if n.startswith(prefix)}
        return max(regions.values(), key=lambda r: r.nbytes)

    def _burst(self, array: np.ndarray) -> None:
        """One flip in each of three blocks of one stripe: more than P+Q can rebuild."""
        blocks = -(-array.nbytes // self.block_bytes)
        stripe = int(self.rng.integers(0, -(-blocks // self.stripe_blocks)))
        first = stripe * self.stripe_blocks
        members = list(range(first, min(first + self.stripe_blocks, blocks)))
        for block in self.rng.permutation(members)[:3]:
            start = int(block) * self.block_bytes
            size = min(self.block_bytes, array.nbytes - start)
            flip_bit(array, self.rng, start + int(self.rng.integers(0, size)))
        self.fired = True

    def _corrupt_newest_checkpoint(self) -> None:
        if self.checkpoint_dir is None:
            return
        slots = sorted(self.checkpoint_dir.glob("slot-*.commit"),
                       key=lambda p: p.stat().st_mtime_ns)
        if not slots:
            return
        data = slots[-1].with_suffix(".data")
        raw = bytearray(data.read_bytes())
        if raw:
            raw[int(self.rng.integers(0, len(raw)))] ^= 1 << int(self.rng.integers(0, 8))
            data.write_bytes(bytes(raw))


class UpsetsOnDemand(DeviceWrapper):
    """A device whose memory a test strikes when it asks, from another thread: the bench's
    home for the upsets the sim's radiation model makes. A strike waits for the flight
    software's next product on the device and lands just before it, between its
    operations, as radiation lands in the sim; each is one flipped bit in a random word
    of a random region (what the job holds: weights, activations, state). Products can
    be struck too: a flipped bit in the output of each of the next few (logic upsets)."""

    def __init__(self, device: ComputeDevice, seed: int = 0) -> None:
        super().__init__(device, f"{device.name} (upsets on demand)")
        self.rng = np.random.default_rng(seed)
        self._ready = threading.Condition()
        self._pending = 0
        self._landed = 0
        self.struck = 0  # upsets landed so far
        self.armed_products = 0  # products whose output gets a flipped bit
        self.products_struck = 0

    def strike(self, count: int = 1, timeout_s: float = 10.0) -> int:
        """`count` upsets at the device's next product; returns how many landed (none
        when no product came within `timeout_s`, or none while no job holds memory)."""
        with self._ready:
            self._pending, self._landed = count, -1
            if not self._ready.wait_for(lambda: self._landed >= 0, timeout_s):
                self._pending, self._landed = 0, 0
            return self._landed

    def strike_products(self, count: int = 1) -> None:
        """A flipped bit in the output of each of the device's next `count` products (a
        logic upset)."""
        with self._ready:
            self.armed_products += count

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if self._pending:
            self._land()
        c = self.inner.gemm(a, b, out)
        if self.armed_products:
            with self._ready:
                if self.armed_products:
                    self.armed_products -= 1
                    self.products_struck += 1
                    flip_bit(c, self.rng)
        return c

    def _land(self) -> None:
        with self._ready:
            regions = list(self.inner.regions().values())
            landed = 0
            for _ in range(self._pending if regions else 0):
                flip_bit(regions[int(self.rng.integers(0, len(regions)))], self.rng)
                landed += 1
            self._pending, self._landed = 0, landed
            self.struck += landed
            self._ready.notify_all()
