"""A circular sun-synchronous orbit, the sun, and the Earth's shadow.

- Period from Kepler's third law; inclination from the J2 nodal drift that turns the
  node once per tropical year, so the orbit keeps its angle to the sun.
- The node is placed by the local time of the ascending node (LTAN: 06:00 dawn-dusk
  through 12:00 noon-midnight) at the epoch, and drifts at the J2 rate after it.
- The sun from the Astronomical Almanac's low-precision formulae (about 0.01 deg over
  1950-2050): mean longitude and anomaly, ecliptic longitude, obliquity.
- Eclipse two ways: the cylindrical shadow, and the conical one, in which the sun's
  disc is partly hidden (penumbra) between full sun and umbra; `illumination` gives the
  visible fraction of the disc.
- The beta angle (the sun above the orbit plane) and the ground track (with the Earth
  turning under the orbit, from Greenwich sidereal time) follow from the geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hal.errors import InputError

MU_EARTH_KM3_S2 = 398600.4418
R_EARTH_KM = 6378.137
R_SUN_KM = 695_700.0
AU_KM = 149_597_870.7
J2 = 1.08262668e-3
TROPICAL_YEAR_S = 365.2421897 * 86400.0
# The node must turn once per tropical year, eastward, to keep its angle to the sun.
SSO_NODAL_RATE_RAD_S = 2.0 * math.pi / TROPICAL_YEAR_S
EARTH_ROTATION_RAD_S = 7.2921159e-5
MIN_ALTITUDE_KM = 100.0
MAX_ALTITUDE_KM = 100_000.0
J2000_UNIX_S = 946_728_000.0  # 2000-01-01 12:00 TT, near enough for these formulae
DEFAULT_EPOCH_UNIX_S = 1_805_155_200.0  # 2027-03-15 00:00 UTC


def sun_vector(unix_s: float) -> tuple[tuple[float, float, float], float]:
    """Unit vector to the sun in the equatorial (ECI) frame, and its distance in km."""
    n = (unix_s - J2000_UNIX_S) / 86400.0
    mean_lon = math.radians((280.460 + 0.9856474 * n) % 360.0)
    g = math.radians((357.528 + 0.9856003 * n) % 360.0)
    lam = mean_lon + math.radians(1.915) * math.sin(g) + math.radians(0.020) * math.sin(2 * g)
    eps = math.radians(23.439 - 4.0e-7 * n)
    distance_au = 1.00014 - 0.01671 * math.cos(g) - 0.00014 * math.cos(2 * g)
    return ((math.cos(lam), math.cos(eps) * math.sin(lam), math.sin(eps) * math.sin(lam)),
            distance_au * AU_KM)


def gmst_rad(unix_s: float) -> float:
    """Greenwich mean sidereal time."""
    days = (unix_s - J2000_UNIX_S) / 86400.0
    return math.radians((280.46061837 + 360.98564736629 * days) % 360.0)


def parse_ltan(text: str) -> float:
    """'HH:MM' (or hours as a number) to hours; raises ValueError."""
    try:
        if ":" in text:
            hours, minutes = text.split(":")
            value = int(hours) + int(minutes) / 60.0
            if not 0 <= int(minutes) < 60:
                raise ValueError
        else:
            value = float(text)
    except ValueError:
        raise InputError(f"LTAN {text!r} is not HH:MM") from None
    if not 0.0 <= value < 24.0:
        raise InputError(f"LTAN {text!r} is outside 00:00..23:59")
    return value


@dataclass(frozen=True, slots=True)
class CircularOrbit:
    altitude_km: float
    ltan_h: float = 10.5  # local time of the ascending node at the epoch
    epoch_unix_s: float = DEFAULT_EPOCH_UNIX_S
    phase_deg: float = 0.0  # argument of latitude at the epoch

    def __post_init__(self) -> None:
        if not MIN_ALTITUDE_KM <= self.altitude_km <= MAX_ALTITUDE_KM:
            raise InputError(f"altitude {self.altitude_km} km is outside "
                             f"{MIN_ALTITUDE_KM:g}..{MAX_ALTITUDE_KM:g} km")
        if not 0.0 <= self.ltan_h < 24.0:
            raise InputError(f"LTAN {self.ltan_h} h is outside 0..24 h")

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
        dOmega/dt = -3/2 n J2 (R/a)^2 cos i."""
        a = self.semi_major_axis_km
        cos_i = -SSO_NODAL_RATE_RAD_S / (1.5 * self.mean_motion_rad_s * J2 * (R_EARTH_KM / a) ** 2)
        return math.degrees(math.acos(cos_i))

    def node_rad(self, t_s: float) -> float:
        """Right ascension of the ascending node: set by the LTAN against the sun's right
        ascension at the epoch, then turning at the J2 (sun-synchronous) rate."""
        (sx, sy, _), _ = sun_vector(self.epoch_unix_s)
        sun_ra = math.atan2(sy, sx)
        return sun_ra + math.radians((self.ltan_h - 12.0) * 15.0) + SSO_NODAL_RATE_RAD_S * t_s

    def position_km(self, t_s: float) -> tuple[float, float, float]:
        """Position in the equatorial (ECI) frame."""
        inc = math.radians(self.sso_inclination_deg)
        node = self.node_rad(t_s)
        u = math.radians(self.phase_deg) + self.mean_motion_rad_s * t_s
        a = self.semi_major_axis_km
        cu, su, cn, sn, ci, si = (math.cos(u), math.sin(u), math.cos(node), math.sin(node),
                                  math.cos(inc), math.sin(inc))
        return (a * (cn * cu - sn * su * ci), a * (sn * cu + cn * su * ci), a * su * si)

    def beta_deg(self, t_s: float = 0.0) -> float:
        """The sun's elevation above the orbit plane."""
        inc = math.radians(self.sso_inclination_deg)
        node = self.node_rad(t_s)
        normal = (math.sin(node) * math.sin(inc), -math.cos(node) * math.sin(inc), math.cos(inc))
        (sx, sy, sz), _ = sun_vector(self.epoch_unix_s + t_s)
        return math.degrees(math.asin(normal[0] * sx + normal[1] * sy + normal[2] * sz))

    def illumination(self, t_s: float, conical: bool = True) -> float:
        """Fraction of the sun's disc the satellite sees: 1 in sunlight, 0 in umbra."""
        x, y, z = self.position_km(t_s)
        (sx, sy, sz), sun_km = sun_vector(self.epoch_unix_s + t_s)
        along = x * sx + y * sy + z * sz
        if along >= 0.0:
            return 1.0
        r2 = x * x + y * y + z * z
        if not conical:
            return 1.0 if r2 - along * along >= R_EARTH_KM**2 else 0.0
        # Apparent radii of Earth and sun, and the angle between their centres.
        r = math.sqrt(r2)
        to_sun = (sx * sun_km - x, sy * sun_km - y, sz * sun_km - z)
        d_sun = math.sqrt(sum(c * c for c in to_sun))
        earth = math.asin(min(R_EARTH_KM / r, 1.0))
        sun = math.asin(R_SUN_KM / d_sun)
        cos_sep = -(x * to_sun[0] + y * to_sun[1] + z * to_sun[2]) / (r * d_sun)
        sep = math.acos(max(-1.0, min(1.0, cos_sep)))
        if sep >= earth + sun:
            return 1.0
        if sep <= earth - sun:
            return 0.0
        return _disc_visible(sep, earth, sun)

    def in_sunlight(self, t_s: float) -> bool:
        return self.illumination(t_s) > 0.5

    def ground_track(self, t_s: float) -> tuple[float, float]:
        """(latitude, longitude) in degrees under the satellite."""
        x, y, z = self.position_km(t_s)
        lat = math.degrees(math.asin(z / math.sqrt(x * x + y * y + z * z)))
        lon = math.atan2(y, x) - gmst_rad(self.epoch_unix_s + t_s)
        return lat, math.degrees((lon + math.pi) % (2.0 * math.pi) - math.pi)

    def eclipse_fraction(self, t_s: float = 0.0) -> float:
        """Analytic fraction of an orbit in the cylindrical shadow at the beta of t_s."""
        ratio = math.sqrt(1.0 - (R_EARTH_KM / self.semi_major_axis_km) ** 2)
        cos_beta = math.cos(math.radians(self.beta_deg(t_s)))
        if cos_beta <= ratio:
            return 0.0
        return math.acos(ratio / cos_beta) / math.pi


def _disc_visible(sep: float, earth: float, sun: float) -> float:
    """Fraction of the sun's disc (angular radius `sun`) not covered by the Earth's disc
    (radius `earth`) at centre separation `sep`: the area of overlap of two circles."""
    if sep <= sun - earth:  # the Earth's disc lies inside the sun's
        return 1.0 - (earth / sun) ** 2
    a = (sep**2 + sun**2 - earth**2) / (2 * sep * sun)
    b = (sep**2 + earth**2 - sun**2) / (2 * sep * earth)
    overlap = (sun**2 * math.acos(max(-1.0, min(1.0, a)))
               + earth**2 * math.acos(max(-1.0, min(1.0, b)))
               - 0.5 * math.sqrt(max(0.0, (-sep + sun + earth) * (sep + sun - earth)
                                     * (sep - sun + earth) * (sep + sun + earth))))
    return 1.0 - overlap / (math.pi * sun**2)
