"""Radiation: single-event upsets in accelerator memory and storage, logic upsets in
GEMMs, accelerator hangs and latch-ups, as Poisson processes on the sim clock, at rates
that follow the environment along the orbit (sim/environment.py: AP8's trapped protons
at the mission epoch, galactic cosmic rays as a floor).

Each effect has a cross-section: the rate is the cross-section times the flux of protons
above 30 MeV (trapped plus the cosmic-ray floor, cm^-2 s^-1), the threshold above which
nuclear reactions dominate proton upsets in modern parts. Memory cross-sections per bit
come from the memory type (MEMORY_TYPES; a definition may give its part's own). They
are representative of published proton tests of commercial parts of each kind, not a
measurement of any one part: put the figure from your part's radiation report in the
definition.

What is hit, each a Poisson process over the elapsed time:
- every accelerator memory region, per bit; 10 % of upsets are multi-bit bursts of 2-8
  adjacent bits in one word (MBUs);
- files in the flight computer's storage (job checkpoints), per bit;
- GEMMs, a logic upset per GEMM with probability proportional to its multiply-adds;
- the accelerator as a whole: a hang (single-event functional interrupt) that only a
  power cycle clears; a switched load: a latch-up.
In the orbits the sim flies, a memory sees one upset in years: `acceleration` multiplies
the per-bit and per-multiply-add rates so that tests and short sims see upsets at all,
and `hang_acceleration` the hangs'. The model keeps what would have happened without
them (`expected`), which the mission report shows beside what was injected.
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
from sim.environment import GCR_FLUX, SAA_FLUX

SECONDS_PER_DAY = 86400.0

# Proton upset cross-section per bit above 30 MeV, cm^2, by memory type: orders of
# magnitude from published proton tests of commercial parts.
MEMORY_TYPES = {
    "dram": 1e-17,  # DDR4/DDR5 and HBM stacks: small cells, little charge collected per bit
    "sram": 1e-14,  # bulk planar SRAM at 28-65 nm
    "sram-finfet": 1e-15,  # FinFET SRAM, 16 nm and below
    "flash": 1e-17,  # NAND flash, charge kept on a floating gate
}


@dataclass(frozen=True, slots=True)
class RadiationConfig:
    memory: str = "dram"  # the accelerator's memory (HBM on an H100-class part)
    storage: str = "flash"  # the flight computer's file store
    memory_cross_section_cm2: float | None = None  # per bit; None: the memory type's
    solar: str = "min"  # AP8MIN or AP8MAX: more trapped protons at solar minimum
    burst_fraction: float = 0.1
    logic_upsets_per_mac: float = 1e-21  # per multiply-add, per cm^-2 s^-1 of flux
    sefi_cross_section_cm2: float = 1e-9  # accelerator hangs, per device
    sel_cross_section_cm2: float = 2e-10  # latch-ups, per switched load
    acceleration: float = 1.0
    hang_acceleration: float = 1.0

    def __post_init__(self) -> None:
        for name in ("logic_upsets_per_mac", "sefi_cross_section_cm2",
                     "sel_cross_section_cm2", "acceleration", "hang_acceleration"):
            if not getattr(self, name) >= 0.0:
                raise InputError(f"radiation {name} must be >= 0, got {getattr(self, name)}")
        for name in ("memory", "storage"):
            if getattr(self, name) not in MEMORY_TYPES:
                raise InputError(f"radiation {name} {getattr(self, name)!r} is not a memory "
                                 f"type (one of {', '.join(MEMORY_TYPES)})")
        sigma = self.memory_cross_section_cm2
        if sigma is not None and not sigma >= 0.0:
            raise InputError(f"radiation memory_cross_section_cm2 must be >= 0, got {sigma}")
        if self.solar not in ("min", "max"):
            raise InputError(f"radiation solar must be 'min' or 'max', got {self.solar!r}")
        if not 0.0 <= self.burst_fraction <= 1.0:
            raise InputError(f"radiation burst_fraction must be in 0..1, got {self.burst_fraction}")

    @property
    def memory_sigma_cm2(self) -> float:
        sigma = self.memory_cross_section_cm2
        return MEMORY_TYPES[self.memory] if sigma is None else sigma


class RadiationModel:
    def __init__(self, config: RadiationConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.trapped = 0.0  # cm^-2 s^-1 of trapped protons here and now (set_flux)
        self.flux = GCR_FLUX  # all of it, the cosmic-ray floor included
        self.in_saa = False
        self.saa_s = 0.0
        self.exposed_s = 0.0
        self.fluence = 0.0  # cm^-2, trapped and floor, over exposed_s
        self.injected: collections.Counter[str] = collections.Counter()
        self.expected: collections.Counter[str] = collections.Counter()  # unaccelerated

    def set_flux(self, trapped: float) -> None:
        """The environment here: `trapped` protons above 30 MeV per cm^2 per second."""
        self.trapped = trapped
        self.flux = trapped + GCR_FLUX
        self.in_saa = trapped > SAA_FLUX

    def upsets_per_bit_s(self, memory: str | None = None) -> float:
        """The unaccelerated upset rate per bit here, of the accelerator's memory or of
        another memory type."""
        c = self.config
        sigma = c.memory_sigma_cm2 if memory is None else MEMORY_TYPES[memory]
        return sigma * self.flux

    def step(self, dt_s: float, device: ComputeDevice | None,
             storage_dirs: list[Path]) -> None:
        """Let dt_s of radiation fall on the device's memory and on stored files."""
        c = self.config
        self.exposed_s += dt_s
        self.fluence += self.flux * dt_s
        if self.in_saa:
            self.saa_s += dt_s
        per_bit_s = self.upsets_per_bit_s()
        if device is not None:
            for name, region in device.regions().items():
                mean = per_bit_s * region.nbytes * 8 * dt_s
                self.expected["memory"] += mean
                count = self.rng.poisson(mean * c.acceleration)
                for _ in range(count):
                    self._upset(region)
                    self.injected[f"memory.{name.split('.')[0]}"] += 1
            hang_mean = c.sefi_cross_section_cm2 * self.flux * dt_s
            self.expected["hang"] += hang_mean
            hang_p = hang_mean * c.hang_acceleration
            if hang_p and self.rng.random() < hang_p and hasattr(device, "hung"):
                device.hung = True
                self.injected["hang"] += 1
        self.step_storage(dt_s, storage_dirs)

    def step_storage(self, dt_s: float, storage_dirs: list[Path]) -> None:
        """Let dt_s of radiation fall on stored files."""
        if not storage_dirs:
            return
        per_bit_s = self.upsets_per_bit_s(self.config.storage)
        for directory in storage_dirs:
            files = sorted(p for p in directory.rglob("*") if p.is_file())
            for path in files:
                size = path.stat().st_size
                mean = per_bit_s * size * 8 * dt_s
                self.expected["storage"] += mean
                count = self.rng.poisson(mean * self.config.acceleration) if size else 0
                if count:
                    raw = bytearray(path.read_bytes())
                    for _ in range(count):
                        raw[int(self.rng.integers(0, size))] ^= 1 << int(self.rng.integers(0, 8))
                    path.write_bytes(bytes(raw))
                    self.injected["storage"] += count

    def latchup(self, dt_s: float, loads: list[int]) -> int | None:
        """A single-event latch-up on one of the powered `loads`, or None. An event of a
        whole device, at its own rate, not accelerated."""
        if not loads or not self.config.sel_cross_section_cm2:
            return None
        p = self.config.sel_cross_section_cm2 * self.flux * dt_s * len(loads)
        self.expected["latchup"] += p
        if self.rng.random() < p:
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
        p = self.config.logic_upsets_per_mac * macs * self.flux
        self.expected["logic"] += p
        p *= self.config.acceleration
        return bool(p) and self.rng.random() < p

    def _upset(self, region: np.ndarray) -> None:
        """One upset in a 64-bit memory word of `region` (a region whose size is no
        multiple of 8 octets: in a word of 32 or 8 bits)."""
        raw = region.reshape(-1).view(np.uint8)
        unit = next(u for u in (np.uint64, np.uint32, np.uint8)
                    if raw.size % np.dtype(u).itemsize == 0)
        words = raw.view(unit)
        bits = 8 * np.dtype(unit).itemsize
        word = int(self.rng.integers(0, words.size))
        if self.rng.random() < self.config.burst_fraction:
            width = int(self.rng.integers(2, min(9, bits + 1)))
            start = int(self.rng.integers(0, bits - width + 1))
            mask = ((1 << width) - 1) << start
        else:
            mask = 1 << int(self.rng.integers(0, bits))
        words[word] ^= unit(mask)


class IrradiatedDevice(DeviceWrapper):
    """A compute device under radiation: GEMMs may come back with a logic upset, and a hung
    device refuses work. Memory upsets are the RadiationModel's, between operations."""

    def __init__(self, device: Any, radiation: RadiationModel) -> None:
        super().__init__(device, f"{device.name} (irradiated)")
        self.radiation = radiation
        self.armed_products = 0  # products to upset whatever the rate (sim.inject)

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if self.hung:
            raise DeviceHang(f"{self.name}: gemm: device not responding")
        c = self.inner.gemm(a, b, out)
        armed = self.armed_products > 0
        if armed or self.radiation.logic_upset(c.size * a.shape[-1]):
            self.armed_products -= armed
            self.radiation._upset(c)
            self.radiation.injected["logic.gemm"] += 1
        return c
