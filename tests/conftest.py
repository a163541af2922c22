"""Fixtures shared across the suite: a simulated world and its emulated boards."""

from __future__ import annotations

import pytest

from boards.definition import BoardSpec
from sim.clock import VirtualClock
from sim.orbit import CircularOrbit
from sim.world import World

pytest_plugins = ["pytester"]  # tests of the skyrack pytest plugin run pytest inside pytest


@pytest.fixture
def world() -> World:
    return World(VirtualClock(), CircularOrbit(500.0, ltan_h=12.0), seed=1)  # beta near 0


def spec(kind: str, name: str | None = None, power_channel: int | None = None) -> BoardSpec:
    return BoardSpec(name=name or kind, kind=kind, driver="", emulator="x:y",
                     power_channel=power_channel)
