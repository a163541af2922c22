import pytest

from sim.orbit import R_EARTH_KM
from sim.thermal import ALBEDO, EARTH_IR_W_M2, SOLAR_W_M2, Node, ThermalModel


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
