"""Drag against its reference, NRLMSIS 2.1 through `pymsis`, and the decay it drives."""

import math

import numpy as np
import pytest

from sim.atmosphere import REENTRY_KM, Drag, density_kg_m3
from sim.clock import VirtualClock
from sim.orbit import CircularOrbit
from sim.world import World


def test_the_shipped_density_table_is_nrlmsis_averaged_over_the_globe_and_the_day() -> None:
    pymsis = pytest.importorskip("pymsis")
    rng = np.random.default_rng(3)
    # a coarser, different sample of the globe and the year than the table's
    dates = np.array(["2027-02-01T07:00", "2027-05-01T13:00", "2027-08-01T19:00",
                      "2027-11-01T01:00"], dtype="datetime64[m]")
    lons, lats = np.arange(-175.0, 180.0, 30.0), np.arange(-84.0, 90.0, 12.0)
    weight = np.cos(np.radians(lats))[None, None, :, None]
    for f107 in (70.0, 150.0, 200.0):
        alts = np.sort(rng.uniform(150.0, 1200.0, 6))
        n = len(dates)
        out = pymsis.calculate(dates, lons, lats, alts, f107s=np.full(n, f107),
                               f107as=np.full(n, f107), aps=np.full((n, 7), 15.0))
        live = (out[..., 0] * weight).sum(axis=(0, 1, 2)) / (weight.sum() * n * len(lons))
        ours = np.array([density_kg_m3(a, f107) for a in alts])
        assert np.allclose(ours, live, rtol=0.15), (f107, alts, ours / live)


def test_density_falls_with_altitude_and_rises_with_the_sun() -> None:
    alts = np.arange(150.0, 1500.0, 5.0)
    for f107 in (70.0, 150.0):
        rho = [density_kg_m3(a, f107) for a in alts]
        assert all(b < a for a, b in zip(rho, rho[1:], strict=False))
    assert density_kg_m3(400.0, 200.0) > 5 * density_kg_m3(400.0, 70.0)
    assert 2e-12 < density_kg_m3(400.0, 150.0) < 6e-12  # the textbook mean at 400 km


def test_the_lifetime_is_the_decay_integrated_in_time() -> None:
    """Midpoint rule over altitude against a plain step in time (RK4, 1 h) to re-entry."""
    drag = Drag.of(mass_kg=150.0, area_m2=1.0, f107=150.0)
    h, t, dt = 325.0, 0.0, 3600.0
    while h > REENTRY_KM:
        k1 = drag.decay_km_s(h)
        k2 = drag.decay_km_s(h - dt / 2 * k1)
        k3 = drag.decay_km_s(h - dt / 2 * k2)
        k4 = drag.decay_km_s(h - dt * k3)
        step = dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if h - step <= REENTRY_KM:  # the last part of an hour
            t += (h - REENTRY_KM) / step * dt
            break
        h, t = h - step, t + dt
    assert drag.lifetime_s(325.0) == pytest.approx(t, rel=0.01)
    assert 20 < t / 86400 < 200  # a 325 km orbit at moderate activity: months
    assert Drag.of(150.0, 1.0, 150.0).lifetime_s(500.0) > 5 * t  # higher lasts far longer
    assert Drag(0.0, 150.0).lifetime_s(325.0) == math.inf


def test_a_low_orbit_sinks_in_the_sim_as_drag_says_and_the_satellite_moves_smoothly() -> None:
    drag = Drag.of(mass_kg=150.0, area_m2=1.0, f107=150.0)
    world = World(VirtualClock(), CircularOrbit(325.0), seed=1, drag=drag)
    positions = []
    for t in range(0, 6 * 3600, 1):
        world.clock.sleep_until(float(t))
        if t % 7 == 0 or t % 60 in (59, 0, 1):
            positions.append((t, world.orbit.position_km(float(t))))
    sunk_km = 325.0 - world.orbit.altitude_km
    assert sunk_km == pytest.approx(drag.decay_km_s(325.0) * world.t_s, rel=0.02)
    assert sunk_km > 0.05
    # across every rebase of the decaying orbit, no jump: 7.7 km/s and nothing more
    for (t0, a), (t1, b) in zip(positions, positions[1:], strict=False):
        speed = math.dist(a, b) / (t1 - t0)
        assert 7.6 < speed < 7.8, (t0, t1, speed)


def test_bad_drag_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="mass_kg must be > 0"):
        Drag.of(0.0, 1.0, 150.0)
    with pytest.raises(ValueError, match="F10.7 400 sfu is outside"):
        Drag.of(100.0, 1.0, 400.0)
