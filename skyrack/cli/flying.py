"""`skyrack sim`, `fly` and `campaign`: flying the flight software, and fault campaigns."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from boards import definition as boarddef
from hal.auth import KeyFile
from hal.packetlink import open_link
from sim.stations import all_passes
from skyrack import campaign, mission, plot
from skyrack.assembly import assemble, build_world, identify
from skyrack.cli.options import (
    CliError,
    SignalStop,
    altitude_km,
    bench_definition,
    days,
    epoch,
    injections,
    ltan,
    orbits,
    output,
    progress_bar,
    seconds,
    shared,
    spacecraft_id,
    speed,
    workers,
)
from skyrack.report import format_campaign, format_passes, format_report, hhmm, utc_text


def add_parsers(sub: Any) -> None:
    sim = sub.add_parser("sim", help="fly a simulated satellite and print a mission report",
                         parents=[shared("seed", "state", "json", "ground")])
    sim.add_argument("--board", default=None, metavar="TOML",
                     help="board definition (default: the packaged boards/sim.toml)")
    length = sim.add_mutually_exclusive_group()
    length.add_argument("--orbits", type=orbits, default=None,
                        help="orbits to fly (default 2)")
    length.add_argument("--days", type=days, default=None,
                        help="days to fly, instead of --orbits")
    orbit_options(sim, "when the sim starts")
    sim.add_argument("--spacecraft-id", type=spacecraft_id, default=None, metavar="ID",
                     help="the satellite's CCSDS spacecraft id, which its telecommands "
                          "are signed for (default: the definition's, 1)")
    sim.add_argument("--contact", choices=("always", "passes"), default=None,
                     help="with --ground: the space link always up, or up only while one of "
                          "the definition's ground stations sees the satellite, telemetry "
                          "made out of contact played back at the next pass (default: the "
                          "definition's sim.contact, always)")
    sim.add_argument("--serial", action="store_true",
                     help="serve every emulated board on a pseudo-terminal and talk to it "
                          "through pyserial, as to real boards")
    sim.add_argument("--speed", type=speed, default=1.0,
                     help="with --ground, the sim flies paced to the wall clock (and without "
                          "--orbits or --days until interrupted): simulated seconds per wall "
                          "second (default 1)")
    sim.add_argument("--plot", metavar="FILE", default=None,
                     help="draw state of charge, power, temperatures and mode to FILE "
                          "(PNG, PDF or SVG; needs the 'plot' extra: matplotlib)")
    sim.set_defaults(run=cmd_sim)

    fly = sub.add_parser("fly", help="fly the flight software against boards on serial "
                         "ports, on the wall clock, and print what it saw",
                         parents=[shared("state", "json", "ground")])
    fly.add_argument("--board", required=True, metavar="TOML",
                     help="definition whose boards are on ports (e.g. a copy of "
                          "boards/flatsat-example.toml)")
    fly.add_argument("--port", action="append", default=[], metavar="NAME=URL",
                     help="put board NAME on this port instead (repeatable); this also "
                          "turns an emulated board of a sim definition into a port")
    fly.add_argument("--seconds", type=seconds, default=60.0,
                     help="how long to fly (default 60); Ctrl-C stops early and reports")
    fly.set_defaults(run=cmd_fly)

    passes = sub.add_parser("passes", help="predict a satellite's contacts with its "
                            "ground stations", parents=[shared("json")])
    passes.add_argument("--board", default=None, metavar="TOML",
                        help="definition with [[ground_stations]] (default: the packaged "
                             "boards/sim.toml)")
    passes.add_argument("--days", type=days, default=1.0, help="how far ahead (default 1)")
    passes.add_argument("--station", action="append", default=[], metavar="NAME",
                        help="only this station (repeatable; default: every one)")
    orbit_options(passes, "when the prediction starts")
    passes.set_defaults(run=cmd_passes)

    camp = sub.add_parser("campaign", help="inject faults into compute jobs and tally what "
                          "the protection made of them", parents=[shared("seed", "json")])
    camp.add_argument("--injections", type=injections, default=1000,
                      help="number of injected faults, one per job (default 1000)")
    camp.add_argument("--workers", type=workers, default=os.cpu_count() or 1,
                      help="worker processes (default: one per core)")
    camp.add_argument("--workloads", type=workload_list, default=tuple(campaign.JOBS),
                      metavar="A,B", help="the workloads to inject into (default: "
                      f"{','.join(campaign.JOBS)})")
    camp.set_defaults(run=cmd_campaign)


def workload_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in campaign.JOBS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload {unknown[0]!r} (known: {', '.join(campaign.JOBS)})" if unknown
            else "name at least one workload")
    return names


def orbit_options(parser: argparse.ArgumentParser, start: str) -> None:
    """--altitude, --ltan and --epoch, over the definition's [sim] table."""
    parser.add_argument("--altitude", type=altitude_km, default=None, metavar="KM",
                        help="circular orbit altitude in km (default: the definition's, 500)")
    parser.add_argument("--ltan", type=ltan, default=None, metavar="HH:MM",
                        help="local time of the ascending node: 06:00 dawn-dusk .. 12:00 "
                             "noon-midnight (default: the definition's, 10:30)")
    parser.add_argument("--epoch", type=epoch, default=None, metavar="UTC",
                        help=f"{start}: an ISO 8601 date or time, UTC (default: the "
                             "definition's, else 2027-03-16); the LTAN is in mean solar time "
                             "at it")


def cmd_sim(args: argparse.Namespace) -> int:
    if args.plot and not plot.available():
        raise CliError(plot.INSTALL_HINT)  # before flying, not after
    path = args.board or boarddef.default_path()
    definition = boarddef.load(path)
    if not definition.emulated:
        raise CliError(f"{path}: not every board is emulated; `skyrack sim` needs a sim "
                       "definition")
    if args.spacecraft_id is not None:
        definition = dataclasses.replace(definition, spacecraft_id=args.spacecraft_id)
    if args.contact is not None:
        if not args.ground:
            raise CliError("--contact needs --ground: without a ground there is no space "
                           "link to bring up and down")
        if args.contact == "passes" and not definition.stations:
            raise CliError(f"{path}: --contact passes needs [[ground_stations]]")
        definition = dataclasses.replace(definition,
                                         sim={**definition.sim, "contact": args.contact})
    link, keys, pace, throwaway = None, None, None, None
    if args.ground:
        link, keys, pace, throwaway = _ground_side(args, definition.spacecraft_id)
    satellite = assemble(definition, seed=args.seed, altitude_km=args.altitude, ltan=args.ltan,
                         epoch=args.epoch,
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
        if throwaway is not None:  # its keys die with the satellite they were made for
            shutil.rmtree(throwaway, ignore_errors=True)
    wall_s = time.perf_counter() - started
    duration_s = satellite.clock.now_s()
    report = mission.report(satellite, recorder, seed=args.seed, orbits=duration_s / period_s)
    if args.plot:
        try:
            plot.plot_mission(recorder.series, args.plot,
                              f"{report['satellite']}: {report['orbit']['altitude_km']:g} km, "
                              f"LTAN {hhmm(report['orbit']['ltan_h'])}, seed {args.seed}",
                              {f"job {job['id']} ({job['workload']})": job["loss"]
                               for job in report["compute"]["jobs"] if job.get("loss")})
        except (RuntimeError, ValueError, OSError) as e:
            raise CliError(f"cannot write plot {args.plot}: {e}") from None
    if args.json:
        output(args, report, "", indent=2)
    else:
        print(format_report(report))
        print(f"(flew {duration_s:.0f} s in {wall_s:.2f} s of wall time, "
              f"{duration_s / wall_s:.0f}x real time)", file=sys.stderr)
    return 0


def cmd_fly(args: argparse.Namespace) -> int:
    definition = bench_definition(args.board, args.port, "fly")
    link, keys, throwaway = None, None, None
    if args.ground:
        link, keys, _, throwaway = _ground_side(args, definition.spacecraft_id, paced=False)
    satellite = assemble(definition, state=args.state, link=link, keys=keys)
    try:
        boards = identify(satellite)
    except boarddef.DefinitionError:
        satellite.close()
        raise
    if not args.json:
        from skyrack.cli.bench import _board_line

        for name, info in boards.items():
            print(_board_line(name, info), file=sys.stderr)
    recorder = mission.Recorder(satellite)
    status = _StatusLine(satellite, recorder) if sys.stderr.isatty() and not args.json else None
    try:
        mission.fly(satellite, args.seconds, recorder, pace=status)
    except KeyboardInterrupt:
        print("\ninterrupted; reporting what ran", file=sys.stderr)
    finally:
        satellite.close()
        if throwaway:
            shutil.rmtree(throwaway, ignore_errors=True)
    report = mission.report(satellite, recorder)
    report["boards"] = {name: {**info, **report["boards"].get(name, {})}
                        for name, info in boards.items()}
    output(args, report, format_report(report), indent=2)
    return 0


class _StatusLine:
    """One line on the terminal, rewritten about once a second while `fly` runs."""

    def __init__(self, satellite: Any, recorder: mission.Recorder) -> None:
        self.satellite = satellite
        self.recorder = recorder
        self.shown_s = -1.0

    def __call__(self, t_s: float) -> None:
        if t_s - self.shown_s < 1.0:
            return
        self.shown_s = t_s
        flight = self.satellite.flight
        modes = flight.component("mode")
        link = flight.space_link.counters
        soc = self.recorder.points.get("power.soc_pct")
        soc_text = f"  soc {soc[2]:5.1f} %" if soc else ""
        print(f"\rt={t_s:7.0f} s  mode {modes.mode.value:8} budget {modes.budget.value:13}"
              f"{soc_text}  tc {link['tc_accepted']}/{link['tc_received']}",
              end="", file=sys.stderr, flush=True)


class _Stopped(Exception):
    """SIGINT or SIGTERM while flying paced: stop, and report what flew."""


def _ground_side(args: argparse.Namespace, spacecraft_id: int, paced: bool = True
                 ) -> tuple[Any, KeyFile, Callable[[float], None] | None, str | None]:
    """The TCP link an operator connects to, the key file, the pacing of the sim, and
    the directory of a throwaway key file (removed when the sim ends), if one was made."""
    # The keys on board: the given file; else, for a satellite kept in --state, the one
    # kept there (made on its first run); else a throwaway one.
    keys_path = args.keys or (os.path.join(args.state, "keys.json") if args.state else None)
    throwaway = None
    if keys_path and os.path.exists(keys_path):
        keys = KeyFile.load(keys_path)
    elif args.keys:
        raise CliError(f"{args.keys}: no such key file")
    else:
        keys = KeyFile.generate(spacecraft=spacecraft_id)
        if keys_path is None:
            throwaway = tempfile.mkdtemp(prefix="skyrack-keys-")
            keys_path = os.path.join(throwaway, "keys.json")
        os.makedirs(os.path.dirname(keys_path), exist_ok=True)
        keys.save_new(keys_path)
    try:
        link = open_link(args.ground, listen=True)
    except OSError as e:  # ConnectionError is one
        raise CliError(f"cannot open {args.ground}: {e.strerror or e}") from None
    address = getattr(link, "address", None)
    bound = f"tcp://{address[0]}:{address[1]}" if address else args.ground
    if paced:  # handled before the link is announced: a signal right after it still counts
        stop = SignalStop()
    if args.json:
        output(args, {"ground": bound, "keys": keys_path}, "")
        sys.stdout.flush()
    else:
        print(f"listening for the ground on {bound}; key file {keys_path}", flush=True)
    if not paced:  # on the wall clock already (real boards): Ctrl-C stops it as usual
        return link, keys, None, throwaway
    started = time.monotonic()

    def pace(t_s: float) -> None:
        while True:
            if stop.is_set():
                raise _Stopped
            ahead_s = t_s / args.speed - (time.monotonic() - started)
            if ahead_s <= 0:
                return
            stop.wait(min(ahead_s, 0.1))

    return link, keys, pace, throwaway


def cmd_passes(args: argparse.Namespace) -> int:
    path = args.board or boarddef.default_path()
    definition = boarddef.load(path)
    stations = definition.stations
    if not stations:
        raise CliError(f"{path}: no [[ground_stations]] to predict passes over")
    if args.station:
        known = {s.name for s in stations}
        for name in args.station:
            if name not in known:
                raise CliError(f"{path}: no ground station {name!r} (it has "
                               f"{', '.join(sorted(known))})")
        stations = tuple(s for s in stations if s.name in args.station)
    orbit = build_world(definition, altitude_km=args.altitude, ltan=args.ltan,
                        epoch=args.epoch).orbit
    found = all_passes(stations, orbit, 0.0, args.days * 86400.0)
    result = {
        "epoch_utc": utc_text(orbit.epoch_unix_s),
        "altitude_km": orbit.altitude_km,
        "days": args.days,
        "passes": [{"station": p.station,
                    "aos_utc": utc_text(round(orbit.epoch_unix_s + p.aos_s), "seconds"),
                    "los_utc": utc_text(round(orbit.epoch_unix_s + p.los_s), "seconds"),
                    "aos_s": round(p.aos_s, 2), "los_s": round(p.los_s, 2),
                    "duration_s": round(p.duration_s, 2),
                    "max_elevation_deg": round(p.max_elevation_deg, 2)} for p in found],
    }
    output(args, result, format_passes(result), indent=2)
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    progress = progress_bar if sys.stderr.isatty() and not args.json else None
    report = campaign.campaign(args.injections, args.seed, args.workers, progress,
                               args.workloads)
    if progress:
        print(file=sys.stderr)
    output(args, report, format_campaign(report), indent=2)
    bad = report["outcomes"]["sdc"] + report["outcomes"]["due"]
    if bad:
        print(f"skyrack campaign: error: {report['outcomes']['sdc']} silent data corruptions, "
              f"{report['outcomes']['due']} unrecoverable jobs", file=sys.stderr)
    return 1 if bad else 0
