import numpy as np
import pytest

from drivers.compute import NumpyDevice
from hal.compute import DeviceHang
from sim.orbit import CircularOrbit
from sim.radiation import IrradiatedDevice, RadiationConfig, RadiationModel, in_saa


def model(seed: int = 1, **config) -> RadiationModel:
    return RadiationModel(RadiationConfig(**config), np.random.default_rng(seed))


def device_with(nbytes: int) -> NumpyDevice:
    d = NumpyDevice()
    d.alloc("golden.w", (nbytes // 8,))
    return d


def test_upsets_follow_rate_bits_time_and_acceleration() -> None:
    rad = model(upsets_per_bit_day=1e-3, acceleration=10.0, hangs_per_day=0.0)
    device = device_with(1 << 20)  # 8 Mbit
    for _ in range(100):
        rad.step(1.0, device, [])
    expected = 1e-3 / 86400 * 10 * (8 << 20) * 100
    assert rad.injected["memory.golden"] == pytest.approx(expected, rel=0.1)
    assert np.count_nonzero(device.region("golden.w")) > 0


def test_the_saa_multiplies_the_rate_and_is_where_the_ground_track_says() -> None:
    out, inside = model(2, upsets_per_bit_day=1e-3), model(2, upsets_per_bit_day=1e-3)
    inside.in_saa = True
    for rad in (out, inside):
        for _ in range(50):
            rad.step(1.0, device_with(1 << 18), [])
    assert inside.injected["memory.golden"] > 20 * out.injected["memory.golden"]
    assert inside.saa_s == 50.0 and out.saa_s == 0.0
    assert in_saa(-30.0, -45.0) and not in_saa(30.0, -45.0) and not in_saa(-30.0, 100.0)
    orbit = CircularOrbit(500.0)
    day = [in_saa(*orbit.ground_track(t)) for t in range(0, 86400, 10)]
    assert 0.03 < sum(day) / len(day) < 0.12  # a few percent of a sun-synchronous day


def test_acceleration_scales_upsets_but_not_hangs() -> None:
    slow, fast = model(3, hangs_per_day=8640.0), model(3, hangs_per_day=8640.0,
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
    rad = model(5, upsets_per_bit_day=1e-2)
    rad.step_storage(100.0, [tmp_path])
    assert rad.injected["storage"] > 0
    assert (tmp_path / "slot-a.data").read_bytes() != bytes(1 << 16)


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="upsets_per_bit_day must be >= 0"):
        RadiationConfig(upsets_per_bit_day=-1.0)
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
    world.radiation.config = RadiationConfig(hangs_per_day=86400.0 * 10)  # ~every step
    satellite.flight.run_until(5.0)
    try:
        hk = satellite.drivers["accelerator"].housekeeping()
    finally:
        satellite.close()
    assert world.accelerator.error_count >= 1 and hk.error_count == world.accelerator.error_count
