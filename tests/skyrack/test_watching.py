"""`ground watch`: what it shows, filtered, live on a terminal or as lines when piped."""

from __future__ import annotations

import io
import json

import pytest

from flight.software import FlightSoftware
from skyrack.cli.watching import COLOUR, HOME_CLEAR, Watcher

DICTIONARY = FlightSoftware.dictionary()


def watcher(**options) -> tuple[Watcher, io.StringIO]:
    out = io.StringIO()
    defaults = {"points": None, "components": None, "severity": None, "as_json": False}
    return Watcher(DICTIONARY, out=out, **{**defaults, **options}), out


def test_piped_it_is_one_line_a_packet_or_event_filtered() -> None:
    w, out = watcher(components=["power"], severity="warning")
    w.housekeeping(5.0, {"power.batt_v": 33.7, "thermal.heaters": 1}, {"power.batt_v": "yellow"})
    w.housekeeping(6.0, {"thermal.heaters": 0}, {})  # nothing of power: no line
    w.event(6.5, "power.latchup", "warning", {"channel": 2})
    w.event(7.0, "power.switch_changed", "info", {"channel": 2, "on": True})  # below warning
    w.event(7.5, "thermal.heater_changed", "error", {"heater": 0})  # another component
    lines = out.getvalue().splitlines()
    assert lines == ["t=       5.0  power.batt_v=33.7 [YELLOW]",
                     "t=       6.5  EVENT warning  power.latchup channel=2"]


def test_as_json_every_line_is_an_object_with_its_limits() -> None:
    w, out = watcher(points=["power.batt_v"], as_json=True)
    w.housekeeping(5.0, {"power.batt_v": 34.5, "power.soc_pct": 80.0}, {"power.batt_v": "red"})
    (line,) = out.getvalue().splitlines()
    assert json.loads(line) == {"t_s": 5.0, "housekeeping": {"power.batt_v": 34.5},
                                "limits": {"power.batt_v": "red"}}


def test_on_a_terminal_it_is_a_table_redrawn_in_place_with_limit_colours() -> None:
    w, out = watcher(live=True)
    w.housekeeping(5.0, {"power.batt_v": 33.7, "power.soc_pct": 80.0},
                   {"power.batt_v": "yellow", "power.soc_pct": "ok"})
    w.event(5.5, "power.latchup", "warning", {"channel": 2})
    screen = out.getvalue().split(HOME_CLEAR)[-1]
    assert "power.batt_v" in screen and COLOUR["yellow"] + "33.7" in screen.replace(" ", "")
    assert " V " in screen and "EVENT warning  power.latchup channel=2" in screen
    assert out.getvalue().count(HOME_CLEAR) == 2  # drawn, then redrawn for the event


def test_an_unknown_point_or_component_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="unknown telemetry point 'power.bat_v'"):
        watcher(points=["power.bat_v"])
    with pytest.raises(ValueError, match="no component 'powr'"):
        watcher(components=["powr"])
