import math

import pytest

from sim.orbit import R_EARTH_KM, CircularOrbit, parse_ltan, sun_vector


@pytest.mark.parametrize("altitude_km,period_s,inclination_deg", [
    (500.0, 5677.0, 97.4),
    (1000.0, 6307.0, 99.5),
    (2000.0, 7632.0, 104.9),
])
def test_period_and_sun_synchronous_inclination(altitude_km, period_s, inclination_deg) -> None:
    orbit = CircularOrbit(altitude_km)
    assert abs(orbit.keplerian_period_s - period_s) < 1.0  # the nodal one: test_orbit_sgp4
    assert abs(orbit.sso_inclination_deg - inclination_deg) < 0.1


def eclipse_fraction(orbit: CircularOrbit, conical: bool, samples: int = 20000) -> float:
    dark = sum(orbit.illumination(orbit.period_s * k / samples, conical) < 0.5
               for k in range(samples))
    return dark / samples


def test_a_noon_midnight_orbit_at_equinox_has_beta_near_zero_and_the_analytic_eclipse() -> None:
    orbit = CircularOrbit(500.0, ltan_h=12.0)
    # Mean noon: the true sun is off it by the equation of time (-9 min in mid-March).
    beta = math.radians(orbit.beta_deg())
    assert abs(math.degrees(beta)) < 2.5
    a, h = orbit.semi_major_axis_km, orbit.altitude_km
    # The cylindrical shadow's eclipse fraction at beta (Vallado 5.3; asin(R/a)/pi at 0).
    analytic = math.acos(math.sqrt(h * h + 2 * R_EARTH_KM * h) / (a * math.cos(beta))) / math.pi
    assert eclipse_fraction(orbit, conical=False) == pytest.approx(analytic, rel=0.01)
    # The cone of the umbra is narrower than the cylinder, by the penumbra's width.
    assert eclipse_fraction(orbit, conical=True) == pytest.approx(analytic, rel=0.01)


def test_a_dawn_dusk_orbit_at_2000_km_never_enters_eclipse() -> None:
    orbit = CircularOrbit(2000.0, ltan_h=6.0)
    step = 120.0
    for day in range(0, 366, 7):  # through the seasons, the solstices included
        t0 = day * 86400.0
        assert all(orbit.illumination(t0 + k * step) == 1.0
                   for k in range(int(orbit.period_s / step) + 1)), day


def test_beta_follows_the_ltan() -> None:
    betas = [abs(CircularOrbit(500.0, ltan_h=h).beta_deg()) for h in (12.0, 10.5, 9.0, 6.0)]
    assert betas == sorted(betas) and betas[-1] > 70.0


def test_the_node_keeps_its_angle_to_the_sun_through_the_year() -> None:
    orbit = CircularOrbit(700.0, ltan_h=10.5)
    betas = [orbit.beta_deg(day * 86400.0) for day in range(0, 365, 30)]
    # The sun's declination swings beta by up to about +-23 deg; the node does not wander.
    assert max(betas) - min(betas) < 50.0


def test_the_penumbra_dims_the_sun_gradually() -> None:
    orbit = CircularOrbit(500.0, ltan_h=12.0)
    values = [orbit.illumination(t) for t in range(0, int(orbit.period_s))]
    partial = [v for v in values if 0.0 < v < 1.0]
    assert 5 < len(partial) < 60  # seconds in penumbra, entry and exit
    assert min(values) == 0.0 and max(values) == 1.0


def test_the_sun_vector_is_a_unit_vector_at_about_one_au() -> None:
    (x, y, z), distance_km = sun_vector(1_805_155_200.0)
    assert math.isclose(x * x + y * y + z * z, 1.0, rel_tol=1e-12)
    assert 1.47e8 < distance_km < 1.53e8
    assert abs(math.degrees(math.asin(z))) < 3.0  # mid-March: near the equinox


def test_ground_track_latitudes_stay_within_the_inclination() -> None:
    orbit = CircularOrbit(500.0)
    lats = [orbit.ground_track(t)[0] for t in range(0, int(orbit.period_s), 30)]
    assert max(lats) == pytest.approx(180.0 - orbit.sso_inclination_deg, abs=0.5)


@pytest.mark.parametrize("text,hours", [("06:00", 6.0), ("10:30", 10.5), ("12", 12.0)])
def test_ltan_parses(text, hours) -> None:
    assert parse_ltan(text) == hours


@pytest.mark.parametrize("text", ["25:00", "10:75", "noon", "-1"])
def test_bad_ltan_is_refused(text) -> None:
    with pytest.raises(ValueError, match="LTAN"):
        parse_ltan(text)


def test_out_of_range_orbits_are_refused() -> None:
    with pytest.raises(ValueError, match="altitude 50.0 km is outside"):
        CircularOrbit(50.0)
