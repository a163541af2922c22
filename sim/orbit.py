"""A circular sun-synchronous orbit, the sun, and the Earth's shadow.

- The orbit's mean elements move at the secular first-order J2 rates (Brouwer,
  Kozai; Vallado, "Fundamentals of Astrodynamics", 9.6), for a circular orbit of mean
  semi-major axis a = R + altitude and Keplerian mean motion n = sqrt(mu / a^3):
      node               dOmega/dt = -3/2 n J2 (R/a)^2 cos i
      argument of latitude  du/dt = n (1 + 3/2 J2 (R/a)^2 (4 cos^2 i - 1))
  (perigee's and the mean anomaly's rates together, which for a circular orbit is
  what moves the satellite). The period node to node is 2 pi / (du/dt)
  (`period_s`); Kepler's is `keplerian_period_s`. The inclination is the one at which
  the node turns once per tropical year, so the orbit keeps its angle to the sun.
- The node is placed by the local time of the ascending node (LTAN: 06:00 dawn-dusk
  through 12:00 noon-midnight) at the epoch, in mean local solar time (from the mean
  sun, as missions quote it: the true sun runs up to 16 minutes off it, the equation
  of time), and drifts at the J2 rate after it. The epoch is a setting (`--epoch`, the
  definition's sim.epoch; default 2027-03-16 00:00 UTC).
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
from dataclasses import dataclass, field

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
DEFAULT_EPOCH_UNIX_S = 1_805_155_200.0  # 2027-03-16 00:00 UTC


_EQ_CENTRE_1, _EQ_CENTRE_2 = math.radians(1.915), math.radians(0.020)  # the equation of centre


def sun_vector(unix_s: float) -> tuple[tuple[float, float, float], float]:
    """Unit vector to the sun in the equatorial (ECI) frame, and its distance in km."""
    n = (unix_s - J2000_UNIX_S) / 86400.0
    mean_lon = math.radians((280.460 + 0.9856474 * n) % 360.0)
    g = math.radians((357.528 + 0.9856003 * n) % 360.0)
    lam = mean_lon + _EQ_CENTRE_1 * math.sin(g) + _EQ_CENTRE_2 * math.sin(2 * g)
    eps = math.radians(23.439 - 4.0e-7 * n)
    distance_au = 1.00014 - 0.01671 * math.cos(g) - 0.00014 * math.cos(2 * g)
    return ((math.cos(lam), math.cos(eps) * math.sin(lam), math.sin(eps) * math.sin(lam)),
            distance_au * AU_KM)


def mean_sun_ra_rad(unix_s: float) -> float:
    """Right ascension of the mean sun, the fictitious sun that moves along the
    equator at the true sun's mean rate: its mean longitude (the Almanac's formula).
    Local mean solar time is measured from it; the true sun is ahead of it or behind
    it by the equation of time (up to about 16 minutes)."""
    n = (unix_s - J2000_UNIX_S) / 86400.0
    return math.radians((280.460 + 0.9856474 * n) % 360.0)


def parse_epoch(text: str) -> float:
    """An ISO 8601 UTC date or time ("2027-06-21", "2027-06-21T06:00:00Z") to Unix
    seconds; raises InputError."""
    import datetime

    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"epoch {text!r} is not an ISO 8601 date or time (UTC), e.g. "
                         "2027-06-21 or 2027-06-21T06:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    seconds = when.timestamp()
    if not J2000_UNIX_S - 50 * 365.25 * 86400 <= seconds <= J2000_UNIX_S + 50 * 365.25 * 86400:
        raise InputError(f"epoch {text!r} is outside 1950..2050, where the sun's formulae "
                         "hold")
    return seconds


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
    _inclination_deg: float = field(init=False, repr=False, compare=False)
    _u_rate: float = field(init=False, repr=False, compare=False)
    # What position_km takes from the elements alone, worked out once: the node at the
    # epoch, the phase in radians, the inclination's cosine and sine (the same floats,
    # in the same order of operations, as working them out each call).
    _node0_rad: float = field(init=False, repr=False, compare=False)
    _phase_rad: float = field(init=False, repr=False, compare=False)
    _cos_i: float = field(init=False, repr=False, compare=False)
    _sin_i: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not MIN_ALTITUDE_KM <= self.altitude_km <= MAX_ALTITUDE_KM:
            raise InputError(f"altitude {self.altitude_km} km is outside "
                             f"{MIN_ALTITUDE_KM:g}..{MAX_ALTITUDE_KM:g} km")
        if not 0.0 <= self.ltan_h < 24.0:
            raise InputError(f"LTAN {self.ltan_h} h is outside 0..24 h")
        inclination, rate = self._j2_rates()  # fixed by the elements: worked out once
        object.__setattr__(self, "_inclination_deg", inclination)
        object.__setattr__(self, "_u_rate", rate)
        inc = math.radians(inclination)
        object.__setattr__(self, "_node0_rad", mean_sun_ra_rad(self.epoch_unix_s)
                           + math.radians((self.ltan_h - 12.0) * 15.0))
        object.__setattr__(self, "_phase_rad", math.radians(self.phase_deg))
        object.__setattr__(self, "_cos_i", math.cos(inc))
        object.__setattr__(self, "_sin_i", math.sin(inc))

    @property
    def semi_major_axis_km(self) -> float:
        return R_EARTH_KM + self.altitude_km

    @property
    def keplerian_period_s(self) -> float:
        """Kepler's period of the mean semi-major axis (no J2)."""
        return 2.0 * math.pi / self.keplerian_mean_motion_rad_s

    @property
    def keplerian_mean_motion_rad_s(self) -> float:
        return math.sqrt(MU_EARTH_KM3_S2 / self.semi_major_axis_km**3)

    @property
    def mean_motion_rad_s(self) -> float:
        """The argument of latitude's rate: J2 slows it (for i > 60 deg)."""
        return self._u_rate

    def _j2_rates(self) -> tuple[float, float]:
        """(inclination in degrees, argument of latitude's rate in rad/s)."""
        a = self.semi_major_axis_km
        n = self.keplerian_mean_motion_rad_s
        cos_i = -SSO_NODAL_RATE_RAD_S / (1.5 * n * J2 * (R_EARTH_KM / a) ** 2)
        rate = n * (1.0 + 1.5 * J2 * (R_EARTH_KM / a) ** 2 * (4.0 * cos_i * cos_i - 1.0))
        return math.degrees(math.acos(cos_i)), rate

    @property
    def period_s(self) -> float:
        """The nodal (draconic) period: ascending node to ascending node."""
        return 2.0 * math.pi / self.mean_motion_rad_s

    @property
    def sso_inclination_deg(self) -> float:
        """Inclination at which J2 turns the node at the sun's mean rate (circular orbit):
        dOmega/dt = -3/2 n J2 (R/a)^2 cos i, n Keplerian."""
        return self._inclination_deg

    def node_rad(self, t_s: float) -> float:
        """Right ascension of the ascending node: set by the LTAN, in mean local solar
        time as missions quote it, against the mean sun at the epoch, then turning at
        the J2 (sun-synchronous) rate, the mean sun's."""
        return self._node0_rad + SSO_NODAL_RATE_RAD_S * t_s

    def position_km(self, t_s: float) -> tuple[float, float, float]:
        """Position in the equatorial (ECI) frame."""
        node = self.node_rad(t_s)
        u = self._phase_rad + self._u_rate * t_s
        a = self.semi_major_axis_km
        cu, su, cn, sn, ci, si = (math.cos(u), math.sin(u), math.cos(node), math.sin(node),
                                  self._cos_i, self._sin_i)
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
        sun, sun_km = sun_vector(self.epoch_unix_s + t_s)
        return illumination_at(self.position_km(t_s), sun, sun_km, conical)

    def ground_track(self, t_s: float) -> tuple[float, float]:
        """(latitude, longitude) in degrees under the satellite."""
        return self.lat_lon(self.position_km(t_s), t_s)

    def lat_lon(self, position_km: tuple[float, float, float], t_s: float) -> tuple[float, float]:
        """(latitude, longitude) in degrees under an ECI position at time t_s."""
        x, y, z = position_km
        lat = math.degrees(math.asin(z / math.sqrt(x * x + y * y + z * z)))
        lon = math.atan2(y, x) - gmst_rad(self.epoch_unix_s + t_s)
        return lat, math.degrees((lon + math.pi) % (2.0 * math.pi) - math.pi)

    def in_sunlight(self, t_s: float) -> bool:
        return self.illumination(t_s) > 0.5

    def eclipse_fraction(self, t_s: float = 0.0) -> float:
        """Analytic fraction of an orbit in the cylindrical shadow at the beta of t_s."""
        ratio = math.sqrt(1.0 - (R_EARTH_KM / self.semi_major_axis_km) ** 2)
        cos_beta = math.cos(math.radians(self.beta_deg(t_s)))
        if cos_beta <= ratio:
            return 0.0
        return math.acos(ratio / cos_beta) / math.pi


def illumination_at(position_km: tuple[float, float, float],
                    sun: tuple[float, float, float], sun_km: float,
                    conical: bool = True) -> float:
    """Fraction of the sun's disc seen from an ECI position, the sun along unit vector
    `sun` at `sun_km`: 1 in sunlight, 0 in umbra."""
    x, y, z = position_km
    sx, sy, sz = sun
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
    sun_radius = math.asin(R_SUN_KM / d_sun)
    cos_sep = -(x * to_sun[0] + y * to_sun[1] + z * to_sun[2]) / (r * d_sun)
    sep = math.acos(max(-1.0, min(1.0, cos_sep)))
    if sep >= earth + sun_radius:
        return 1.0
    if sep <= earth - sun_radius:
        return 0.0
    return _disc_visible(sep, earth, sun_radius)


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
