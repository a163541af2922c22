"""The orbit against SGP4 (the `sgp4` package, Vallado's reference implementation):
the same mean elements flown by both, the ground track within 25 km after a day, and
the periods the J2 theory gives (Vallado, "Fundamentals of Astrodynamics", 9.6)."""

from __future__ import annotations

import math

import pytest
from sgp4.api import WGS84, Satrec

from sim.orbit import R_EARTH_KM, CircularOrbit

JD_UNIX_EPOCH = 2440587.5  # the Julian date of 1970-01-01 00:00 UTC
SGP4_EPOCH_JD = 2433281.5  # SGP4's epoch: 1949-12-31 00:00 UT


def sgp4_of(orbit: CircularOrbit) -> Satrec:
    """SGP4 on the orbit's mean elements at its epoch: circular, no drag, its
    inclination, node and argument of latitude, and the Kozai mean motion whose
    Brouwer mean semi-major axis (what SGP4 propagates) is the orbit's."""
    n_per_min = orbit.keplerian_mean_motion_rad_s * 60.0
    epoch_days = orbit.epoch_unix_s / 86400.0 + JD_UNIX_EPOCH - SGP4_EPOCH_JD
    no_kozai = n_per_min
    for _ in range(8):
        sat = Satrec()
        sat.sgp4init(WGS84, "i", 1, epoch_days, 0.0, 0.0, 0.0, 0.0, 0.0,
                     math.radians(orbit.sso_inclination_deg), math.radians(orbit.phase_deg),
                     no_kozai, orbit.node_rad(0.0) % (2 * math.pi))
        # SGP4's mean semi-major axis (Earth radii), from the Kozai mean motion given
        no_kozai *= (sat.a * sat.radiusearthkm / orbit.semi_major_axis_km) ** 1.5
    return sat


def separation_km(orbit: CircularOrbit, sat: Satrec, t_s: float) -> float:
    """How far apart the two sub-satellite points are, at the Earth's surface."""
    jd = orbit.epoch_unix_s / 86400.0 + JD_UNIX_EPOCH + t_s / 86400.0
    error, r, _ = sat.sgp4(math.floor(jd), jd - math.floor(jd))
    assert error == 0
    ours = orbit.position_km(t_s)
    cos = sum(a * b for a, b in zip(ours, r, strict=True)) / (math.dist(ours, (0, 0, 0))
                                                               * math.dist(r, (0, 0, 0)))
    return math.acos(max(-1.0, min(1.0, cos))) * R_EARTH_KM


@pytest.mark.parametrize("altitude_km, nodal_s, keplerian_s", [
    (500.0, 5684.4, 5677.0), (1000.0, 6313.9, 6307.0), (2000.0, 7637.2, 7632.0)])
def test_nodal_and_keplerian_periods(altitude_km, nodal_s, keplerian_s) -> None:
    orbit = CircularOrbit(altitude_km)
    assert abs(orbit.period_s - nodal_s) < 0.5
    assert abs(orbit.keplerian_period_s - keplerian_s) < 1.0


@pytest.mark.parametrize("altitude_km", [500.0, 1000.0, 2000.0])
def test_the_ground_track_stays_with_sgp4_for_a_day(altitude_km) -> None:
    orbit = CircularOrbit(altitude_km, ltan_h=6.0, phase_deg=40.0)
    sat = sgp4_of(orbit)
    worst = max(separation_km(orbit, sat, t) for t in range(0, 86401, 600))
    assert worst < 25.0, f"{altitude_km} km: {worst:.1f} km from SGP4 within a day"
    # Kepler's rate alone would be hundreds of km along the track from it by then
    drift_rad = (orbit.keplerian_mean_motion_rad_s - orbit.mean_motion_rad_s) * 86400.0
    assert drift_rad * R_EARTH_KM > 200.0


def test_sgp4_agrees_the_node_keeps_its_angle_to_the_sun() -> None:
    orbit = CircularOrbit(500.0)
    sat = sgp4_of(orbit)
    assert sat.nodedot * 1440 * 365.2422 / (2 * math.pi) == pytest.approx(1.0, abs=0.01)
