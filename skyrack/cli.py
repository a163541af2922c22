"""The `skyrack` command line: the only place that formats for humans.

Every command takes --json, and on failure exits non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from boards import definition as boarddef
from drivers import flash as flashing
from drivers.link import BoardLink
from flight.software import FlightSoftware
from hal import image
from hal.auth import MAX_COUNTER, KeyFile
from hal.dictionary import Dictionary
from hal.durable import replace_file
from hal.errors import SkyrackError
from hal.packetlink import InProcessLink, open_link
from hal.transport import SerialTransport
from hal.valuetype import ValueType
from sim.orbit import MAX_ALTITUDE_KM, MIN_ALTITUDE_KM, parse_ltan
from skyrack import campaign, mission, plot
from skyrack.assembly import assemble

MAX_ORBITS = 1000.0


class CliError(Exception):
    """A failure to report to the user in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block; `--help` still shows the usage.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _bounded(kind: type, accept: Callable[[Any], bool], allowed: str) -> Callable[[str], Any]:
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


_orbits = _bounded(float, lambda v: 0 < v <= MAX_ORBITS, f"(0, {MAX_ORBITS:g}]")
_altitude_km = _bounded(float, lambda v: MIN_ALTITUDE_KM <= v <= MAX_ALTITUDE_KM,
                        f"{MIN_ALTITUDE_KM:g}..{MAX_ALTITUDE_KM:g} km")
_seed = _bounded(int, lambda v: 0 <= v < 2**63, "0..2^63-1")
_days = _bounded(float, lambda v: 0 < v <= 30, "(0, 30] days")
_injections = _bounded(int, lambda v: 1 <= v <= 10_000_000, "1..10000000")
_workers = _bounded(int, lambda v: 1 <= v <= 256, "1..256")
_seconds = _bounded(float, lambda v: 0 < v <= 1e7, "(0, 1e7] s")
_speed = _bounded(float, lambda v: 0 < v <= 1e4, "(0, 1e4]")


def _ltan(text: str) -> str:
    try:
        parse_ltan(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _time_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=float, default=-math.inf, metavar="T_S",
                        help="on-board time, s (default: the start)")
    parser.add_argument("--until", type=float, default=math.inf, metavar="T_S",
                        help="on-board time, s (default: the end)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="skyrack", description="Flight software for compute satellites.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = sub.add_parser("sim", help="fly a simulated satellite and print a mission report")
    sim.add_argument("--board", default=None, metavar="TOML",
                     help="board definition (default: the packaged boards/sim.toml)")
    length = sim.add_mutually_exclusive_group()
    length.add_argument("--orbits", type=_orbits, default=None,
                        help="orbits to fly (default 2)")
    length.add_argument("--days", type=_days, default=None,
                        help="days to fly, instead of --orbits")
    sim.add_argument("--altitude", type=_altitude_km, default=None, metavar="KM",
                     help="circular orbit altitude in km (default: the definition's, 500)")
    sim.add_argument("--ltan", type=_ltan, default=None, metavar="HH:MM",
                     help="local time of the ascending node: 06:00 dawn-dusk .. 12:00 "
                          "noon-midnight (default: the definition's, 10:30)")
    sim.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    sim.add_argument("--serial", action="store_true",
                     help="serve every emulated board on a pseudo-terminal and talk to it "
                          "through pyserial, as to real boards")
    sim.add_argument("--ground", metavar="URL", default=None,
                     help="the space link to an operator (`skyrack ground`): tcp://HOST:PORT "
                          "to listen on, or serial:PORT; the sim then flies paced to the wall "
                          "clock, and without --orbits or --days until interrupted")
    sim.add_argument("--speed", type=_speed, default=1.0,
                     help="with --ground: simulated seconds per wall second (default 1)")
    sim.add_argument("--keys", metavar="FILE", default=None,
                     help="with --ground: the key file telecommands are signed with "
                          "(default: with --state, DIR/keys.json, made on the first run; "
                          "else a throwaway one; its path is printed)")
    sim.add_argument("--state", metavar="DIR", default=None,
                     help="the flight computer's non-volatile storage: counters, keys, "
                          "parameters, jobs, schedule and boot count kept in DIR across runs "
                          "(default: the definition's satellite.state, else a fresh one)")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.add_argument("--plot", metavar="FILE", default=None,
                     help="draw state of charge, power, temperatures and mode to FILE "
                          "(PNG, PDF or SVG; needs the 'plot' extra: matplotlib)")
    sim.set_defaults(run=cmd_sim)

    fly = sub.add_parser("fly", help="fly the flight software against boards on serial "
                         "ports, on the wall clock, and print what it saw")
    fly.add_argument("--board", required=True, metavar="TOML",
                     help="definition whose boards are on ports (e.g. a copy of "
                          "boards/flatsat-example.toml)")
    fly.add_argument("--port", action="append", default=[], metavar="NAME=URL",
                     help="put board NAME on this port instead (repeatable); this also "
                          "turns an emulated board of a sim definition into a port")
    fly.add_argument("--seconds", type=_seconds, default=60.0,
                     help="how long to fly (default 60); Ctrl-C stops early and reports")
    fly.add_argument("--state", metavar="DIR", default=None,
                     help="the flight computer's non-volatile storage (default: the "
                          "definition's satellite.state, else a fresh one)")
    fly.add_argument("--json", action="store_true", help="print the report as JSON")
    fly.set_defaults(run=cmd_fly)

    camp = sub.add_parser("campaign", help="inject faults into compute jobs and tally what "
                          "the protection made of them")
    camp.add_argument("--injections", type=_injections, default=1000,
                      help="number of injected faults, one per job (default 1000)")
    camp.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    camp.add_argument("--workers", type=_workers, default=os.cpu_count() or 1,
                      help="worker processes (default: one per core)")
    camp.add_argument("--json", action="store_true", help="print the report as JSON")
    camp.set_defaults(run=cmd_campaign)

    img = sub.add_parser("image", help="board firmware images")
    img_sub = img.add_subparsers(dest="image_command", required=True, parser_class=_Parser)
    build = img_sub.add_parser("build", help="wrap a payload in an image header for one "
                               "board kind")
    build.add_argument("payload", help="the firmware payload (a file)")
    build.add_argument("--kind", required=True, help="board kind it is for: power, "
                       "thermal, accelerator ...")
    build.add_argument("--version", dest="image_version", required=True,
                       metavar="MAJOR.MINOR.PATCH", help="the image's version")
    build.add_argument("-o", "--output", required=True, help="image file to write")
    build.add_argument("--json", action="store_true", help="describe the image as JSON")
    build.set_defaults(run=cmd_image_build)

    board = sub.add_parser("board", help="emulated boards for a bench")
    board_sub = board.add_subparsers(dest="board_command", required=True, parser_class=_Parser)
    serve = board_sub.add_parser("serve", help="serve emulated boards on serial lines, "
                                 "their world in real time, until interrupted")
    serve.add_argument("--board", required=True, metavar="TOML[:NAME]",
                       help="sim definition, and the board to serve (default: all)")
    serve.add_argument("--on", action="append", default=[], metavar="NAME=URL",
                       help="serve board NAME on this serial port rather than a new "
                            "pseudo-terminal (repeatable)")
    serve.add_argument("--seconds", type=_seconds, default=None,
                       help="stop after this many seconds (default: run until interrupted)")
    serve.add_argument("--speed", type=_speed, default=1.0,
                       help="simulated seconds per wall second (default 1)")
    serve.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    serve.add_argument("--nvm", metavar="DIR", default=None,
                       help="keep each board's non-volatile memory (image slots, boot "
                            "record, boot count) in DIR across runs, as a real board's flash "
                            "(default: in memory, a factory-fresh board every run)")
    serve.add_argument("--json", action="store_true",
                       help="JSON lines: the ports when serving starts, counters at the end")
    serve.set_defaults(run=cmd_board_serve)

    fl = sub.add_parser("flash", help="flash an image to a board over its serial port")
    fl.add_argument("image", help="image file (from `skyrack image build`)")
    fl.add_argument("--board", required=True, metavar="TOML:NAME",
                    help="the definition, and the board to flash")
    fl.add_argument("--port", default=None, metavar="URL",
                    help="serial port (default: the board's `port` in the definition)")
    fl.add_argument("--timeout", type=_seconds, default=30.0, metavar="S",
                    help="how long to wait for the board to confirm its new image "
                         "(default 30)")
    fl.add_argument("--json", action="store_true", help="print the result as JSON")
    fl.set_defaults(run=cmd_flash)

    ground = sub.add_parser("ground", help="operate a satellite over its space link")
    ground.add_argument("--link", default=None, metavar="URL",
                        help="the satellite's space link: tcp://HOST:PORT (`skyrack sim "
                             "--ground`) or serial:PORT; needed by send, watch and script")
    ground.add_argument("--archive", metavar="FILE", default=None,
                        help="SQLite telemetry archive every TM received lands in, and that "
                             "query, export and plot read (default: $SKYRACK_ARCHIVE, or "
                             "~/.local/share/skyrack/archive.sqlite)")
    ground.add_argument("--keys", metavar="FILE", default=None,
                        help="key file to sign telecommands with (without it they go "
                             "unsigned, and the satellite refuses them)")
    ground.add_argument("--key-id", type=int, default=None,
                        help="which key of the file (default: the file's active key)")
    ground.add_argument("--dictionary", metavar="JSON", default=None,
                        help="the satellite's dictionary (`skyrack dictionary --json`); "
                             "default: this installation's flight software")
    ground_sub = ground.add_subparsers(dest="ground_command", required=True,
                                       parser_class=_Parser)
    send = ground_sub.add_parser("send", help="send a command and wait for its verification")
    send.add_argument("name", help="command, as the dictionary names it: power.switch")
    send.add_argument("args", nargs="*", metavar="NAME=VALUE", help="its arguments")
    send.add_argument("--timeout", type=_seconds, default=10.0,
                      help="seconds to wait for completion (default 10)")
    send.add_argument("--yes", action="store_true", help="send a hazardous command "
                      "without asking")
    send.add_argument("--json", action="store_true", help="print the result as JSON")
    watch = ground_sub.add_parser("watch", help="print housekeeping and events as they come")
    watch.add_argument("--seconds", type=_seconds, default=10.0,
                       help="how long to watch (default 10)")
    watch.add_argument("--json", action="store_true", help="JSON lines")
    script = ground_sub.add_parser("script", help="run a file of send / wait / expect / "
                                   "sleep steps; stops at the first that fails")
    script.add_argument("file")
    script.add_argument("--json", action="store_true", help="JSON lines, one per step")
    query = ground_sub.add_parser("query", help="a telemetry point's values from the archive")
    query.add_argument("point", help="telemetry point: power.batt_v")
    _time_window(query)
    query.add_argument("--json", action="store_true", help="print them as JSON")
    export = ground_sub.add_parser("export", help="points from the archive as CSV")
    export.add_argument("points", nargs="+", metavar="POINT")
    export.add_argument("-o", "--output", required=True, help="CSV file to write")
    _time_window(export)
    export.add_argument("--json", action="store_true", help="describe what was written")
    hist = ground_sub.add_parser("history", help="commands sent, with the verification "
                                 "stages each reached (from the archive)")
    hist.add_argument("--last", type=_injections, default=50, metavar="N",
                      help="how many (default 50)")
    hist.add_argument("--json", action="store_true", help="print them as JSON")
    gplot = ground_sub.add_parser("plot", help="points from the archive against time "
                                  "(needs the 'plot' extra: matplotlib)")
    gplot.add_argument("points", nargs="+", metavar="POINT")
    gplot.add_argument("-o", "--output", required=True, help="PNG, PDF or SVG to write")
    _time_window(gplot)
    gplot.add_argument("--json", action="store_true", help="describe what was written")
    ground.set_defaults(run=cmd_ground)

    dictionary = sub.add_parser("dictionary",
                                help="print the command and telemetry dictionary")
    form = dictionary.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print it as JSON")
    form.add_argument("--xtce", action="store_true",
                      help="print it as XTCE 1.2 (packets, parameters, commands), for a "
                           "standard ground system")
    dictionary.add_argument("--topology", action="store_true",
                            help="print the component instances instead: what each is "
                                 "connected to and what it reads from the bus (with --json: "
                                 "as JSON)")
    dictionary.set_defaults(run=cmd_dictionary)
    return parser


def cmd_sim(args: argparse.Namespace) -> int:
    if args.plot and not plot.available():
        raise CliError(plot.INSTALL_HINT)  # before flying, not after
    path = args.board or boarddef.default_path()
    definition = boarddef.load(path)
    if not definition.emulated:
        raise CliError(f"{path}: not every board is emulated; `skyrack sim` needs a sim "
                       "definition")
    link, keys, pace = None, None, None
    if args.ground:
        link, keys, pace = _ground_side(args)
    satellite = assemble(definition, seed=args.seed, altitude_km=args.altitude, ltan=args.ltan,
                         serial=args.serial, link=link, keys=keys, state=args.state)
    assert satellite.world is not None
    period_s = satellite.world.orbit.period_s
    if args.days is not None:
        duration_s = args.days * 86400.0
    elif args.orbits is not None or not args.ground:
        duration_s = (args.orbits or 2.0) * period_s
    else:
        duration_s = 1e9  # until interrupted
    started = time.perf_counter()
    recorder = mission.Recorder(satellite)
    try:
        mission.fly(satellite, duration_s, recorder, pace)
    except _Stopped:
        pass
    finally:
        satellite.close()
        if link is not None:
            link.close()
    wall_s = time.perf_counter() - started
    duration_s = satellite.clock.now_s()
    report = mission.report(satellite, recorder, seed=args.seed, orbits=duration_s / period_s)
    if args.plot:
        try:
            plot.plot_mission(recorder.series, args.plot,
                              f"{report['satellite']}: {report['orbit']['altitude_km']:g} km, "
                              f"LTAN {_hhmm(report['orbit']['ltan_h'])}, seed {args.seed}")
        except (RuntimeError, ValueError, OSError) as e:
            raise CliError(f"cannot write plot {args.plot}: {e}") from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
        print(f"(flew {duration_s:.0f} s in {wall_s:.2f} s of wall time, "
              f"{duration_s / wall_s:.0f}x real time)", file=sys.stderr)
    return 0


def _board_ref(text: str, need_name: bool) -> tuple[boarddef.SatelliteDefinition, str | None]:
    """`path.toml:name` (or just `path.toml` unless `need_name`) to its definition and name."""
    path, colon, name = text.rpartition(":")
    if not colon or "/" in name or name.endswith(".toml"):
        path, name = text, ""
    if need_name and not name:
        raise CliError(f"--board {text}: name the board too, as TOML:NAME")
    definition = boarddef.load(path)
    if name:
        definition.named(name)  # refuse an unknown board now, with the ones there are
    return definition, name or None


def cmd_image_build(args: argparse.Namespace) -> int:
    with open(args.payload, "rb") as f:
        payload = f.read()
    data = image.build(args.kind, args.image_version, payload)
    header = image.verify(data)
    replace_file(args.output, data)
    result = {"ok": True, "image": args.output, "kind": header.kind,
              "version": header.version_text, "payload_bytes": header.length,
              "image_bytes": len(data), "crc32": f"{header.crc32:08x}"}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.output}: {header.kind} image {header.version_text}, "
              f"{header.length} payload bytes, crc32 {header.crc32:08x}")
    return 0


def cmd_board_serve(args: argparse.Namespace) -> int:
    from skyrack.serve import BoardServer  # pseudo-terminals: only where they are used

    definition, name = _board_ref(args.board, need_name=False)
    ports = _name_urls(args.on, "--on")
    server = BoardServer(definition, [name] if name else (), seed=args.seed, ports=ports,
                         speed=args.speed, nvm_dir=args.nvm)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if args.json:
            print(json.dumps({"ok": True, "serving": server.paths}), flush=True)
        else:
            for board_name, path in server.paths.items():
                print(f"{board_name} {path}", flush=True)
            print(f"serving {len(server.paths)} board(s) at {args.speed:g}x real time; "
                  "Ctrl-C stops", file=sys.stderr, flush=True)
        served_s = server.run(args.seconds, stop)
        stats = server.stats()
    finally:
        server.close()
    if args.json:
        print(json.dumps({"ok": True, "served_s": round(served_s, 3), "boards": stats}))
    else:
        print(f"served {served_s:.1f} s: " + "; ".join(
            f"{n}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
            for n, c in stats.items()), file=sys.stderr)
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    definition, name = _board_ref(args.board, need_name=True)
    assert name is not None
    spec = definition.named(name)
    with open(args.image, "rb") as f:
        data = f.read()
    header = image.verify(data)
    if header.kind != spec.kind:
        raise CliError(f"{args.image} is a {header.kind!r} image; board {name!r} is a "
                       f"{spec.kind!r} board")
    port = args.port or spec.port
    if port is None:
        raise CliError(f"board {name!r} is emulated in {definition.path}: serve it with "
                       "`skyrack board serve` and pass its path as --port")
    bar = _progress_bar if sys.stderr.isatty() and not args.json else None
    deadline = time.monotonic() + args.timeout

    def wait() -> bool:
        time.sleep(0.25)
        return time.monotonic() < deadline

    link = BoardLink(name, SerialTransport(port, spec.baudrate), timeout_s=spec.timeout_s,
                     retries=spec.retries)
    started = time.monotonic()
    try:
        result = flashing.flash(link, data, progress=bar, wait=wait)
    finally:
        link.transport.close()
        if bar:
            print(file=sys.stderr)
    wall_s = time.monotonic() - started
    out = {"ok": result.ok, "board": name, "port": port, "state": result.state,
           "slot": result.slot, "running": result.version, "image": header.version_text,
           "bytes": result.bytes_sent, "wall_s": round(wall_s, 3), "link": link.stats()}
    if not result.ok:
        why = {"rolled_back": f"the board rolled back to {result.version}: image "
                              f"{header.version_text} never confirmed itself",
               "trial": f"image {header.version_text} is still on trial after "
                        f"{args.timeout:g} s; it has not confirmed itself",
               "unchanged": f"the board runs {result.version}, not the flashed "
                            f"{header.version_text}"}[result.state]
        out["error"] = why
        if args.json:
            print(json.dumps(out))
        print(f"skyrack flash: error: {why}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{name}: flashed {header.version_text} ({len(data)} bytes) into slot "
              f"{result.slot} in {wall_s:.1f} s; booted and confirmed")
    return 0


def _name_urls(items: Sequence[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, url = item.partition("=")
        if not eq or not name or not url:
            raise CliError(f"{flag} {item!r}: expected NAME=URL")
        out[name] = url
    return out


def cmd_fly(args: argparse.Namespace) -> int:
    definition = boarddef.load(args.board)
    ports = _name_urls(args.port, "--port")
    boards = []
    for spec in definition.boards:
        if spec.name in ports:
            spec = dataclasses.replace(spec, port=ports.pop(spec.name), emulator=None)
        boards.append(spec)
    if ports:
        definition.named(next(iter(ports)))  # raises: no such board
    definition = dataclasses.replace(definition, boards=tuple(boards))
    emulated = [b.name for b in definition.boards if b.emulator is not None]
    if emulated:
        raise CliError(f"{', '.join(emulated)} emulated in {args.board}: `skyrack fly` "
                       "drives boards on ports; give each a --port NAME=URL (from "
                       "`skyrack board serve`), or use `skyrack sim`")
    satellite = assemble(definition, state=args.state)
    recorder = mission.Recorder(satellite)
    try:
        mission.fly(satellite, args.seconds, recorder)
    except KeyboardInterrupt:
        print("interrupted; reporting what ran", file=sys.stderr)
    finally:
        satellite.close()
    report = mission.report(satellite, recorder)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


class _Stopped(Exception):
    """SIGINT or SIGTERM while flying paced: stop, and report what flew."""


def _ground_side(args: argparse.Namespace) -> tuple[Any, KeyFile, Callable[[float], None]]:
    """The TCP link an operator connects to, the key file, and the pacing of the sim."""
    # The keys on board: the given file; else, for a satellite kept in --state, the one
    # kept there (made on its first run); else a throwaway one.
    keys_path = args.keys or (os.path.join(args.state, "keys.json") if args.state else None)
    if keys_path and os.path.exists(keys_path):
        with open(keys_path) as f:
            keys = KeyFile.parse(f.read(), keys_path)
    elif args.keys:
        raise CliError(f"{args.keys}: no such key file")
    else:
        keys = KeyFile.generate()
        if keys_path is None:
            keys_path = os.path.join(tempfile.mkdtemp(prefix="skyrack-keys-"), "keys.json")
        os.makedirs(os.path.dirname(keys_path), exist_ok=True)
        fd = os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(keys.to_text())
    try:
        link = open_link(args.ground, listen=True)
    except OSError as e:  # ConnectionError is one
        raise CliError(f"cannot open {args.ground}: {e.strerror or e}") from None
    address = getattr(link, "address", None)
    bound = f"tcp://{address[0]}:{address[1]}" if address else args.ground
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.json:
        print(json.dumps({"ok": True, "ground": bound, "keys": keys_path}), flush=True)
    else:
        print(f"listening for the ground on {bound}; key file {keys_path}", flush=True)
    started = time.monotonic()

    def pace(t_s: float) -> None:
        while True:
            if stop.is_set():
                raise _Stopped
            ahead_s = t_s / args.speed - (time.monotonic() - started)
            if ahead_s <= 0:
                return
            stop.wait(min(ahead_s, 0.1))

    return link, keys, pace


def _archive_path(args: argparse.Namespace) -> str:
    if args.archive:
        return str(args.archive)
    if os.environ.get("SKYRACK_ARCHIVE"):
        return os.environ["SKYRACK_ARCHIVE"]
    base = os.path.join(os.path.expanduser("~"), ".local", "share", "skyrack")
    os.makedirs(base, exist_ok=True)
    return os.path.join(base, "archive.sqlite")


def cmd_ground_archive(args: argparse.Namespace, dictionary: Dictionary) -> int:
    from ground.archive import Archive, ArchiveError

    path = _archive_path(args)
    if not os.path.exists(path):
        raise CliError(f"no archive at {path}: nothing has been received there yet")
    archive = Archive(path)
    try:
        if args.ground_command == "history":
            rows = archive.history(args.last)
            if args.json:
                print(json.dumps({"commands": rows}))
            else:
                for r in rows:
                    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["t_sent"]))
                    failure = f"  ({r['failure']})" if "failure" in r else ""
                    print(f"{when}Z  {r['command']:24} {' -> '.join(r['stages']) or 'no reports'}"
                          f"{failure}")
            return 0
        if args.ground_command == "query":
            rows = archive.query(args.point, args.since, args.until)
            if args.json:
                print(json.dumps({"point": args.point, "samples": rows}))
            else:
                for t, v in rows:
                    print(f"{t:.3f}\t{v}")
            return 0
        known = set(archive.names())
        missing = [p for p in args.points if p not in known]
        if missing:
            raise CliError(f"{path}: no samples of {', '.join(missing)}")
        if args.ground_command == "export":
            text = io.StringIO(newline="")
            count = archive.export_csv(args.points, text, args.since, args.until)
            replace_file(args.output, text.getvalue().encode())
        else:
            if not plot.available():
                raise CliError(plot.INSTALL_HINT)
            series = {p: archive.query(p, args.since, args.until) for p in args.points}
            plot.plot_points(series, args.output, f"{', '.join(args.points)} ({path})")
            count = sum(len(v) for v in series.values())
    except ArchiveError as e:
        raise CliError(str(e)) from None
    finally:
        archive.close()
    if args.json:
        print(json.dumps({"ok": True, "output": args.output, "samples": count}))
    else:
        print(f"{args.output}: {count} samples")
    return 0


def cmd_ground(args: argparse.Namespace) -> int:
    from ground.archive import Archive
    from ground.client import GroundClient, Signer
    from ground.console import Console, ConsoleError, parse_args

    if args.dictionary:
        with open(args.dictionary) as f:
            dictionary = Dictionary.from_json(json.load(f))
    else:
        dictionary = FlightSoftware.dictionary()
    if args.ground_command in ("query", "export", "plot", "history"):
        return cmd_ground_archive(args, dictionary)
    if args.link is None:
        raise CliError(f"ground {args.ground_command} needs --link tcp://HOST:PORT")
    signer = None
    if args.keys:
        with open(args.keys) as f:
            keys = KeyFile.parse(f.read(), args.keys)
        key_id = args.key_id or keys.active
        if key_id not in keys.keys:
            raise CliError(f"{args.keys}: no key {key_id}")
        counter_path = f"{args.keys}.counter-{key_id}"
        counter = 0
        if os.path.exists(counter_path):
            with open(counter_path) as f:
                text = f.read().strip()
            if not text.isdigit() or int(text) > MAX_COUNTER:
                raise CliError(f"{counter_path} is damaged ({text[:24]!r}): it holds the last "
                               f"anti-replay counter key {key_id} signed with; put back a "
                               "value at or above the last one used")
            counter = int(text)

        def save(value: int) -> None:
            replace_file(counter_path, f"{value}\n".encode())

        signer = Signer(key_id, keys.keys[key_id], counter, save)
    if args.ground_command == "send":  # asked before anything is connected or sent
        spec = dictionary.command(args.name)
        values = parse_args(spec, args.args)
        if spec.hazardous and not args.yes:
            if not sys.stdin.isatty():
                raise CliError(f"{args.name} is hazardous: pass --yes to send it")
            answer = input(f"{args.name} is hazardous. Send it? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CliError(f"{args.name}: not sent")
    try:
        link = open_link(args.link, listen=False)
    except ConnectionError as e:
        raise CliError(str(e)) from None
    client = GroundClient(link, dictionary, signer, clock=time.monotonic)
    archive = Archive(_archive_path(args), client)
    client.on_tm.append(archive.ingest)
    # SIGINT and SIGTERM end the command at its next wait, never inside an archive
    # write: everything received is written before the process goes.
    stopped: list[str] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: stopped.append(signal.Signals(signum).name))

    def idle() -> None:
        if stopped:
            raise _Interrupted(stopped[0])
        archive.flush_due()
        time.sleep(0.05)

    console = Console(client, idle=idle)
    try:
        if args.ground_command == "send":
            try:
                sent = console.send_and_verify(args.name, values, args.timeout)
                error = None
            except ConsoleError as e:
                sent, error = list(client.sent.values())[-1], str(e)  # the one just sent
            out = {"ok": error is None, "command": args.name, "args": values,
                   "stages": sent.stages}
            if error:
                out["error"] = error
            if args.json:
                print(json.dumps(out))
            else:
                print(f"{args.name}: {' -> '.join(sent.stages) or 'no reports'}")
            if error:
                print(f"skyrack ground: error: {error}", file=sys.stderr)
                return 1
            return 0
        if args.ground_command == "watch":
            end = time.monotonic() + args.seconds
            printed = 0
            specs = {t.name: t for t in dictionary.telemetry}
            while time.monotonic() < end:
                for tm in client.poll():
                    if (tm.service, tm.subtype) == (3, 25):
                        hk = client.decode_hk(tm.data)
                        states = {k: specs[k].limit_state(v) for k, v in hk.items()}
                        alarms = {k: s for k, s in states.items() if s != "ok"}
                        if args.json:
                            print(json.dumps({"t_s": tm.time_s, "housekeeping": hk,
                                              "limits": alarms}), flush=True)
                        else:
                            print(f"t={tm.time_s:10.1f}  " + "  ".join(
                                f"{k}={_short(v)}{_MARK[states[k]]}" for k, v in hk.items()),
                                flush=True)
                events = list(client.events)[printed:]
                printed += len(events)
                for e in events:
                    if args.json:
                        print(json.dumps({"t_s": e.t_s, "event": e.name,
                                          "severity": e.severity, "args": e.args}), flush=True)
                    else:
                        print(f"t={e.t_s:10.1f}  EVENT {e.severity:8} {e.name} {e.args}",
                              flush=True)
                try:
                    idle()
                except _Interrupted as e:
                    print(f"skyrack ground: watch stopped by {e}; {archive.ingested} packets "
                          "received, all archived", file=sys.stderr)
                    return 0
            return 0
        if args.ground_command == "script":
            with open(args.file) as f:
                text = f.read()

            def log(step: dict[str, Any]) -> None:
                if args.json:
                    print(json.dumps(step), flush=True)
                else:
                    print(f"line {step['line']}: {step['step']}: ok", flush=True)

            try:
                steps = console.run_script(text, log)
            except ConsoleError as e:
                raise CliError(f"{args.file}: {e}") from None
            if not args.json:
                print(f"{args.file}: {steps} steps, all ok")
            return 0
        raise CliError(f"unknown ground command {args.ground_command!r}")
    except _Interrupted as e:
        raise CliError(f"{args.ground_command} stopped by {e}; {archive.ingested} packets "
                       "received, all archived") from None
    finally:
        link.close()
        for sent in client.sent.values():
            archive.record_command(sent, time.time())
        archive.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)


class _Interrupted(Exception):
    """SIGINT or SIGTERM during a ground command; the message names the signal."""


_MARK = {"ok": "", "yellow": " [YELLOW]", "red": " [RED]"}


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def cmd_campaign(args: argparse.Namespace) -> int:
    progress = _progress_bar if sys.stderr.isatty() and not args.json else None
    report = campaign.campaign(args.injections, args.seed, args.workers, progress)
    if progress:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_campaign(report))
    bad = report["outcomes"]["sdc"] + report["outcomes"]["due"]
    if bad:
        print(f"skyrack campaign: error: {report['outcomes']['sdc']} silent data corruptions, "
              f"{report['outcomes']['due']} unrecoverable jobs", file=sys.stderr)
    return 1 if bad else 0


def _progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // total
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
          file=sys.stderr, flush=True)


def format_campaign(r: dict[str, Any]) -> str:
    o = r["outcomes"]
    n = r["injections"]
    corrected = o["scrub"] + o["abft"] + o["crc"] + o["rollback"]

    def pct(k: int) -> str:
        return f"{100 * k / n:6.2f} %"

    lines = [
        f"Fault-injection campaign: {n} injections, seed {r['seed']}, {r['workers']} workers, "
        f"{r['wall_s']:.1f} s",
        "",
        f"  {'injected':34} {n:8}",
        f"  {'masked':34} {o['masked']:8} {pct(o['masked'])}",
        f"  {'detected and corrected':34} {corrected:8} {pct(corrected)}",
        f"  {'  by scrub':34} {o['scrub']:8} {pct(o['scrub'])}",
        f"  {'  by ABFT':34} {o['abft']:8} {pct(o['abft'])}",
        f"  {'  by activation CRC':34} {o['crc']:8} {pct(o['crc'])}",
        f"  {'  by rollback (hang, lost state)':34} {o['rollback']:8} {pct(o['rollback'])}",
        f"  {'detected, unrecoverable (DUE)':34} {o['due']:8} {pct(o['due'])}",
        f"  {'silent data corruption (SDC)':34} {o['sdc']:8} {pct(o['sdc'])}",
        "",
        f"  work lost: {r['steps_lost']} steps recomputed of {r['steps_run']} run; "
        f"{r['rollbacks']} rollbacks, {r['power_cycles']} power cycles, "
        f"{r['reloads']} weight reloads, {r['blocks_repaired']} blocks repaired",
        f"  overhead: protected / unprotected fault-free wall time = "
        f"{r['protection_overhead']:.2f}x (at the campaign's small job sizes)",
        "",
        "  by fault kind: " + "; ".join(
            f"{kind} " + ", ".join(f"{k} {v}" for k, v in outcomes.items())
            for kind, outcomes in r["by_kind"].items()),
    ]
    return "\n".join(lines)


def cmd_dictionary(args: argparse.Namespace) -> int:
    if args.topology:
        return _print_topology(args)
    dictionary = FlightSoftware.dictionary()
    if args.json:
        print(json.dumps(dictionary.to_json(), indent=2))
        return 0
    if args.xtce:
        from hal.xtce import to_xtce

        print(to_xtce(dictionary))
        return 0
    lines = ["Commands"]
    for c in dictionary.commands:
        arg_text = " ".join(_arg_text(a) for a in c.args)
        lines.append(f"  {c.name} {arg_text}".rstrip())
        lines.append(f"      {c.description}")
    lines.append("Telemetry")
    for t in dictionary.telemetry:
        unit = f" [{t.unit}]" if t.unit else ""
        lines.append(f"  {t.name:32} {t.type:6} {t.description}{unit}")
    lines.append("Events")
    for e in dictionary.events:
        lines.append(f"  {e.name:32} {e.severity.value:8} {e.description}")
    print("\n".join(lines))
    return 0


def _print_topology(args: argparse.Namespace) -> int:
    if args.xtce:
        raise SystemExit("skyrack dictionary: --topology is JSON or text, not XTCE")
    # The default satellite's instances, wired, with a ground link so that all is read.
    satellite = assemble(boarddef.load(boarddef.default_path()), seed=1,
                         link=InProcessLink.pair()[0])
    try:
        graph = satellite.flight.topology()
    finally:
        satellite.close()
    if args.json:
        print(json.dumps(graph, indent=2))
        return 0
    lines = ["Instances, in build order (flight/topology.py)"]
    for row in graph["instances"]:
        service = f"  PUS service {row['service']}" if row["service"] else ""
        lines.append(f"  {row['instance']:12} {row['kind']}{service}")
        for port, target in row["connections"].items():
            shown = ", ".join(target) if isinstance(target, list) else target
            lines.append(f"      {port:12} <- {shown}")
        for read in row["reads"]:
            lines.append(f"      reads {read['topic']} (from {read['from']})")
    lines.append("Resources the flight computer provides")
    lines += [f"  @{name:18} {what}" for name, what in graph["resources"].items()]
    print("\n".join(lines))
    return 0


def _arg_text(a: Any) -> str:
    kind = ValueType(a.type).usage(a, a.min, a.max)
    unit = f" {a.unit}" if a.unit else ""
    return f"{a.name}=<{kind}{unit}>"


def _hhmm(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_report(r: dict[str, Any]) -> str:
    seed = f" (seed {r['seed']})" if r["seed"] is not None else ""
    lines = [f"Mission report: {r['satellite']}{seed}"]
    if "orbit" not in r:
        lines.append(f"Flew {r['duration_s']:.1f} s on the wall clock, against real ports")
    if "orbit" in r:
        o, w = r["orbit"], r["world"]
        lines += [
            "",
            f"Orbit       {o['altitude_km']:g} km circular, sun-synchronous "
            f"(i = {o['sso_inclination_deg']:.2f} deg), LTAN {_hhmm(o['ltan_h'])}, "
            f"beta {o['beta_deg_start']:.1f} .. {o['beta_deg_end']:.1f} deg",
            f"            period {o['period_s']:.1f} s; flew {o['orbits']:g} orbits "
            f"= {r['duration_s']:.0f} s",
            f"Sunlight    {w['sunlit_s']:.0f} s lit, {w['eclipse_s']:.0f} s in eclipse "
            f"({w['eclipses']} eclipses, {100 * w['eclipse_fraction']:.1f} %; "
            f"{w['penumbra_s']:.0f} s in penumbra)",
            f"Energy      solar in {w['solar_in_wh']:.1f} Wh, loads out {w['load_out_wh']:.1f} Wh, "
            f"shunted {w['shunted_wh']:.1f} Wh",
            f"Battery     state of charge {w['soc_pct']['min']:.1f} .. "
            f"{w['soc_pct']['max']:.1f} %, ending {w['soc_pct']['end']:.1f} %",
            f"Radiation   {r['radiation']['upsets_injected_total']} upsets injected "
            f"(rates x{r['radiation']['acceleration']:g}; {r['radiation']['saa_s']:.0f} s in the "
            "SAA): " + ", ".join(f"{k} {v}" for k, v in r["radiation"]["upsets_injected"].items()),
            "Temperature " + "; ".join(
                f"{n} {t['min']:.1f} .. {t['max']:.1f} degC" for n, t in w["temps_c"].items()),
        ]
    f = r["flight"]
    lines += ["", "Flight software telemetry (min / max / last, samples)"]
    for name, s in f["telemetry"].items():
        lines.append(f"  {name:32} {s['min']:10.2f} {s['max']:10.2f} {s['last']:10.2f}"
                     f"  {s['samples']}")
    c = f["commands"]
    lines += [
        "",
        f"Commands    {c['completed']} completed, {c['rejected']} rejected, {c['failed']} failed",
    ]
    for entry in f["command_log"]:
        reason = f": {entry['reason']}" if "reason" in entry else ""
        lines.append(f"  t={entry['t_s']:8.1f} s  {entry['command']:24} {entry['status']}{reason}")
    m = r["modes"]
    lines.append("Modes       " + ", ".join(f"{k} {v:.0f} s" for k, v in m["mode_s"].items() if v)
                 + "; compute budget: " + ", ".join(f"{k} {v:.0f} s"
                                                     for k, v in m["budget_s"].items())
                 + f"; shed {m['compute_sheds']} times")
    actions = r["fdir"]["actions"]
    lines.append(f"FDIR        {len(actions)} actions" + "".join(
        f"\n  t={a['t_s']:8.1f} s  {a['action']}" for a in actions))
    comp = r["compute"]
    by = ", ".join(f"{k} {v}" for k, v in comp["corrected_by"].items())
    lines.append(f"Compute     {comp['completed']} jobs completed, {comp['failed']} failed, "
                 f"{comp['faults_corrected']} faults corrected ({by or 'none'}), "
                 f"{comp['silent_corruptions']} silent corruptions")
    for job in comp["jobs"]:
        check = {True: "matches the fault-free reference", False: "DIFFERS from the reference",
                 None: ""}[job.get("matches_reference")]
        digest = f" crc32c {job['crc32c']:08x}" if "crc32c" in job else ""
        lines.append(f"  job {job['id']}: {job['workload']} seed {job['seed']}, "
                     f"{job['steps']} steps, {job['state']}{digest} {check}".rstrip())
    events = ", ".join(f"{n} {sev}" for sev, n in f["events"].items()) or "none"
    e = f["executive"]
    lines += [
        f"Events      {events}",
        f"Executive   {e['ticks']} ticks at {'/'.join(f'{h:g}' for h in e['rates_hz'])} Hz, "
        f"{e['overruns']} overruns, {e['task_errors']} task errors",
        "Board links " + "; ".join(
            f"{n}: {s['requests']} requests, {s['retries']} retries, {s['timeouts']} timeouts, "
            f"{s['frames_rejected']} frames rejected" for n, s in r["boards"].items()),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`skyrack ground watch | head`): not a failure of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CliError, SkyrackError, boarddef.DefinitionError, ValueError, OSError,
            ConnectionError) as e:
        reason = " ".join(str(e).split())
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": reason}))
        print(f"skyrack {args.command}: error: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
