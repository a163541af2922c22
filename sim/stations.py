"""Ground stations, what they see of the satellite, and when: passes.

A station is a place on the WGS-84 ellipsoid (geodetic latitude, longitude, height)
with a minimum elevation (its mask) and the rates of its uplink and downlink. It sees
the satellite when the satellite's elevation above the station's horizon, the plane
normal to the ellipsoid there, is at or above the mask.

Look angles: the satellite's ECI position turned into the Earth-fixed frame by
Greenwich mean sidereal time (as the ground track is), less the station's position,
resolved along the station's east, north and up (Vallado, "Fundamentals of
Astrodynamics", 4.4, the SEZ frame). Passes are found by stepping the elevation every
STEP_S (short enough that no pass above the mask fits between two steps: at 500 km a
pass at 5 deg lasts over 5 minutes) and bisecting each crossing to 0.01 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from boards.definition import GroundStation
from sim.orbit import CircularOrbit, gmst_rad

WGS84_A_KM = 6378.137
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
STEP_S = 20.0
BISECT_S = 0.01


@dataclass(frozen=True, slots=True)
class Pass:
    station: str
    aos_s: float  # mission elapsed time the satellite rises above the mask
    los_s: float  # ... and sets below it
    tca_s: float  # time of the highest elevation
    max_elevation_deg: float

    @property
    def duration_s(self) -> float:
        return self.los_s - self.aos_s


class Visibility:
    """One station's look angles to one orbit, at mission elapsed times."""

    def __init__(self, station: GroundStation, orbit: CircularOrbit) -> None:
        self.station = station
        self.orbit = orbit
        self.site = ecef_km(station)
        lat, lon = math.radians(station.lat_deg), math.radians(station.lon_deg)
        self.up = (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))
        self.east = (-math.sin(lon), math.cos(lon), 0.0)
        self.north = (-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon),
                      math.cos(lat))

    def look(self, t_s: float) -> tuple[float, float, float]:
        """(elevation deg, azimuth deg from north through east, range km)."""
        x, y, z = self.orbit.position_km(t_s)
        theta = gmst_rad(self.orbit.epoch_unix_s + t_s)
        c, s = math.cos(theta), math.sin(theta)
        ex, ey, ez = c * x + s * y, -s * x + c * y, z  # ECI to Earth-fixed
        dx, dy, dz = ex - self.site[0], ey - self.site[1], ez - self.site[2]
        rng = math.sqrt(dx * dx + dy * dy + dz * dz)
        up = (dx * self.up[0] + dy * self.up[1] + dz * self.up[2]) / rng
        east = dx * self.east[0] + dy * self.east[1]
        north = dx * self.north[0] + dy * self.north[1] + dz * self.north[2]
        azimuth = math.degrees(math.atan2(east, north)) % 360.0
        return math.degrees(math.asin(max(-1.0, min(1.0, up)))), azimuth, rng

    def elevation_deg(self, t_s: float) -> float:
        return self.look(t_s)[0]

    def in_view(self, t_s: float) -> bool:
        return self.elevation_deg(t_s) >= self.station.min_elevation_deg


def ecef_km(station: GroundStation) -> tuple[float, float, float]:
    """The station's Earth-fixed position, from its geodetic place on WGS-84."""
    lat, lon = math.radians(station.lat_deg), math.radians(station.lon_deg)
    n = WGS84_A_KM / math.sqrt(1.0 - WGS84_E2 * math.sin(lat) ** 2)
    h = station.alt_m / 1000.0
    return ((n + h) * math.cos(lat) * math.cos(lon), (n + h) * math.cos(lat) * math.sin(lon),
            (n * (1.0 - WGS84_E2) + h) * math.sin(lat))


def _crossing(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The time in [lo, hi] where f changes sign (f(lo) and f(hi) of opposite signs)."""
    rising = f(lo) < 0.0
    while hi - lo > BISECT_S:
        mid = (lo + hi) / 2
        if (f(mid) >= 0.0) == rising:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def passes(station: GroundStation, orbit: CircularOrbit, start_s: float,
           end_s: float) -> Iterator[Pass]:
    """The station's passes between two mission elapsed times, in order (a pass under
    way at start_s begins there; one still on at end_s ends there)."""
    view = Visibility(station, orbit)
    mask = station.min_elevation_deg

    def above(t: float) -> float:
        return view.elevation_deg(t) - mask

    t, prev = start_s, above(start_s)
    aos = start_s if prev >= 0.0 else None
    while t < end_s:
        nxt = min(t + STEP_S, end_s)
        value = above(nxt)
        if aos is None and value >= 0.0:
            aos = _crossing(above, t, nxt)
        elif aos is not None and value < 0.0:
            los = _crossing(above, t, nxt)
            yield _with_peak(view, station.name, aos, los)
            aos = None
        t, prev = nxt, value
    if aos is not None:
        yield _with_peak(view, station.name, aos, end_s)


def _with_peak(view: Visibility, name: str, aos: float, los: float) -> Pass:
    """The pass with its highest point, by golden-section search (one peak a pass)."""
    lo, hi = aos, los
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = view.elevation_deg(a), view.elevation_deg(b)
    while hi - lo > BISECT_S:
        if fa < fb:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = view.elevation_deg(b)
        else:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = view.elevation_deg(a)
    tca = (lo + hi) / 2
    return Pass(name, aos, los, tca, view.elevation_deg(tca))


def all_passes(stations: tuple[GroundStation, ...] | list[GroundStation], orbit: CircularOrbit,
               start_s: float, end_s: float) -> list[Pass]:
    """Every station's passes, by time of rise."""
    found = [p for s in stations for p in passes(s, orbit, start_s, end_s)]
    return sorted(found, key=lambda p: (p.aos_s, p.station))
