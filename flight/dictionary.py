"""The dictionary of the flight software, generated from component declarations."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from flight.component import Component
from flight.fdir import LIMITS
from hal.dictionary import Dictionary


def build_dictionary(components: Iterable[type[Component]]) -> Dictionary:
    """Commands, telemetry, events and parameters of these component classes."""
    commands, telemetry, events, parameters = [], [], [], []
    for cls in components:
        commands += sorted(cls.command_specs(), key=lambda c: c.name)
        telemetry += cls.qualified("telemetry")
        events += cls.qualified("events")
        parameters += cls.qualified("parameters")
    limits = {lim.point: lim for lim in LIMITS}

    def bounds(pair: tuple[float, float]) -> tuple[float | None, float | None]:
        return (None if math.isinf(pair[0]) else pair[0], None if math.isinf(pair[1]) else pair[1])

    telemetry = [replace(t, yellow=bounds(limits[t.name].yellow), red=bounds(limits[t.name].red))
                 if t.name in limits else t for t in telemetry]
    return Dictionary(tuple(commands), tuple(telemetry), tuple(events), tuple(parameters))
