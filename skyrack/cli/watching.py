"""`skyrack ground watch`: housekeeping and events as they come, filtered by point,
component and severity. On a terminal, a table that updates in place (units, age,
limit colours) with the latest events under it; piped, or with --json, one line per
packet or event. It runs until Ctrl-C, or for --seconds."""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from typing import IO, Any

from hal.dictionary import Dictionary, Severity
from skyrack.report import MARK, short

SEVERITIES = [s.value for s in Severity]
COLOUR = {"yellow": "\x1b[33m", "red": "\x1b[31m", "ok": ""}
RESET, HOME_CLEAR = "\x1b[0m", "\x1b[H\x1b[2J"
REDRAW_S = 0.5
EVENT_LINES = 8


class Watcher:
    """What watch shows, fed one housekeeping packet or event at a time."""

    def __init__(self, dictionary: Dictionary, *, points: list[str] | None,
                 components: list[str] | None, severity: str | None, as_json: bool,
                 out: IO[str] = sys.stdout, live: bool | None = None) -> None:
        self.specs = {t.name: t for t in dictionary.telemetry}
        unknown = [p for p in points or [] if p not in self.specs]
        if unknown:
            raise ValueError(f"unknown telemetry point {unknown[0]!r}")
        known = {name.split(".")[0] for name in self.specs}
        strangers = [c for c in components or [] if c not in known]
        if strangers:
            raise ValueError(f"no component {strangers[0]!r} (there are "
                             f"{', '.join(sorted(known))})")
        self.points, self.components = set(points or []), set(components or [])
        self.floor = SEVERITIES.index(severity) if severity else 0
        self.as_json = as_json
        self.out = out
        self.live = (out.isatty() and not as_json) if live is None else live
        self.latest: dict[str, tuple[float, Any, str]] = {}  # point: (wall, value, limit)
        self.events: deque[str] = deque(maxlen=EVENT_LINES)
        self.packets = 0
        self._drawn_s = 0.0

    def wanted(self, name: str) -> bool:
        if self.points and name not in self.points:
            return False
        return not self.components or name.split(".")[0] in self.components

    def housekeeping(self, t_s: float, values: dict[str, Any], limits: dict[str, str]) -> None:
        values = {k: v for k, v in values.items() if self.wanted(k)}
        if not values:
            return
        self.packets += 1
        if self.as_json:
            self._line(json.dumps({"t_s": t_s, "housekeeping": values, "limits": {
                k: s for k, s in limits.items() if k in values and s != "ok"}}))
        elif not self.live:
            self._line(f"t={t_s:10.1f}  " + "  ".join(
                f"{k}={short(v)}{MARK[limits.get(k, 'ok')]}" for k, v in values.items()))
        now = time.monotonic()
        for k, v in values.items():
            self.latest[k] = (now, v, limits.get(k, "ok"))
        self.draw()

    def event(self, t_s: float, name: str, severity: str, args: dict[str, Any]) -> None:
        if SEVERITIES.index(severity) < self.floor or \
                (self.components and name.split(".")[0] not in self.components):
            return
        if self.as_json:
            self._line(json.dumps({"t_s": t_s, "event": name, "severity": severity,
                                   "args": args}))
            return
        text = (f"t={t_s:10.1f}  EVENT {severity:8} {name} "
                + " ".join(f"{k}={short(v)}" for k, v in args.items()))
        if self.live:
            self.events.append(text)
            self.draw(force=True)
        else:
            self._line(text)

    def draw(self, force: bool = False) -> None:
        """Redraw the table in place (at most every REDRAW_S)."""
        now = time.monotonic()
        if not self.live or (not force and now - self._drawn_s < REDRAW_S):
            return
        self._drawn_s = now
        lines = [f"{'point':36} {'value':>14} {'unit':6} {'age':>6}"]
        for name in sorted(self.latest):
            at, value, limit = self.latest[name]
            unit = self.specs[name].unit or ""
            lines.append(f"{name:36} {COLOUR[limit]}{short(value):>14}"
                         f"{RESET if COLOUR[limit] else ''} {unit:6} {now - at:5.0f}s")
        lines += ["", "events:"] + list(self.events)
        self.out.write(HOME_CLEAR + "\n".join(lines) + "\n")
        self.out.flush()

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)
