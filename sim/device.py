"""A compute device seen through the sim: everything passes to the real one, except what a
subclass overrides to let the world act on it (radiation, injected faults)."""

from __future__ import annotations

from typing import Any

import numpy as np


class DeviceWrapper:
    def __init__(self, device: Any, name: str) -> None:
        self.inner = device
        self.name = name

    @property
    def hung(self) -> bool:
        return getattr(self.inner, "hung", False)

    @hung.setter
    def hung(self, value: bool) -> None:
        self.inner.hung = value

    def gemm(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self.inner.gemm(a, b, out)

    def alloc(self, region: str, shape: tuple[int, ...],
              dtype: np.dtype | type = np.float64) -> np.ndarray:
        return self.inner.alloc(region, shape, dtype)

    def region(self, region: str) -> np.ndarray:
        return self.inner.region(region)

    def regions(self) -> dict[str, np.ndarray]:
        return self.inner.regions()

    def free(self, region: str) -> None:
        self.inner.free(region)

    def reset(self) -> None:
        self.inner.reset()
