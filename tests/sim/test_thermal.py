import math

import numpy as np
import pytest

from sim.clock import VirtualClock
from sim.orbit import R_EARTH_KM, CircularOrbit, sun_vector
from sim.thermal import (
    ALBEDO,
    EARTH_IR_W_M2,
    KELVIN,
    SOLAR_W_M2,
    STEFAN_BOLTZMANN_W_M2_K4,
    Node,
    ThermalModel,
    view_factors,
)
from sim.world import World


def plate(**kw) -> ThermalModel:
    return ThermalModel({"plate": Node(heat_capacity_j_k=1000.0, temp_c=0.0, **kw)})


def test_earth_ir_and_albedo_heat_a_nadir_face_as_the_formulas_say() -> None:
    view = (R_EARTH_KM / (R_EARTH_KM + 500.0)) ** 2
    night, day = plate(nadir_m2=2.0, emissivity=0.8, absorptivity=0.4), plate(
        nadir_m2=2.0, emissivity=0.8, absorptivity=0.4)
    night.step(1.0, {}, 0.0, earth_view=view, albedo_cos=0.0)
    day.step(1.0, {}, 1.0, earth_view=view, albedo_cos=1.0)
    ir_j = 0.8 * EARTH_IR_W_M2 * view * 2.0
    assert night.nodes["plate"].temp_c * 1000.0 == pytest.approx(ir_j)
    albedo_j = 0.4 * ALBEDO * SOLAR_W_M2 * view * 2.0
    assert day.nodes["plate"].temp_c * 1000.0 == pytest.approx(ir_j + albedo_j)


def test_the_earth_looks_smaller_from_higher_up() -> None:
    low, high = [(R_EARTH_KM / (R_EARTH_KM + h)) ** 2 for h in (500.0, 2000.0)]
    assert low == pytest.approx(0.86, abs=0.01) and high == pytest.approx(0.58, abs=0.01)


def test_a_radiator_with_no_earth_view_sees_none_of_it() -> None:
    rad = plate(radiator_m2=1.0)
    rad.step(1.0, {}, 1.0, earth_view=0.9, albedo_cos=1.0)
    assert rad.nodes["plate"].temp_c < 0.0  # it only radiates


def numeric_view_factor(h_ratio: float, normal: tuple[float, float, float]) -> float:
    """F from a small plate at (0, 0, h_ratio) with the given unit normal to the unit
    sphere, by quadrature of cos1 cos2 / (pi s^2) dA over the visible cap."""
    theta_max = np.arccos(1.0 / h_ratio)
    theta = (np.arange(1200) + 0.5) * theta_max / 1200
    phi = (np.arange(1200) + 0.5) * 2 * np.pi / 1200
    t, p = np.meshgrid(theta, phi, indexing="ij")
    q = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)])
    s = q - np.array([0.0, 0.0, h_ratio])[:, None, None]
    dist = np.sqrt((s * s).sum(axis=0))
    cos1 = np.tensordot(np.array(normal), s, axes=1) / dist
    cos2 = -(q * s).sum(axis=0) / dist
    da = np.sin(t) * (theta_max / 1200) * (2 * np.pi / 1200)
    seen = (cos1 > 0) & (cos2 > 0)
    return float((cos1 * cos2 / (np.pi * dist**2) * da)[seen].sum())


@pytest.mark.parametrize("altitude_km", [500.0, 1000.0, 2000.0])
def test_view_factors_match_a_quadrature_over_the_earth(altitude_km) -> None:
    h = (R_EARTH_KM + altitude_km) / R_EARTH_KM
    nadir, edge = view_factors(h)
    assert nadir == pytest.approx(numeric_view_factor(h, (0.0, 0.0, -1.0)), rel=2e-3)
    assert edge == pytest.approx(numeric_view_factor(h, (1.0, 0.0, 0.0)), rel=2e-3)


def flat_plate_k(q_w: float, area_m2: float, emissivity: float, absorbed_w_m2: float) -> float:
    """The temperature at which a plate radiating from area_m2 to deep space rejects q_w
    of its own and absorbed_w_m2 of what falls on it."""
    return ((q_w / area_m2 + absorbed_w_m2) / (emissivity * STEFAN_BOLTZMANN_W_M2_K4)) ** 0.25


@pytest.mark.parametrize("altitude_km", [500.0, 1000.0, 2000.0])
def test_an_edge_on_radiator_settles_at_the_flat_plate_balance_with_earth_view(
        altitude_km) -> None:
    h = (R_EARTH_KM + altitude_km) / R_EARTH_KM
    edge = numeric_view_factor(h, (1.0, 0.0, 0.0))
    for albedo_cos in (0.0, 0.6):
        rad = ThermalModel({"r": Node(heat_capacity_j_k=3000.0, radiator_m2=2.0,
                                      emissivity=0.9, absorptivity=0.2, edge_on=True)})
        nadir_view, edge_view = view_factors(h)
        for _ in range(20_000):
            rad.step(1.0, {"r": 700.0}, 1.0, earth_view=nadir_view, albedo_cos=albedo_cos,
                     edge_view=edge_view)
        absorbed = edge * (0.9 * EARTH_IR_W_M2 + 0.2 * ALBEDO * SOLAR_W_M2 * albedo_cos)
        expected_k = flat_plate_k(700.0, 2.0, 0.9, absorbed)
        deep_space_only_k = flat_plate_k(700.0, 2.0, 0.9, 0.0)
        assert rad.nodes["r"].temp_c + KELVIN == pytest.approx(expected_k, abs=0.1)
        assert expected_k > deep_space_only_k + 3.0  # the Earth's share is not small


@pytest.mark.parametrize("altitude_km", [500.0, 1000.0, 2000.0])
def test_the_satellites_radiator_at_full_power_matches_the_flat_plate_balance(
        altitude_km) -> None:
    """The whole satellite, the accelerator at 700 W for four orbits: the radiator's mean
    over the last orbit against the balance of what it rejects and absorbs on average."""
    world = World(VirtualClock(), CircularOrbit(altitude_km), seed=1)
    world.battery.capacity_ah *= 10  # carry the full load through the eclipses
    world.battery.soc = 1.0
    world.attach_rail(2, "accelerator")
    world.set_switch(2, True)
    world.accelerator.state = "on"
    period = world.orbit.period_s
    world.clock.sleep_until(3 * period)
    h = (R_EARTH_KM + altitude_km) / R_EARTH_KM
    edge = numeric_view_factor(h, (1.0, 0.0, 0.0))
    nodes = world.thermal.nodes
    links = {(a, b): g for a, b, g in world.thermal.links_w_k}
    t4, temp, into, albedo = [], [], [], []
    for _ in range(int(period)):
        world.clock.sleep_until(world.clock.now_s() + 1.0)
        r_k = nodes["radiator"].temp_c + KELVIN
        t4.append(r_k**4)
        temp.append(r_k)
        into.append(sum(g * (nodes[a].temp_c - nodes["radiator"].temp_c)
                        for (a, b), g in links.items() if b == "radiator"))
        (sx, sy, sz), _ = sun_vector(world.orbit.epoch_unix_s + world.t_s)
        x, y, z = world.orbit.position_km(world.t_s)
        albedo.append(max(0.0, (x * sx + y * sy + z * sz) / math.sqrt(x * x + y * y + z * z)))
    assert world.truth.brownouts == 0 and world.accelerator.power_w() == 700.0
    radiator = nodes["radiator"]
    absorbed = edge * (radiator.emissivity * EARTH_IR_W_M2 + radiator.absorptivity * ALBEDO
                       * SOLAR_W_M2 * float(np.mean(albedo)))
    expected_k = flat_plate_k(float(np.mean(into)), radiator.radiator_m2, radiator.emissivity,
                              absorbed)
    assert float(np.mean(temp)) == pytest.approx(expected_k, abs=3.0)
    # and the die, 30 K above it, stays below the flight software's 75 degC throttle
    assert max(temp) - KELVIN + 700.0 / 30.0 + 700.0 / 100.0 < 75.0
