"""A circular orbit and the Earth's cylindrical shadow.

Period from Kepler's third law; the sun-synchronous inclination from the J2 nodal
drift; eclipse from the satellite's position relative to the sun direction, which
sits at `beta_deg` above the orbit plane. (Precise sun ephemeris, LTAN and the
penumbra come with the full orbit model.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MU_EARTH_KM3_S2 = 398600.4418
R_EARTH_KM = 6378.137
J2 = 1.08262668e-3
TROPICAL_YEAR_S = 365.2421897 * 86400.0
# The node must turn once per tropical year, eastward, to keep its angle to the sun.
SSO_NODAL_RATE_RAD_S = 2.0 * math.pi / TROPICAL_YEAR_S
EARTH_ROTATION_RAD_S = 7.2921159e-5
MIN_ALTITUDE_KM = 100.0
MAX_ALTITUDE_KM = 100_000.0


@dataclass(frozen=True, slots=True)
class CircularOrbit:
    altitude_km: float
    beta_deg: float = 0.0
    phase_deg: float = 0.0  # argument of latitude from the orbit noon point at t = 0

    def __post_init__(self) -> None:
        if not MIN_ALTITUDE_KM <= self.altitude_km <= MAX_ALTITUDE_KM:
            raise ValueError(f"altitude {self.altitude_km} km is outside "
                             f"{MIN_ALTITUDE_KM:g}..{MAX_ALTITUDE_KM:g} km")
        if not -90.0 <= self.beta_deg <= 90.0:
            raise ValueError(f"beta angle {self.beta_deg} deg is outside -90..90 deg")

    @property
    def semi_major_axis_km(self) -> float:
        return R_EARTH_KM + self.altitude_km

    @property
    def period_s(self) -> float:
        return 2.0 * math.pi * math.sqrt(self.semi_major_axis_km**3 / MU_EARTH_KM3_S2)

    @property
    def mean_motion_rad_s(self) -> float:
        return 2.0 * math.pi / self.period_s

    @property
    def sso_inclination_deg(self) -> float:
        """Inclination at which J2 turns the node at the sun's mean rate (circular orbit):
        dΩ/dt = -3/2 n J2 (R/a)² cos i."""
        a = self.semi_major_axis_km
        cos_i = -SSO_NODAL_RATE_RAD_S / (1.5 * self.mean_motion_rad_s * J2 * (R_EARTH_KM / a) ** 2)
        return math.degrees(math.acos(cos_i))

    def position_km(self, t_s: float) -> tuple[float, float, float]:
        """Position in the orbit frame: x toward the sun's projection on the orbit plane,
        z along the orbit normal."""
        u = math.radians(self.phase_deg) + self.mean_motion_rad_s * t_s
        a = self.semi_major_axis_km
        return (a * math.cos(u), a * math.sin(u), 0.0)

    def in_sunlight(self, t_s: float) -> bool:
        x, y, z = self.position_km(t_s)
        beta = math.radians(self.beta_deg)
        sx, sz = math.cos(beta), math.sin(beta)
        along = x * sx + z * sz
        if along >= 0.0:
            return True
        across_sq = x * x + y * y + z * z - along * along
        return across_sq >= R_EARTH_KM * R_EARTH_KM

    def ground_track(self, t_s: float, node_lon_deg: float = 0.0) -> tuple[float, float]:
        """(latitude, longitude) in degrees under the satellite, for a sun-synchronous
        inclination, with the ascending node over `node_lon_deg` at t = 0 and the Earth
        turning beneath. (Its phase is not yet tied to the sun geometry of in_sunlight.)"""
        inc = math.radians(self.sso_inclination_deg)
        u = math.radians(self.phase_deg) + self.mean_motion_rad_s * t_s
        lat = math.asin(math.sin(inc) * math.sin(u))
        lon = (math.radians(node_lon_deg) + math.atan2(math.cos(inc) * math.sin(u), math.cos(u))
               - EARTH_ROTATION_RAD_S * t_s)
        lon = (lon + math.pi) % (2.0 * math.pi) - math.pi
        return math.degrees(lat), math.degrees(lon)

    def eclipse_fraction(self) -> float:
        """Analytic fraction of each orbit in the cylindrical shadow."""
        ratio = math.sqrt(1.0 - (R_EARTH_KM / self.semi_major_axis_km) ** 2)
        cos_beta = math.cos(math.radians(self.beta_deg))
        if cos_beta <= ratio:
            return 0.0
        return math.acos(ratio / cos_beta) / math.pi
