"""The accelerator's data plane: device memory and GEMMs.

The control plane (power state, clock, health) is the board protocol (hal.boards);
this is the fast path the compute lives on. A backend owns its memory; the flight
software names regions and asks for operations. The numpy backend's regions are host
arrays. A GPU backend keeps them on the device and hands out host-mapped views.

Operands are float64 holding integer values, or float32. In float64 every product
and partial sum of the integer workloads stays below 2^53, so a GEMM is exact in any
summation order: the result is the same bit for bit on any backend, and checks on it
are exact. A float32 GEMM rounds: its result is the same bit for bit on one backend
with one BLAS thread count, and its checks hold it to a rounding-error bound
(flight.compute.abft). A GEMM may be batched: (..., m, k) @ (..., k, n).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from hal.errors import SkyrackError


class DeviceError(SkyrackError):
    """The compute device failed an operation (named in the message)."""


class DeviceHang(DeviceError):
    """The device stopped responding; only a power cycle brings it back."""


class ComputeDevice(Protocol):
    name: str

    def alloc(self, region: str, shape: tuple[int, ...],
              dtype: np.dtype | type = np.float64) -> np.ndarray:
        """A zeroed region of `dtype` named `region`, replacing any of that name."""
        ...

    def region(self, region: str) -> np.ndarray:
        """The host view of a region. Raises DeviceError if there is none."""
        ...

    def regions(self) -> dict[str, np.ndarray]: ...

    def free(self, region: str) -> None: ...

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """a @ b, into `out` when given. Raises DeviceHang when the device is hung."""
        ...

    def reset(self) -> None:
        """Power-on state: every region gone, a hang cleared."""
        ...
