import pytest

from sim.orbit import CircularOrbit


@pytest.mark.parametrize("altitude_km,period_s,inclination_deg", [
    (500.0, 5677.0, 97.4),
    (1000.0, 6307.0, 99.5),
    (2000.0, 7632.0, 104.9),
])
def test_period_and_sun_synchronous_inclination(altitude_km, period_s, inclination_deg) -> None:
    orbit = CircularOrbit(altitude_km)
    assert abs(orbit.period_s - period_s) < 1.0
    assert abs(orbit.sso_inclination_deg - inclination_deg) < 0.1


def simulated_eclipse_fraction(orbit: CircularOrbit, samples: int = 20000) -> float:
    dark = sum(not orbit.in_sunlight(orbit.period_s * k / samples) for k in range(samples))
    return dark / samples


@pytest.mark.parametrize("altitude_km,beta_deg", [(500.0, 0.0), (500.0, 20.0), (1000.0, 45.0)])
def test_eclipse_geometry_matches_the_analytic_fraction(altitude_km, beta_deg) -> None:
    orbit = CircularOrbit(altitude_km, beta_deg=beta_deg)
    analytic = orbit.eclipse_fraction()
    assert analytic > 0.2
    assert simulated_eclipse_fraction(orbit) == pytest.approx(analytic, rel=0.01)


def test_a_high_beta_orbit_never_enters_the_shadow() -> None:
    orbit = CircularOrbit(2000.0, beta_deg=60.0)
    assert orbit.eclipse_fraction() == 0.0
    assert simulated_eclipse_fraction(orbit, 2000) == 0.0


def test_out_of_range_orbits_are_refused() -> None:
    with pytest.raises(ValueError, match="altitude 50.0 km is outside"):
        CircularOrbit(50.0)
    with pytest.raises(ValueError, match="beta angle 95.0 deg"):
        CircularOrbit(500.0, beta_deg=95.0)
