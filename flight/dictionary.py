"""The dictionary of the flight software, generated from component declarations."""

from __future__ import annotations

from collections.abc import Iterable

from flight.component import Component
from hal.dictionary import Dictionary


def build_dictionary(components: Iterable[type[Component]]) -> Dictionary:
    """Commands, telemetry (with the limits declared on its points), events and
    parameters of these component classes."""
    commands, telemetry, events, parameters = [], [], [], []
    for cls in components:
        commands += sorted(cls.command_specs(), key=lambda c: c.name)
        telemetry += cls.qualified("telemetry")
        events += cls.qualified("events")
        parameters += cls.qualified("parameters")
    return Dictionary(tuple(commands), tuple(telemetry), tuple(events), tuple(parameters))
