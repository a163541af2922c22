"""Passes against an independent look-angle computation: the satellite flown by SGP4
(the same mean elements, tests/sim/test_orbit_sgp4.py), turned to the Earth-fixed frame
and looked at from the station with numpy, on a 1 s grid, here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.orbit import CircularOrbit, gmst_rad
from sim.stations import GroundStation, Visibility, all_passes, passes
from tests.sim.test_orbit_sgp4 import JD_UNIX_EPOCH, sgp4_of

SVALBARD = GroundStation("svalbard", 78.23, 15.41, 500.0, 5.0)
WEILHEIM = GroundStation("weilheim", 47.88, 11.08, 600.0, 10.0)


def reference_passes(station: GroundStation, orbit: CircularOrbit,
                     day_s: int = 86400) -> list[tuple[float, float]]:
    """(AOS, LOS) from SGP4 positions and a look angle of the test's own."""
    sat = sgp4_of(orbit)
    t = np.arange(0.0, day_s + 1.0, 1.0)
    jd = orbit.epoch_unix_s / 86400.0 + JD_UNIX_EPOCH + t / 86400.0
    jd_int = np.floor(jd)
    error, r, _ = sat.sgp4_array(jd_int, jd - jd_int)
    assert not error.any()
    theta = np.array([gmst_rad(orbit.epoch_unix_s + s) for s in t])
    ecef = np.stack([np.cos(theta) * r[:, 0] + np.sin(theta) * r[:, 1],
                     -np.sin(theta) * r[:, 0] + np.cos(theta) * r[:, 1], r[:, 2]], axis=1)
    lat, lon = math.radians(station.lat_deg), math.radians(station.lon_deg)
    a, f = 6378.137, 1 / 298.257223563
    e2 = f * (2 - f)
    n = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)
    h = station.alt_m / 1000
    site = np.array([(n + h) * math.cos(lat) * math.cos(lon),
                     (n + h) * math.cos(lat) * math.sin(lon), (n * (1 - e2) + h) * math.sin(lat)])
    normal = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon),
                       math.sin(lat)])
    rho = ecef - site
    elevation = np.degrees(np.arcsin(rho @ normal / np.linalg.norm(rho, axis=1)))
    above = elevation - station.min_elevation_deg
    edges = np.nonzero(np.diff(np.sign(above)))[0]
    crossings = [t[i] + above[i] / (above[i] - above[i + 1]) for i in edges]  # linear in 1 s
    if above[0] >= 0:
        crossings.insert(0, 0.0)
    if above[-1] >= 0:
        crossings.append(float(t[-1]))
    return list(zip(crossings[::2], crossings[1::2], strict=True))


@pytest.mark.parametrize("station,altitude_km", [(SVALBARD, 500.0), (WEILHEIM, 500.0),
                                                 (WEILHEIM, 1000.0)])
def test_passes_match_an_independent_look_angle_computation_to_10_s(station,
                                                                    altitude_km) -> None:
    orbit = CircularOrbit(altitude_km)
    ours = list(passes(station, orbit, 0.0, 86400.0))
    theirs = reference_passes(station, orbit)
    assert len(ours) == len(theirs) and len(ours) >= 4
    for p, (aos, los) in zip(ours, theirs, strict=True):
        assert abs(p.aos_s - aos) < 10.0 and abs(p.los_s - los) < 10.0, (p, aos, los)
        assert p.aos_s < p.tca_s < p.los_s
        assert p.max_elevation_deg >= station.min_elevation_deg


def test_a_station_sees_the_satellite_exactly_within_its_passes() -> None:
    orbit = CircularOrbit(500.0)
    view = Visibility(SVALBARD, orbit)
    found = list(passes(SVALBARD, orbit, 0.0, 30000.0))
    for t in np.arange(0.0, 30000.0, 7.0):
        inside = any(p.aos_s + 0.05 < t < p.los_s - 0.05 for p in found)
        outside = all(t < p.aos_s - 0.05 or t > p.los_s + 0.05 for p in found)
        if inside:
            assert view.in_view(t)
        elif outside:
            assert not view.in_view(t)
    elevation, azimuth, rng = view.look(found[0].tca_s)
    assert elevation == pytest.approx(found[0].max_elevation_deg, abs=1e-6)
    assert 0.0 <= azimuth < 360.0 and 500.0 < rng < 2600.0


def test_passes_by_time_over_several_stations_and_a_polar_station_sees_most_orbits() -> None:
    orbit = CircularOrbit(500.0)
    found = all_passes([SVALBARD, WEILHEIM], orbit, 0.0, 86400.0)
    assert [p.aos_s for p in found] == sorted(p.aos_s for p in found)
    svalbard = [p for p in found if p.station == "svalbard"]
    assert 10 <= len(svalbard) <= 15  # about 15 orbits a day; a 78 N station sees most
    assert all(60.0 < p.duration_s < 800.0 for p in svalbard)


def test_bad_stations_are_refused() -> None:
    with pytest.raises(ValueError, match="lat_deg 95.0 is outside"):
        GroundStation("x", 95.0, 0.0)
    with pytest.raises(ValueError, match="downlink_bps must be > 0"):
        GroundStation("x", 0.0, 0.0, downlink_bps=0.0)
