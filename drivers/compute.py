"""The numpy compute backend: regions are host arrays, GEMMs go to the BLAS numpy uses."""

from __future__ import annotations

import numpy as np

from hal.compute import DeviceError, DeviceHang


class NumpyDevice:
    """hal.compute.ComputeDevice on the CPU."""

    def __init__(self, name: str = "numpy") -> None:
        self.name = name
        self._regions: dict[str, np.ndarray] = {}
        self.hung = False
        self.gemms = 0

    def alloc(self, region: str, shape: tuple[int, ...],
              dtype: np.dtype | type = np.float64) -> np.ndarray:
        self._alive("alloc")
        array = np.zeros(shape, dtype=dtype)
        self._regions[region] = array
        return array

    def region(self, region: str) -> np.ndarray:
        try:
            return self._regions[region]
        except KeyError:
            raise DeviceError(f"{self.name}: no region {region!r}") from None

    def regions(self) -> dict[str, np.ndarray]:
        return dict(self._regions)

    def free(self, region: str) -> None:
        self._regions.pop(region, None)

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self._alive("gemm")
        if (a.ndim < 2 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]
                or a.shape[-1] != b.shape[-2]):
            raise DeviceError(f"{self.name}: gemm shapes {a.shape} @ {b.shape} do not agree")
        self.gemms += 1
        # A corrupted operand (an exponent bit flipped) may overflow; that is for the
        # checks above the device to catch, not for the device to shout about.
        with np.errstate(over="ignore", invalid="ignore"):
            return np.matmul(a, b, out=out)

    def reset(self) -> None:
        self._regions.clear()
        self.hung = False

    def _alive(self, op: str) -> None:
        if self.hung:
            raise DeviceHang(f"{self.name}: {op}: device not responding")
