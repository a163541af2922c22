"""`skyrack ground`: operating a satellite over its space link, and its archive."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import json
import math
import os
import signal
import socket
import sys
import time
from typing import Any

from flight.software import FlightSoftware
from ground.keys import sequence_for, signer_from_file
from hal.auth import DEFAULT_SPACECRAFT, KeyFile
from hal.dictionary import Dictionary, Severity
from hal.durable import replace_file
from hal.errors import InputError
from hal.packetlink import InProcessLink, open_link
from skyrack import plot
from skyrack.cli import services
from skyrack.cli.options import (
    CliError,
    Parser,
    injections,
    key_count,
    output,
    seconds,
    shared,
    source_id,
    spacecraft_id,
    time_window,
    utc_window,
)
from skyrack.report import short

SEVERITIES = [s.value for s in Severity]


def add_parsers(sub: Any) -> None:
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
    ground.add_argument("--server", metavar="URL", default=None,
                        help="a running ground server (`ground serve`): send through it "
                             "instead of a link of this process's own")
    ground.add_argument("--satellite", metavar="NAME", default=None,
                        help="with --server: which satellite of the server's mission "
                             "(default: its first)")
    ground.add_argument("--sender", metavar="NAME", default=None,
                        help="who sends, as the server records it (default: user@host)")
    ground.add_argument("--source-id", type=source_id, default=1, metavar="ID",
                        help="this ground station's PUS source id, 1..65535 (default 1): "
                             "reports are addressed to it; give each station its own")
    ground.add_argument("--dictionary", metavar="JSON", default=None,
                        help="the satellite's dictionary (`skyrack dictionary --json`); "
                             "default: this installation's flight software")
    ground_sub = ground.add_subparsers(dest="ground_command", required=True,
                                       parser_class=Parser)
    send = ground_sub.add_parser("send", help="send a command and wait for its verification",
                                 parents=[shared("json")])
    send.add_argument("name", help="command, as the dictionary names it: power.switch")
    send.add_argument("args", nargs="*", metavar="NAME=VALUE", help="its arguments")
    send.add_argument("--timeout", type=seconds, default=10.0,
                      help="seconds to wait for completion (default 10)")
    send.add_argument("--yes", action="store_true", help="send a hazardous command "
                      "without asking")
    watch = ground_sub.add_parser("watch", help="print housekeeping and events as they come",
                                  parents=[shared("json")])
    watch.add_argument("--seconds", type=seconds, default=None,
                       help="how long to watch (default: until Ctrl-C)")
    watch.add_argument("--point", action="append", default=None, metavar="POINT",
                       help="only this point (repeatable)")
    watch.add_argument("--component", action="append", default=None, metavar="NAME",
                       help="only this component's points and events (repeatable)")
    watch.add_argument("--severity", choices=SEVERITIES, default=None,
                       help="events of this severity and above")
    script = ground_sub.add_parser("script", help="run a file of send / wait / expect / "
                                   "sleep steps; stops at the first that fails",
                                   parents=[shared("json")])
    script.add_argument("file")
    script.add_argument("--check", action="store_true",
                        help="only check every line (commands, arguments, points, events, "
                             "comparisons) and send nothing; needs no link")
    query = ground_sub.add_parser("query", help="a telemetry point's values from the archive",
                                  parents=[shared("json")])
    query.add_argument("point", help="telemetry point: power.batt_v")
    time_window(query)
    events = ground_sub.add_parser("events", help="events from the archive, by UTC time, "
                                   "severity and name", parents=[shared("json")])
    utc_window(events)
    events.add_argument("--severity", choices=SEVERITIES, default=None,
                        help="this severity and above")
    events.add_argument("--name", default=None, help="only this event: power.latchup")
    timeline = ground_sub.add_parser("timeline", help="what happened between two UTC times: "
                                     "telemetry, events and commands together",
                                     parents=[shared("json")])
    utc_window(timeline)
    timeline.add_argument("--point", action="append", default=None, metavar="POINT",
                          help="telemetry to show (repeatable; default: none, events and "
                               "commands only; 'all' for every point)")
    ground_sub.add_parser("sessions", help="the flight-software boots the archive saw",
                          parents=[shared("json")])
    export = ground_sub.add_parser("export", help="points from the archive as CSV",
                                   parents=[shared("json")])
    export.add_argument("points", nargs="+", metavar="POINT")
    export.add_argument("-o", "--output", required=True,
                        help="file to write: CSV (utc, t_s, session, point, value, unit), or "
                             "JSON if it ends in .json")
    export.add_argument("--wide", action="store_true",
                        help="CSV a row a packet, a column a point (name [unit])")
    time_window(export)
    hist = ground_sub.add_parser("history", help="commands sent, with the verification "
                                 "stages each reached (from the archive)", parents=[shared("json")])
    hist.add_argument("--last", type=injections, default=50, metavar="N",
                      help="how many (default 50)")
    gplot = ground_sub.add_parser("plot", help="points from the archive against time "
                                  "(needs the 'plot' extra: matplotlib)", parents=[shared("json")])
    gplot.add_argument("points", nargs="+", metavar="POINT")
    gplot.add_argument("-o", "--output", required=True, help="PNG, PDF or SVG to write")
    time_window(gplot)
    serve = ground_sub.add_parser(
        "serve", help="the mission's ground server: owns the link and the archive; "
        "operators, scripts and tools attach over HTTP and WebSocket (needs the 'web' "
        "extra)", parents=[shared("json")])
    serve.add_argument("--listen", default=None, metavar="URL",
                       help="where clients connect: http://HOST:PORT (default: the "
                            "mission's, else http://127.0.0.1:8600; port 0: any free)")
    serve.add_argument("--mission", metavar="TOML", default=None,
                       help="the mission's satellites, their links and keys, and its "
                            "archive (ground.mission); instead of --link, --keys, --archive")
    gateway = ground_sub.add_parser(
        "gateway", help="let standard ground tools (YAMCS, tmtccmd) command the satellite: "
        "TM forwarded unchanged, their unsigned TCs signed with --keys",
        parents=[shared("json")])
    gateway.add_argument("--listen", required=True, metavar="URL",
                         help="where the tools connect: tcp://HOST:PORT (port 0: any free)")
    gateway.add_argument("--listen-tc", default=None, metavar="URL",
                         help="a second listener for tools whose TC link is separate "
                              "(YAMCS's TcpTcDataLink): TCs in, nothing out")
    gateway.add_argument("--seconds", type=seconds, default=None,
                         help="stop after this long (default: until SIGINT or SIGTERM)")
    services.add_parsers(ground_sub)
    ground.set_defaults(run=cmd_ground)

    keys = sub.add_parser("keys", help="key files that telecommands are signed with")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=Parser)
    new = keys_sub.add_parser("new", help="make a key file (mode 0600; never overwrites one)",
                              parents=[shared("json")])
    new.add_argument("file", help="the key file to write")
    new.add_argument("--count", type=key_count, default=2,
                     help="keys in the file, ids 1..N; key 1 active (default 2)")
    new.add_argument("--spacecraft-id", type=spacecraft_id, default=1, metavar="ID",
                     help="the satellite the keys are for (its satellite.spacecraft_id; "
                          "default 1): each satellite has its own keys")
    new.set_defaults(run=cmd_keys_new)


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
    from ground.remote import RemoteArchive, ServerClient, ServerError

    archive: Any
    if args.server is not None:  # read through the server that writes it
        if args.ground_command in ("export", "plot"):
            raise CliError(f"ground {args.ground_command} reads the archive file: run it "
                           "where the server keeps it (--archive FILE)")
        archive, path = RemoteArchive(ServerClient(args.server, satellite=args.satellite)), \
            args.server
    else:
        path = _archive_path(args)
        if not os.path.exists(path):
            raise CliError(f"no archive at {path}: nothing has been received there yet")
        archive = Archive(path)
    try:
        if args.ground_command in ("events", "timeline", "sessions"):
            return _archive_views(args, archive)
        if args.ground_command == "history":
            rows = archive.history(args.last)
            if args.json:
                output(args, {"commands": rows}, "")
            else:
                for r in rows:
                    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["t_sent"]))
                    failure = f"  ({r['failure']})" if r["failure"] else ""
                    print(f"{when}Z  {r['command']:24} {' -> '.join(r['stages']) or 'no reports'}"
                          f"{failure}")
            return 0
        if args.ground_command == "query":
            rows = archive.query(args.point, args.since, args.until)
            if args.json:
                output(args, {"point": args.point, "samples": rows}, "")
            else:
                for t, v in rows:
                    print(f"{t:.3f}\t{v}")
            return 0
        known = set(archive.names())
        missing = [p for p in args.points if p not in known]
        if missing:
            raise CliError(f"{path}: no samples of {', '.join(missing)}")
        if args.ground_command == "export":
            units = {p.name: p.unit for p in dictionary.telemetry}
            if args.output.endswith(".json"):
                rows = archive.export_json(args.points, args.since, args.until, units)
                count = len(rows)
                replace_file(args.output, json.dumps(rows, indent=1).encode())
            else:
                text = io.StringIO(newline="")
                count = archive.export_csv(args.points, text, args.since, args.until,
                                           wide=args.wide, units=units)
                replace_file(args.output, text.getvalue().encode())
        else:
            if not plot.available():
                raise CliError(plot.INSTALL_HINT)
            series = {p: archive.query(p, args.since, args.until) for p in args.points}
            plot.plot_points(series, args.output, f"{', '.join(args.points)} ({path})")
            count = sum(len(v) for v in series.values())
    except (ArchiveError, ServerError) as e:
        raise CliError(str(e)) from None
    finally:
        archive.close()
    output(args, {"ok": True, "output": args.output, "samples": count},
           f"{args.output}: {count} samples")
    return 0


def _when(rx_utc: float | None) -> str:
    if rx_utc is None:
        return "(no reception time)"
    millis = int(rx_utc * 1000) % 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(rx_utc)) + f".{millis:03d}Z"


def _archive_views(args: argparse.Namespace, archive: Any) -> int:
    """events, timeline and sessions: the archive by spacecraft, session and UTC time."""
    if args.ground_command == "sessions":
        rows = archive.sessions()
        output(args, {"ok": True, "sessions": rows}, "\n".join(
            f"session {r['session']:4}  spacecraft {r['spacecraft']}  boot "
            f"{r['boot'] if r['boot'] is not None else '?'}  from {_when(r['first_rx_utc'])}"
            for r in rows) or "no sessions")
        return 0
    if args.ground_command == "events":
        rows = archive.events(args.since, args.until, spacecraft=args.spacecraft,
                              severity=args.severity, name=args.name)
        output(args, {"ok": True, "events": rows}, "\n".join(
            f"{_when(e['rx_utc'])}  sc {e['spacecraft']} s{e['session']} t={e['t_s']:.1f}  "
            f"{e['severity'].upper():8} {e['name']} "
            + " ".join(f"{k}={short(v)}" for k, v in e["args"].items()) for e in rows)
            or "no events")
        return 0
    points = None if args.point == ["all"] else (args.point or [])
    view = archive.timeline(args.since, args.until, spacecraft=args.spacecraft, names=points)
    lines = ([(r["rx_utc"], f"sc {r['spacecraft']}  {r['point']} = {short(r['value'])}")
              for r in view["telemetry"]]
             + [(e["rx_utc"], f"sc {e['spacecraft']}  EVENT {e['severity'].upper()} "
                 f"{e['name']} " + " ".join(f"{k}={short(v)}" for k, v in e["args"].items()))
                for e in view["events"]]
             + [(c["t_sent_utc"], f"sc {c['spacecraft']}  COMMAND {c['command']} by "
                 f"{c['sender'] or '?'}: {' -> '.join(c['stages']) or 'no reports'}"
                 + (f" ({c['failure']})" if c["failure"] else "")) for c in view["commands"]])
    output(args, {"ok": True, **view}, "\n".join(
        f"{_when(t)}  {text}" for t, text in sorted(lines, key=lambda x: x[0] or 0))
        or "nothing in that window")
    return 0


def load_dictionary(path: str) -> Dictionary:
    """The dictionary in the JSON file at `path` (`skyrack dictionary --json`)."""
    try:
        with open(path) as f:
            return Dictionary.from_json(json.load(f))
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(f"{path}: not a dictionary: {e}") from None


def cmd_ground(args: argparse.Namespace) -> int:
    from ground.archive import Archive
    from ground.client import GroundClient
    from ground.console import Console, ConsoleError, parse_args

    dictionary = load_dictionary(args.dictionary) if args.dictionary \
        else FlightSoftware.dictionary()
    if args.ground_command in ("query", "export", "plot", "history", "events", "timeline",
                               "sessions"):
        return cmd_ground_archive(args, dictionary)
    if args.server is not None and args.ground_command == "send":
        return cmd_ground_send_remote(args, dictionary)
    if args.server is not None and args.ground_command == "watch":
        return cmd_ground_watch_remote(args, dictionary)
    if args.ground_command == "script" and args.check:
        return cmd_ground_script_check(args, dictionary)
    if args.server is not None and args.ground_command == "script":
        return cmd_ground_script_remote(args)
    if args.ground_command == "serve":
        return cmd_ground_serve(args, dictionary)
    if args.link is None:
        raise CliError(f"ground {args.ground_command} needs --link tcp://HOST:PORT")
    if args.ground_command == "gateway":
        return cmd_ground_gateway(args)
    signer = signer_from_file(args.keys, args.key_id) if args.keys else None
    if args.ground_command == "send":  # asked before anything is connected or sent
        spec = dictionary.command(args.name)
        values = parse_args(spec, args.args)
        if spec.hazardous and not args.yes:
            if not sys.stdin.isatty():
                raise CliError(f"{args.name} is hazardous: pass --yes to send it")
            shown = " ".join(f"{k}={v}" for k, v in values.items()) or "no arguments"
            answer = input(f"{args.name} is hazardous. Send it with {shown}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CliError(f"{args.name}: not sent")
    try:
        link = open_link(args.link, listen=False)
    except ConnectionError as e:
        raise CliError(str(e)) from None
    client = GroundClient(link, dictionary, signer, clock=time.time,  # UTC: the archive's
                          source_id=args.source_id,
                          sequence=sequence_for(args.keys, args.source_id))
    archive = Archive(_archive_path(args), client,
                      spacecraft=signer.spacecraft if signer else DEFAULT_SPACECRAFT)
    client.on_batch.append(archive.ingest_many)
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
            answers = [{"name": e.name, "t_s": e.t_s, "args": e.args} for e in sent.answers]
            out = {"ok": error is None, "command": args.name, "args": values, "id": None,
                   "stages": sent.stages, "answers": answers, "job": _job(answers),
                   "error": error}
            output(args, out, _sent_text(args.name, sent.stages, answers))
            if error:
                print(f"skyrack ground: error: {error}", file=sys.stderr)
                return 1
            return 0
        if args.ground_command == "watch":
            watcher = _watcher(args, dictionary)
            try:
                console.watch(args.seconds or math.inf, watcher.housekeeping,
                              lambda e: watcher.event(e.t_s, e.name, e.severity, e.args))
            except _Interrupted as e:
                print(f"skyrack ground: watch stopped by {e}; {archive.ingested} packets "
                      "received, all archived", file=sys.stderr)
            return 0
        if args.ground_command in services.VERBS:
            return services.run(args, console)
        if args.ground_command == "script":
            return _run_script(args, console)
        raise CliError(f"unknown ground command {args.ground_command!r}")
    except _Interrupted as e:
        raise CliError(f"{args.ground_command} stopped by {e}; {archive.ingested} packets "
                       "received, all archived") from None
    finally:
        link.close()
        for sent in client.sent.values():
            archive.record_command(sent, sent.t_sent_s, _sender(args))
        archive.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)


def cmd_ground_gateway(args: argparse.Namespace) -> int:
    from ground.gateway import Gateway

    if args.keys is None:
        raise CliError("ground gateway needs --keys FILE: it signs the tools' TCs")
    signer = signer_from_file(args.keys, args.key_id)
    keys = KeyFile.load(args.keys)
    try:
        listener = open_link(args.listen, listen=True)
    except OSError as e:
        raise CliError(f"cannot listen on {args.listen}: {e.strerror or e}") from None
    tc_only = None
    try:
        if args.listen_tc:
            tc_only = open_link(args.listen_tc, listen=True)
        link = open_link(args.link, listen=False)
    except OSError as e:
        listener.close()
        if tc_only is not None:
            tc_only.close()
        where = args.link if tc_only or not args.listen_tc else args.listen_tc
        raise CliError(f"cannot open {where}: {e.strerror or e}") from None
    gateway = Gateway(link, listener, signer, keys.keys, args.source_id, tc_only)
    bound = _bound(listener, args.listen)
    bound_tc = _bound(tc_only, args.listen_tc) if tc_only is not None else None
    stopped: list[str] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: stopped.append(signal.Signals(signum).name))
    output(args, {"ok": True, "listen": bound, "listen_tc": bound_tc, "link": args.link,
                  "spacecraft_id": signer.spacecraft, "source_id": args.source_id},
           f"gateway on {bound}{f' (TCs also on {bound_tc})' if bound_tc else ''} to "
           f"{args.link}: TCs signed with key {signer.key_id} for spacecraft "
           f"{signer.spacecraft}, source id {args.source_id}")
    sys.stdout.flush()
    end = time.monotonic() + args.seconds if args.seconds else None
    try:
        while not stopped and (end is None or time.monotonic() < end):
            try:
                if not gateway.step():
                    time.sleep(0.01)
            except ConnectionError as e:  # out of reach: the tools stay, it is tried again
                if not gateway.counters["link_down"]:
                    print(f"skyrack ground gateway: {e}; retrying", file=sys.stderr)
                gateway.counters["link_down"] += 1
                time.sleep(0.5)
    finally:
        link.close()
        listener.close()
        if tc_only is not None:
            tc_only.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
    counts = dict(gateway.counters)
    output(args, {"ok": True, "counters": counts},
           "gateway stopped: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _read_script(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from None


def _run_script(args: argparse.Namespace, console: Any) -> int:
    """`script FILE` on a console (over a link, or through a server): every line
    checked first, then each step, each reported as it passes."""
    from ground.console import ConsoleError

    text = _read_script(args.file)

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


def cmd_ground_script_remote(args: argparse.Namespace) -> int:
    """`script` through a running ground server, in the name of --sender."""
    from ground.console import Console
    from ground.remote import RemoteGround, ServerClient, ServerError

    try:
        client = RemoteGround(ServerClient(args.server, satellite=args.satellite),
                              _sender(args))
        return _run_script(args, Console(client))  # type: ignore[arg-type]
    except ServerError as e:
        raise CliError(str(e)) from None


def cmd_ground_script_check(args: argparse.Namespace, dictionary: Dictionary) -> int:
    from ground.client import GroundClient
    from ground.console import Console, ConsoleError

    text = _read_script(args.file)
    console = Console(GroundClient(InProcessLink(), dictionary, None))
    try:
        steps = console.check_script(text)
    except ConsoleError as e:
        raise CliError(f"{args.file}: {e}") from None
    output(args, {"ok": True, "file": args.file, "steps": steps},
           f"{args.file}: {steps} steps, every one checks")
    return 0


def _watcher(args: argparse.Namespace, dictionary: Dictionary) -> Any:
    from skyrack.cli.watching import Watcher

    try:
        return Watcher(dictionary, points=args.point, components=args.component,
                       severity=args.severity, as_json=args.json)
    except ValueError as e:
        raise CliError(str(e)) from None


def cmd_ground_watch_remote(args: argparse.Namespace, dictionary: Dictionary) -> int:
    """`watch` on a running ground server's stream (WebSocket)."""
    from ground.remote import ServerClient

    try:
        import aiohttp
    except ImportError:
        raise CliError("watch --server needs the 'web' extra: pip install 'skyrack[web]'") \
            from None
    watcher = _watcher(args, dictionary)
    url = ServerClient(args.server, satellite=args.satellite).stream_url(_sender(args))

    async def main() -> None:
        end = time.monotonic() + args.seconds if args.seconds else math.inf
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            while time.monotonic() < end:
                try:
                    message = await ws.receive(timeout=min(0.5, max(end - time.monotonic(),
                                                                    0.01)))
                except TimeoutError:
                    watcher.draw()
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise CliError(f"the ground server at {args.server} closed the stream")
                for m in json.loads(message.data):  # a frame: what waited, oldest first
                    if m["type"] == "hk":
                        watcher.housekeeping(m["t_s"], m["values"], m["limits"])
                    elif m["type"] == "event":
                        watcher.event(m["t_s"], m["name"], m["severity"], m["args"])

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except (aiohttp.ClientError, OSError) as e:
        raise CliError(f"cannot watch the ground server at {args.server}: {e}") from None
    return 0


def _job(answers: list[dict[str, Any]]) -> int | None:
    """The id of the job a compute.submit queued, from its answer (None: no job)."""
    submitted = [a for a in answers if a["name"] == "compute.job_submitted"]
    return submitted[-1]["args"]["job"] if submitted else None


def _sent_text(name: str, stages: list[str], answers: list[dict[str, Any]]) -> str:
    lines = [f"{name}: {' -> '.join(stages) or 'no reports'}"]
    lines += [f"  {a['name']} " + " ".join(f"{k}={short(v)}" for k, v in a["args"].items())
              for a in answers]
    return "\n".join(lines)


def _sender(args: argparse.Namespace) -> str:
    return args.sender or f"{getpass.getuser()}@{socket.gethostname()}"


def cmd_ground_send_remote(args: argparse.Namespace, dictionary: Dictionary) -> int:
    """`send` through a running ground server: it signs, sends and follows the reports."""
    from ground.console import parse_args
    from ground.remote import ServerClient, ServerError

    spec = dictionary.command(args.name)
    values = parse_args(spec, args.args)
    if spec.hazardous and not args.yes:
        raise CliError(f"{args.name} is hazardous: pass --yes to send it")
    server = ServerClient(args.server, satellite=args.satellite)
    try:
        sent = server.send(_sender(args), args.name, values)
        command = server.wait(sent["id"], args.timeout)
    except ServerError as e:
        raise CliError(str(e)) from None
    error = None
    if not command["ok"]:
        error = (f"{args.name}: {command['failure']}" if command["failure"] else
                 f"{args.name}: no completion within {args.timeout:g} s")
    answers = command.get("answers", [])
    out = {"ok": error is None, "command": args.name, "args": values, "id": command["id"],
           "stages": command["stages"], "answers": answers, "job": _job(answers),
           "error": error}
    output(args, out, _sent_text(args.name, command["stages"], answers))
    if error:
        print(f"skyrack ground: error: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_ground_serve(args: argparse.Namespace, dictionary: Dictionary) -> int:
    try:
        from aiohttp import web

        from ground.web import make_app
    except ImportError:
        raise CliError("ground serve needs the 'web' extra: pip install 'skyrack[web]'") \
            from None
    from ground import mission as missions

    if args.mission is not None:
        given = [f for f in ("link", "keys", "archive", "dictionary") if getattr(args, f)]
        if given:
            raise CliError(f"--mission names each satellite's link, keys and dictionary, and "
                           f"the archive: --{given[0]} is not for it")
        try:
            mission = missions.load(args.mission)
        except InputError as e:
            raise CliError(str(e)) from None
    else:
        if args.link is None:
            raise CliError("ground serve needs --link URL (one satellite) or --mission FILE")
        spacecraft = KeyFile.load(args.keys).spacecraft if args.keys else DEFAULT_SPACECRAFT
        mission = missions.Mission("", _archive_path(args), (missions.Satellite(
            f"sc{spacecraft}", args.link, spacecraft, args.keys, args.key_id),),
            source_id=args.source_id)
    listen = args.listen or mission.listen or "http://127.0.0.1:8600"
    scheme, sep, rest = listen.partition("://")
    host, colon, port_text = rest.rpartition(":")
    if scheme != "http" or not sep or not colon or not port_text.isdigit():
        raise CliError(f"--listen {listen!r}: expected http://HOST:PORT")
    servers = _mission_servers(mission, dictionary)

    async def main() -> None:
        runner = web.AppRunner(make_app(servers), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host.strip("[]"), int(port_text))
        await site.start()
        bound = runner.addresses[0]
        url = f"http://{bound[0]}:{bound[1]}"
        links = {name: sat.link for name, sat in zip(servers, mission.satellites, strict=True)}
        output(args, {"ok": True, "listen": url, "mission": mission.name,
                      "satellites": links, "link": mission.satellites[0].link,
                      "archive": mission.archive},
               f"ground server on {url} for " + ", ".join(
                   f"{n} ({link})" for n, link in links.items()) + f"; archive {mission.archive}")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()  # the servers' loops stop, and the archive is closed

    asyncio.run(main())
    tm = sum(s.counts.tm for s in servers.values())
    commands = sum(s.counts.commands for s in servers.values())
    output(args, {"ok": True, "tm": tm, "commands": commands},
           f"ground server stopped: {tm} packets, {commands} commands, all archived")
    return 0


def _mission_servers(mission: Any, dictionary: Dictionary) -> dict[str, Any]:
    """A GroundServer for each satellite of the mission, by name, sharing command ids
    and the archive; a satellite with a dictionary of its own speaks that one."""
    import itertools

    from ground.server import GroundServer

    ids = itertools.count(1)
    servers: dict[str, Any] = {}
    try:
        for sat in mission.satellites:
            signer = signer_from_file(sat.keys, sat.key_id) if sat.keys else None
            spoken = load_dictionary(sat.dictionary) if sat.dictionary else dictionary
            try:
                link = open_link(sat.link, listen=False)
            except OSError as e:
                raise CliError(f"{sat.name}: cannot open {sat.link}: {e.strerror or e}") \
                    from None
            servers[sat.name] = GroundServer(
                link, spoken, signer, mission.archive, source_id=mission.source_id,
                sequence=sequence_for(sat.keys, mission.source_id), name=sat.name,
                spacecraft=sat.spacecraft, ids=ids)
    except BaseException:
        for server in servers.values():
            server.close()
        raise
    return servers


def _bound(link: Any, url: str) -> str:
    """The URL a listener is bound to (its port, when 0 was asked for)."""
    address = getattr(link, "address", None)
    return f"tcp://{address[0]}:{address[1]}" if address else url


class _Interrupted(Exception):
    """SIGINT or SIGTERM during a ground command; the message names the signal."""


def cmd_keys_new(args: argparse.Namespace) -> int:
    keys = KeyFile.generate(args.count, args.spacecraft_id)
    try:
        keys.save_new(args.file)
    except FileExistsError:
        raise CliError(f"{args.file} exists; a key file is never overwritten (the "
                       "satellite and the ground's counters depend on it)") from None
    output(args, {"ok": True, "file": args.file, "spacecraft_id": keys.spacecraft,
                  "keys": sorted(keys.keys), "active": keys.active},
           f"{args.file}: {len(keys.keys)} keys for spacecraft {keys.spacecraft}, key "
           f"{keys.active} active, mode 0600")
    return 0
