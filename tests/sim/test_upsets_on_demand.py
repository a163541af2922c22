"""Upsets on demand (a bench's memory faults): asked for from one thread, they land in
the device's memory just before the next product the other thread runs, as many bits
as asked; with no product to wait for, none land, and none are left armed."""

import threading
import time

import numpy as np

from drivers.compute import NumpyDevice
from sim.faults import UpsetsOnDemand


def flipped_bits(before: dict[str, np.ndarray], device: UpsetsOnDemand) -> int:
    return sum(int(np.unpackbits(np.bitwise_xor(before[n].view(np.uint8),
                                                r.reshape(-1).view(np.uint8))).sum())
               for n, r in device.regions().items())


def test_a_strike_lands_before_the_next_product_from_another_thread() -> None:
    device = UpsetsOnDemand(NumpyDevice(), seed=4)
    for name in ("golden.w", "state.m"):
        device.alloc(name, (256, 256), np.float64)[...] = 1.0
    before = {n: r.reshape(-1).view(np.uint8).copy() for n, r in device.regions().items()}
    landed: list[int] = []
    striker = threading.Thread(target=lambda: landed.append(device.strike(5)))
    striker.start()
    time.sleep(0.05)
    assert flipped_bits(before, device) == 0  # armed, not yet landed: no product ran
    a = np.ones((4, 4))
    while striker.is_alive():
        device.gemm(a, a)
        time.sleep(0.001)
    assert landed == [5] and device.struck == 5
    assert flipped_bits(before, device) == 5
    device.gemm(a, a)  # nothing left armed
    assert flipped_bits(before, device) == 5


def test_with_no_product_or_no_memory_nothing_lands() -> None:
    device = UpsetsOnDemand(NumpyDevice(), seed=1)
    device.alloc("state.w", (64,), np.float64)[...] = 0.0
    assert device.strike(3, timeout_s=0.05) == 0  # no product came
    device.gemm(np.ones((2, 2)), np.ones((2, 2)))
    assert not device.region("state.w").any() and device.struck == 0
    empty = UpsetsOnDemand(NumpyDevice(), seed=1)
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(empty.strike(3)))
    t.start()
    while t.is_alive():
        empty.gemm(np.ones((2, 2)), np.ones((2, 2)))
        time.sleep(0.001)
    assert result == [0]  # no job holds memory


def test_products_struck_on_demand_each_get_one_flipped_bit() -> None:
    device = UpsetsOnDemand(NumpyDevice(), seed=2)
    a = np.full((8, 8), 2.0)
    clean = a @ a
    device.strike_products(2)
    outs = [device.gemm(a, a) for _ in range(3)]
    flips = [int(np.unpackbits(np.bitwise_xor(o.view(np.uint8), clean.view(np.uint8))).sum())
             for o in outs]
    assert flips == [1, 1, 0] and device.products_struck == 2 and device.armed_products == 0
