"""Electrical power: a sun-tracking solar array and a Li-ion battery.

The battery is an open-circuit-voltage curve of state of charge plus a series
resistance; state of charge is Coulomb-counted from the current that satisfies
P = V·I at the terminals. Charging is constant-current/constant-voltage: the charge
regulator never lets the terminal rise above 4.2 V a cell, and shunts what the battery
cannot take.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

SOLAR_CONSTANT_W_M2 = 1361.0

# NMC cell open-circuit voltage against state of charge (typical 18650 curve).
_OCV_SOC = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_OCV_CELL_V = (3.00, 3.30, 3.45, 3.55, 3.62, 3.68, 3.74, 3.81, 3.89, 3.98, 4.07, 4.18)


def cell_ocv_v(soc: float) -> float:
    soc = min(max(soc, 0.0), 1.0)
    i = min(bisect.bisect_right(_OCV_SOC, soc), len(_OCV_SOC) - 1)
    s0, s1 = _OCV_SOC[i - 1], _OCV_SOC[i]
    v0, v1 = _OCV_CELL_V[i - 1], _OCV_CELL_V[i]
    return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


@dataclass(slots=True)
class SolarArray:
    """A sun-tracking array: its normal follows the sun to within a pointing error, and its
    cells lose a fixed fraction of their efficiency each year (radiation damage)."""

    area_m2: float = 3.2
    efficiency: float = 0.30  # at beginning of life
    incidence_deg: float = 3.0  # tracking error: the sun's angle off the array normal
    degradation_per_year: float = 0.025
    age_years: float = 0.0  # at the start of the simulation

    def power_w(self, illumination: float, elapsed_s: float = 0.0,
                flux_w_m2: float = SOLAR_CONSTANT_W_M2) -> float:
        """Power for the visible fraction of the sun's disc, under the sun's flux at the
        satellite's distance (the solar constant at 1 AU)."""
        age = self.age_years + elapsed_s / (365.25 * 86400.0)
        return (flux_w_m2 * self.area_m2 * self.efficiency
                * (1.0 - self.degradation_per_year) ** age
                * math.cos(math.radians(self.incidence_deg)) * illumination)


@dataclass(slots=True)
class Battery:
    # Sized for the bus, not for 700 W of compute through a long eclipse (about 740 Wh:
    # a noon-midnight eclipse at full compute would take it below 35 %). As on real
    # compute satellites, the compute budget has to act in eclipse.
    capacity_ah: float = 25.0
    cells_series: int = 8
    max_cell_v: float = 4.2  # the charge regulator's constant-voltage limit
    resistance_ohm: float = 0.04
    soc: float = 0.9
    current_a: float = field(default=0.0)  # positive while charging

    def ocv_v(self) -> float:
        return self.cells_series * cell_ocv_v(self.soc)

    def terminal_v(self) -> float:
        return self.ocv_v() + self.current_a * self.resistance_ohm

    def step(self, power_w: float, dt_s: float) -> float:
        """Charge (power_w > 0) or discharge for dt_s; returns the power the battery
        actually took (less than asked when full, or when it cannot supply the load)."""
        if power_w > 0.0 and self.soc >= 1.0:
            self.current_a = 0.0
            return 0.0
        ocv = self.ocv_v()
        r = self.resistance_ohm
        # R·I² + OCV·I − P = 0; a discharge beyond OCV²/4R cannot be delivered.
        disc = ocv * ocv + 4.0 * r * power_w
        if disc < 0.0:
            disc = 0.0
        current = (-ocv + math.sqrt(disc)) / (2.0 * r)
        if current > 0.0:  # constant voltage: the terminal stays at or below the limit
            current = min(current, max(0.0, (self.cells_series * self.max_cell_v - ocv) / r))
        if current < 0.0 and self.soc <= 0.0:
            current = 0.0
        self.current_a = current
        self.soc = min(max(self.soc + current * dt_s / 3600.0 / self.capacity_ah, 0.0), 1.0)
        return current * (ocv + current * r)
