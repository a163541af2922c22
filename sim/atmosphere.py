"""Drag: the atmosphere's density from NRLMSIS 2.1 and the decay of a circular orbit.

Density. sim/data/msis.npz holds NRLMSIS 2.1's total mass density (through `pymsis`),
averaged over the globe, local time and the seasons, from 100 to 1500 km, for F10.7 of
65 to 250 solar flux units at Ap 15 (`python -m sim.data.make_tables` regenerates it).
Between its points, log density is interpolated linearly in altitude and in F10.7. The
daily swing over an orbit (the diurnal bulge, a factor of a few at 400 km) averages out
in what decays the orbit, so the sim takes the mean.

Decay. On a circular orbit drag takes energy at the rate that shrinks the semi-major
axis as da/dt = -rho B sqrt(mu a), with B = Cd A / m the ballistic coefficient (King-
Hele, "Satellite Orbits in an Atmosphere"; Vallado 9.6). The lifetime is the time to
sink from here to REENTRY_KM, integrated over the density profile at the set F10.7 (the
solar cycle is not forecast: a lifetime is quoted at one activity, as studies do).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hal.errors import InputError
from sim.orbit import MU_EARTH_KM3_S2, R_EARTH_KM

TABLE = Path(__file__).with_name("data") / "msis.npz"
REENTRY_KM = 150.0  # below it an orbit lasts hours: the sim counts it as re-entered
SOLAR_CYCLE_F107 = {"min": 70.0, "max": 200.0}  # sfu, with AP8MIN / AP8MAX
DEFAULT_DRAG_COEFFICIENT = 2.2


@functools.cache
def _table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(TABLE) as data:
        return data["alt_km"], data["f107"], data["log10_density"]


@functools.cache
def _profile(f107: float) -> np.ndarray:
    """log10 density on the table's altitudes, at one F10.7."""
    alts, f107s, log_rho = _table()
    return np.array([np.interp(f107, f107s, log_rho[:, k]) for k in range(len(alts))])


def check_f107(f107: float) -> float:
    lo, hi = _table()[1][[0, -1]]
    if not lo <= f107 <= hi:
        raise InputError(f"F10.7 {f107:g} sfu is outside the atmosphere model's "
                         f"{lo:g}..{hi:g} sfu")
    return f107


def density_kg_m3(altitude_km: float, f107: float) -> float:
    """The mean density of the atmosphere at an altitude and solar activity."""
    alts = _table()[0]
    if not alts[0] <= altitude_km <= alts[-1]:
        return 0.0 if altitude_km > alts[-1] else 10.0 ** float(_profile(f107)[0])
    return 10.0 ** float(np.interp(altitude_km, alts, _profile(check_f107(f107))))


@dataclass(frozen=True, slots=True)
class Drag:
    """What drag does to a satellite of ballistic coefficient B = Cd A / m (m^2/kg)."""

    ballistic_m2_kg: float
    f107: float

    def __post_init__(self) -> None:
        if not self.ballistic_m2_kg >= 0.0:
            raise InputError(f"ballistic coefficient must be >= 0, got {self.ballistic_m2_kg}")
        check_f107(self.f107)

    @classmethod
    def of(cls, mass_kg: float, area_m2: float, f107: float,
           drag_coefficient: float = DEFAULT_DRAG_COEFFICIENT) -> Drag:
        if not mass_kg > 0.0:
            raise InputError(f"mass_kg must be > 0, got {mass_kg}")
        if not area_m2 >= 0.0:
            raise InputError(f"drag_area_m2 must be >= 0, got {area_m2}")
        if not drag_coefficient > 0.0:
            raise InputError(f"drag_coefficient must be > 0, got {drag_coefficient}")
        return cls(drag_coefficient * area_m2 / mass_kg, f107)

    def decay_km_s(self, altitude_km: float) -> float:
        """How fast the orbit sinks (km/s, positive down): rho B sqrt(mu a)."""
        a_m = (R_EARTH_KM + altitude_km) * 1e3
        rho = density_kg_m3(altitude_km, self.f107)
        return rho * self.ballistic_m2_kg * math.sqrt(MU_EARTH_KM3_S2 * 1e9 * a_m) / 1e3

    def lifetime_s(self, altitude_km: float, step_km: float = 0.5) -> float:
        """Time to sink from altitude_km to REENTRY_KM: the integral of dh over the decay
        rate, by the midpoint rule on step_km slices (inf without drag)."""
        if altitude_km <= REENTRY_KM:
            return 0.0
        if self.ballistic_m2_kg == 0.0:
            return math.inf
        slices = max(1, math.ceil((altitude_km - REENTRY_KM) / step_km))
        dh = (altitude_km - REENTRY_KM) / slices
        total = 0.0
        for k in range(slices):
            rate = self.decay_km_s(REENTRY_KM + (k + 0.5) * dh)
            if rate <= 0.0:
                return math.inf
            total += dh / rate
        return total
