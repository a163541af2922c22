"""The accelerator's physical side: power state, clock and the power it draws."""

from __future__ import annotations

from dataclasses import dataclass

# Board management controller alone / clocks gated / full compute at 100 % clock.
OFF_W = 15.0
IDLE_W = 80.0
FULL_W = 700.0


@dataclass(slots=True)
class AcceleratorModel:
    state: str = "off"
    clock_pct: int = 100
    powered: bool = False
    error_count: int = 0  # device hangs its management controller saw (survives power cuts)

    def power_w(self) -> float:
        if not self.powered:
            return 0.0
        if self.state == "on":
            return IDLE_W + (FULL_W - IDLE_W) * self.clock_pct / 100.0
        if self.state == "idle":
            return IDLE_W
        return OFF_W

    def power_lost(self) -> None:
        """The rail dropped: everything volatile is gone."""
        self.powered = False
        self.state = "off"
        self.clock_pct = 100
