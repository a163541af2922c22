"""What every `skyrack` command shares: the one-line error, the parser that reports
in one line, and bounded argument types."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from hal.auth import MAX_SPACECRAFT
from hal.errors import SkyrackError
from sim.orbit import MAX_ALTITUDE_KM, MIN_ALTITUDE_KM, parse_epoch, parse_ltan

MAX_ORBITS = 1000.0


class CliError(SkyrackError):
    """A failure to report to the user in one line."""


class SignalStop:
    """Set by SIGINT or SIGTERM, and read by a loop, as a threading.Event is.

    A Python signal handler runs in the main thread between two of its bytecodes, maybe
    while that thread holds a lock: one that calls Event.set() can wait forever for the
    Event's own lock, which the thread it interrupted holds inside Event.wait() (CPython
    issue 126434; a server's stop loop calls wait() every tick). So the handler writes a
    flag and takes no lock; `wait` sleeps in short slices and reads it."""

    SLICE_S = 0.05

    def __init__(self) -> None:
        self._set = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._set = True

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Until set or `timeout` seconds (None: no limit) have passed; whether set."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self._set:
            left = self.SLICE_S if end is None else end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, self.SLICE_S))
        return self._set


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block; `--help` still shows the usage.
        self.exit(2, f"{self.prog}: error: {message}\n")


def bounded(kind: type, accept: Callable[[Any], bool], allowed: str) -> Callable[[str], Any]:
    """An argparse type: `kind(text)`, refused in one line unless `accept(value)`."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text} is outside {allowed}")
        return value

    return parse


orbits = bounded(float, lambda v: 0 < v <= MAX_ORBITS, f"(0, {MAX_ORBITS:g}]")


altitude_km = bounded(float, lambda v: MIN_ALTITUDE_KM <= v <= MAX_ALTITUDE_KM,
                        f"{MIN_ALTITUDE_KM:g}..{MAX_ALTITUDE_KM:g} km")


seed = bounded(int, lambda v: 0 <= v < 2**63, "0..2^63-1")


days = bounded(float, lambda v: 0 < v <= 30, "(0, 30] days")


injections = bounded(int, lambda v: 1 <= v <= 10_000_000, "1..10000000")


workers = bounded(int, lambda v: 1 <= v <= 256, "1..256")


seconds = bounded(float, lambda v: 0 < v <= 1e7, "(0, 1e7] s")


speed = bounded(float, lambda v: 0 < v <= 1e4, "(0, 1e4]")
key_count = bounded(int, lambda v: 1 <= v <= 64, "1..64")
spacecraft_id = bounded(int, lambda v: 0 <= v <= MAX_SPACECRAFT, f"0..{MAX_SPACECRAFT}")
source_id = bounded(int, lambda v: 1 <= v <= 0xFFFF, "1..65535")


def checked_by(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An option type that keeps the text once `parse` (which raises ValueError) has
    accepted it: the sim parses it again where it is used."""
    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text
    return check


epoch = checked_by(parse_epoch)
ltan = checked_by(parse_ltan)


def time_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=float, default=-math.inf, metavar="T_S",
                        help="on-board time, s (default: the start)")
    parser.add_argument("--until", type=float, default=math.inf, metavar="T_S",
                        help="on-board time, s (default: the end)")


def utc_time(text: str) -> float:
    """An argparse type: a UTC time as ISO 8601 (2026-12-01T10:00:00Z), or HH:MM[:SS]
    today (UTC); seconds since 1970."""
    try:
        if "T" in text or "-" in text:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
        else:
            clock = datetime.time.fromisoformat(text)
            today = datetime.datetime.now(datetime.UTC).date()
            moment = datetime.datetime.combine(today, clock, tzinfo=datetime.UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UTC time (2026-12-01T10:00Z "
                                         "or HH:MM)") from None
    return moment.timestamp()


def utc_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=utc_time, default=-math.inf, metavar="UTC",
                        help="from this UTC time: ISO 8601 or HH:MM today (default: the start)")
    parser.add_argument("--until", type=utc_time, default=math.inf, metavar="UTC",
                        help="to this UTC time (default: the end)")
    parser.add_argument("--spacecraft", type=spacecraft_id, default=None, metavar="ID",
                        help="only this satellite's (default: every one)")


def bench_definition(path: str, port_items: Sequence[str], verb: str) -> Any:
    """The definition at `path` with --port NAME=URL items applied, every board on a
    port; CliError naming the emulated ones otherwise."""
    from boards import definition as boarddef

    definition = boarddef.with_ports(boarddef.load(path), name_urls(port_items, "--port"))
    emulated = [b.name for b in definition.boards if b.emulator is not None]
    if emulated:
        raise CliError(f"{', '.join(emulated)} emulated in {path}: `skyrack {verb}` "
                       "drives boards on ports; give each a --port NAME=URL (from "
                       "`skyrack board serve`), or use `skyrack sim`")
    return definition


def name_urls(items: Sequence[str], flag: str) -> dict[str, str]:
    """`NAME=URL` items (from a repeatable option) as a map; CliError for one that is not."""
    out = {}
    for item in items:
        name, eq, url = item.partition("=")
        if not eq or not name or not url:
            raise CliError(f"{flag} {item!r}: expected NAME=URL")
        out[name] = url
    return out


def progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
          file=sys.stderr, flush=True)


def shared(*options: str) -> argparse.ArgumentParser:
    """A parent parser with options several verbs share, written once: "json" (every
    verb has it), "seed", "state", "ground" (--ground and --keys)."""
    parent = argparse.ArgumentParser(add_help=False)
    if "json" in options:
        parent.add_argument("--json", action="store_true",
                            help="machine-readable output: JSON (JSON lines for a stream)")
    if "seed" in options:
        parent.add_argument("--seed", type=seed, default=1, help="random seed (default 1)")
    if "ground" in options:  # sim and fly: the space link the flight software listens on
        parent.add_argument("--ground", metavar="URL", default=None,
                            help="the space link to an operator (`skyrack ground`): "
                                 "tcp://HOST:PORT to listen on, or serial:PORT")
        parent.add_argument("--keys", metavar="FILE", default=None,
                            help="with --ground: the key file telecommands must be signed "
                                 "with (default: with --state, DIR/keys.json, made on the "
                                 "first run; else a throwaway one, printed, removed at the end)")
    if "state" in options:
        parent.add_argument("--state", metavar="DIR", default=None,
                            help="the flight computer's non-volatile storage: counters, keys, "
                                 "parameters, jobs, schedule and boot count kept in DIR "
                                 "across runs (default: the definition's satellite.state, "
                                 "else a fresh one)")
    return parent


# The version of every --json result's layout: its keys are stable (present even when
# zero or empty) within a version, and a result says which it follows.
JSON_SCHEMA = 1


def output(args: Any, result: Any, text: str, indent: int | None = None) -> None:
    """What a command reports: `result` as JSON under --json (an object gets "ok" and
    "schema"), else `text`."""
    if not getattr(args, "json", False):
        print(text)
        return
    if isinstance(result, dict):
        result = {"ok": True, **result, "schema": JSON_SCHEMA}
    print(json.dumps(result, indent=indent))
