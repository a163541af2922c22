"""The numpy compute backend: regions are host arrays, GEMMs go to the BLAS numpy uses."""

from __future__ import annotations

import ctypes
import sys

import numpy as np

from hal.compute import DeviceError, DeviceHang

# glibc's mallopt(3) parameters, and what the data plane sets them to.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD_BYTES = 512 << 20
_heap_kept: bool | None = None


def keep_heap() -> bool:
    """Have glibc's malloc keep freed memory for the next array instead of handing it
    back to the kernel, once per process; whether it could (glibc only).

    A job's step makes its temporaries afresh (numpy allocates each result). With
    glibc's defaults, a block of 128 KiB or more is mmap'ed and unmapped each time until
    the threshold adapts, and a free at the top of the heap trims it, so the next
    array of that size faults its pages in again, zeroed by the kernel: a 128 x 256
    float32 GELU gradient (13 temporaries) took 330 us of page faults where its
    arithmetic takes 80, and the default transformer's step 5.7 ms instead of 4.0.
    Blocks up to 32 MiB now come from the heap, and up to 512 MiB of freed heap stays
    with the process."""
    global _heap_kept
    if _heap_kept is None:
        _heap_kept = False
        if sys.platform.startswith("linux"):
            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):  # not glibc (musl has no mallopt)
                return False
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            _heap_kept = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                              and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _heap_kept


class NumpyDevice:
    """hal.compute.ComputeDevice on the CPU."""

    def __init__(self, name: str = "numpy") -> None:
        keep_heap()
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
