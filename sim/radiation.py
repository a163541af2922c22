"""Radiation: single-event upsets in accelerator memory and storage, logic upsets in
GEMMs, and accelerator hangs, as Poisson processes on the sim clock.

Rate. Commercial memories in low Earth orbit see about 1e-10 to 1e-7 upsets per bit per
day (the range reported from on-board memory SEU experiments such as those flown on the
UoSAT and PoSAT microsatellites); the default here, 1e-8, sits in the middle of it.
Inside the South Atlantic Anomaly, where the inner proton belt dips to a few hundred
km, the rate is multiplied (default 30x: a few percent of the orbit there carries most
of the upsets, as those experiments saw). The SAA is taken as the box 50 S-10 S,
90 W-30 E, a coarse outline of the proton flux at 500-1000 km.

What is hit, each a Poisson process over the elapsed time:
- every accelerator memory region, per bit; 10 % of upsets are multi-bit bursts of 2-8
  adjacent bits in one word (MBUs);
- files in the flight computer's storage (job checkpoints), per bit;
- GEMMs, a logic upset per GEMM with probability proportional to its multiply-adds;
- the accelerator as a whole: a hang (single-event functional interrupt) that only a
  power cycle clears.
`acceleration` multiplies the per-bit and per-multiply-add rates, so tests and short sims
see upsets at all; a hang is an event of the whole device, so its rate is given as is.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hal.compute import ComputeDevice, DeviceHang
from hal.errors import InputError
from sim.device import DeviceWrapper

SECONDS_PER_DAY = 86400.0
SAA_LAT_DEG = (-50.0, -10.0)
SAA_LON_DEG = (-90.0, 30.0)


def in_saa(lat_deg: float, lon_deg: float) -> bool:
    return (SAA_LAT_DEG[0] <= lat_deg <= SAA_LAT_DEG[1]
            and SAA_LON_DEG[0] <= lon_deg <= SAA_LON_DEG[1])


@dataclass(frozen=True, slots=True)
class RadiationConfig:
    upsets_per_bit_day: float = 1e-8
    saa_factor: float = 30.0
    burst_fraction: float = 0.1
    logic_upsets_per_mac: float = 1e-20  # per multiply-add, outside the SAA
    hangs_per_day: float = 0.05  # SEFIs needing a power cycle, outside the SAA
    latchups_per_day: float = 0.02  # SELs on a switched load, outside the SAA
    acceleration: float = 1.0

    def __post_init__(self) -> None:
        for name in ("upsets_per_bit_day", "saa_factor", "logic_upsets_per_mac",
                     "hangs_per_day", "latchups_per_day", "acceleration"):
            if not getattr(self, name) >= 0.0:
                raise InputError(f"radiation {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.burst_fraction <= 1.0:
            raise InputError(f"radiation burst_fraction must be in 0..1, got {self.burst_fraction}")


class RadiationModel:
    def __init__(self, config: RadiationConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.in_saa = False
        self.saa_s = 0.0
        self.injected: collections.Counter[str] = collections.Counter()

    def factor(self) -> float:
        c = self.config
        return c.acceleration * (c.saa_factor if self.in_saa else 1.0)

    def step(self, dt_s: float, device: ComputeDevice | None,
             storage_dirs: list[Path]) -> None:
        """Let dt_s of radiation fall on the device's memory and on stored files."""
        c = self.config
        if self.in_saa:
            self.saa_s += dt_s
        per_bit_s = c.upsets_per_bit_day / SECONDS_PER_DAY * self.factor()
        if device is not None:
            for name, region in device.regions().items():
                count = self.rng.poisson(per_bit_s * region.nbytes * 8 * dt_s)
                for _ in range(count):
                    self._upset(region)
                    self.injected[f"memory.{name.split('.')[0]}"] += 1
            saa = c.saa_factor if self.in_saa else 1.0
            hang_p = c.hangs_per_day / SECONDS_PER_DAY * saa * dt_s
            if hang_p and self.rng.random() < hang_p and hasattr(device, "hung"):
                device.hung = True
                self.injected["hang"] += 1
        self.step_storage(dt_s, storage_dirs)

    def step_storage(self, dt_s: float, storage_dirs: list[Path]) -> None:
        """Let dt_s of radiation fall on stored files."""
        per_bit_s = self.config.upsets_per_bit_day / SECONDS_PER_DAY * self.factor()
        for directory in storage_dirs:
            files = sorted(p for p in directory.rglob("*") if p.is_file())
            for path in files:
                size = path.stat().st_size
                count = self.rng.poisson(per_bit_s * size * 8 * dt_s) if size else 0
                if count:
                    raw = bytearray(path.read_bytes())
                    for _ in range(count):
                        raw[int(self.rng.integers(0, size))] ^= 1 << int(self.rng.integers(0, 8))
                    path.write_bytes(bytes(raw))
                    self.injected["storage"] += count

    def latchup(self, dt_s: float, loads: list[int]) -> int | None:
        """A single-event latch-up on one of the powered `loads`, or None. Like a hang, an
        event of a whole device: its rate is not accelerated."""
        if not loads or not self.config.latchups_per_day:
            return None
        saa = self.config.saa_factor if self.in_saa else 1.0
        if self.rng.random() < self.config.latchups_per_day / SECONDS_PER_DAY * saa * dt_s:
            self.injected["latchup"] += 1
            return loads[int(self.rng.integers(0, len(loads)))]
        return None

    def strike(self, device: ComputeDevice, count: int = 1) -> int:
        """`count` upsets now, each in a random region of the device's memory (as the
        Poisson process would place them); returns how many landed (0 with no memory)."""
        regions = list(device.regions().items())
        landed = 0
        for _ in range(count if regions else 0):
            name, region = regions[int(self.rng.integers(0, len(regions)))]
            self._upset(region)
            self.injected[f"memory.{name.split('.')[0]}"] += 1
            landed += 1
        return landed

    def logic_upset(self, macs: int) -> bool:
        p = self.config.logic_upsets_per_mac * macs * self.factor()
        return bool(p) and self.rng.random() < p

    def _upset(self, region: np.ndarray) -> None:
        words = region.reshape(-1).view(np.uint64)
        word = int(self.rng.integers(0, words.size))
        if self.rng.random() < self.config.burst_fraction:
            width = int(self.rng.integers(2, 9))
            start = int(self.rng.integers(0, 64 - width + 1))
            mask = ((1 << width) - 1) << start
        else:
            mask = 1 << int(self.rng.integers(0, 64))
        words[word] ^= np.uint64(mask)


class IrradiatedDevice(DeviceWrapper):
    """A compute device under radiation: GEMMs may come back with a logic upset, and a hung
    device refuses work. Memory upsets are the RadiationModel's, between operations."""

    def __init__(self, device: Any, radiation: RadiationModel) -> None:
        super().__init__(device, f"{device.name} (irradiated)")
        self.radiation = radiation

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if self.hung:
            raise DeviceHang(f"{self.name}: gemm: device not responding")
        c = self.inner.gemm(a, b, out)
        if self.radiation.logic_upset(a.shape[0] * a.shape[1] * b.shape[1]):
            self.radiation._upset(c)
            self.radiation.injected["logic.gemm"] += 1
        return c
