import numpy as np
import pytest

from drivers.compute import NumpyDevice
from hal.compute import DeviceHang
from sim.environment import GCR_FLUX, TrappedProtons
from sim.orbit import CircularOrbit
from sim.radiation import IrradiatedDevice, RadiationConfig, RadiationModel


def model(seed: int = 1, trapped: float = 0.0, **config) -> RadiationModel:
    rad = RadiationModel(RadiationConfig(**config), np.random.default_rng(seed))
    rad.set_flux(trapped)
    return rad


def device_with(nbytes: int) -> NumpyDevice:
    d = NumpyDevice()
    d.alloc("golden.w", (nbytes // 8,))
    return d


def test_upsets_follow_cross_section_flux_bits_time_and_acceleration() -> None:
    rad = model(trapped=99.0, memory_cross_section_cm2=1e-9, acceleration=100.0,
                sefi_cross_section_cm2=0.0)
    device = device_with(1 << 20)  # 8 Mbit
    for _ in range(100):
        rad.step(1.0, device, [])
    expected = 1e-9 * (99.0 + GCR_FLUX) * (8 << 20) * 100
    assert rad.injected["memory.golden"] == pytest.approx(expected * 100, rel=0.1)
    assert rad.expected["memory"] == pytest.approx(expected)  # what it would be, unaccelerated
    assert np.count_nonzero(device.region("golden.w")) > 0


def test_the_belt_multiplies_the_rate_and_the_saa_is_where_the_ground_track_says() -> None:
    out, inside = (model(2, trapped=0.0, memory_cross_section_cm2=1e-13, acceleration=1e4),
                   model(2, trapped=100.0, memory_cross_section_cm2=1e-13, acceleration=1e4))
    for rad in (out, inside):
        for _ in range(50):
            rad.step(1.0, device_with(1 << 18), [])
    assert inside.injected["memory.golden"] > 50 * out.injected["memory.golden"]
    assert inside.saa_s == 50.0 and out.saa_s == 0.0
    protons = TrappedProtons("min", CircularOrbit(500.0).epoch_unix_s)
    assert protons.flux(-28.0, -50.0, 500.0) > 100.0  # over Brazil
    assert protons.flux(30.0, -50.0, 500.0) == 0.0 and protons.flux(-28.0, 100.0, 500.0) == 0.0
    orbit = CircularOrbit(500.0)
    day = [protons.flux(*orbit.ground_track(t), 500.0) > 1.0 for t in range(0, 86400, 10)]
    assert 0.03 < sum(day) / len(day) < 0.12  # a few percent of a sun-synchronous day


def test_acceleration_scales_upsets_and_hang_acceleration_hangs() -> None:
    slow = model(3, trapped=99.0, sefi_cross_section_cm2=1e-3)  # 0.1 a second
    fast = model(3, trapped=99.0, sefi_cross_section_cm2=1e-4, hang_acceleration=10.0,
                 acceleration=1e6)
    hangs = []
    for rad in (slow, fast):
        device = device_with(64)
        count = 0
        for _ in range(2000):
            device.hung = False
            rad.step(1.0, device, [])
            count += device.hung
        hangs.append(count)
    assert hangs[0] == pytest.approx(200, rel=0.3) and hangs[1] == pytest.approx(200, rel=0.3)
    assert fast.expected["hang"] == pytest.approx(slow.expected["hang"] / 10)


def test_a_logic_upset_corrupts_the_gemm_output_and_a_hung_device_refuses() -> None:
    rad = model(4, logic_upsets_per_mac=1.0)  # certain
    device = IrradiatedDevice(NumpyDevice(), rad)
    a, b = np.ones((4, 4)), np.ones((4, 4))
    assert not np.array_equal(device.gemm(a, b), a @ b)
    assert rad.injected["logic.gemm"] == 1
    device.hung = True
    with pytest.raises(DeviceHang, match="not responding"):
        device.gemm(a, b)


def test_stored_files_are_hit_too(tmp_path) -> None:
    (tmp_path / "slot-a.data").write_bytes(bytes(1 << 16))
    rad = model(5, trapped=1e3, acceleration=1e10)
    rad.step_storage(100.0, [tmp_path])
    assert rad.injected["storage"] > 0
    assert (tmp_path / "slot-a.data").read_bytes() != bytes(1 << 16)


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="memory_cross_section_cm2 must be >= 0"):
        RadiationConfig(memory_cross_section_cm2=-1.0)
    with pytest.raises(ValueError, match="'core' is not a memory type"):
        RadiationConfig(memory="core")
    with pytest.raises(ValueError, match="solar must be 'min' or 'max'"):
        RadiationConfig(solar="mid")
    with pytest.raises(ValueError, match="burst_fraction must be in 0..1"):
        RadiationConfig(burst_fraction=2.0)


def test_a_hang_is_counted_by_the_accelerator_board_and_reported_over_the_protocol() -> None:
    from boards.definition import default_path, load
    from skyrack.assembly import assemble

    satellite = assemble(load(default_path()), seed=1)
    world = satellite.world
    world.set_switch(2, True)
    satellite.flight.run_until(2.0)
    world.compute.inner.hung = False
    world.radiation.config = RadiationConfig(sefi_cross_section_cm2=10.0)  # ~every step
    satellite.flight.run_until(5.0)
    try:
        hk = satellite.drivers["accelerator"].housekeeping()
    finally:
        satellite.close()
    assert world.accelerator.error_count >= 1 and hk.error_count == world.accelerator.error_count
