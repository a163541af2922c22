"""`skyrack image`, `board serve` and `flash`: the bench of dev boards."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from boards import definition as boarddef
from drivers import flash as flashing
from drivers.link import BoardLink
from hal import image
from hal.durable import replace_file
from hal.transport import SerialTransport
from skyrack.cli.options import (
    JSON_SCHEMA,
    CliError,
    Parser,
    SignalStop,
    bench_definition,
    bounded,
    name_urls,
    output,
    progress_bar,
    seconds,
    shared,
    speed,
)

probability = bounded(float, lambda v: 0.0 <= v <= 1.0, "0..1")
frame_count = bounded(int, lambda v: 1 <= v <= 65536, "1..65536")
bit_count = bounded(int, lambda v: 1 <= v <= 64, "1..64")


def add_parsers(sub: Any) -> None:
    img = sub.add_parser("image", help="board firmware images")
    img_sub = img.add_subparsers(dest="image_command", required=True, parser_class=Parser)
    build = img_sub.add_parser("build", help="wrap a payload in an image header for one "
                               "board kind", parents=[shared("json")])
    build.add_argument("payload", help="the firmware payload (a file)")
    build.add_argument("--kind", required=True, help="board kind it is for: power, "
                       "thermal, accelerator ...")
    build.add_argument("--version", dest="image_version", required=True,
                       metavar="MAJOR.MINOR.PATCH", help="the image's version")
    build.add_argument("-o", "--output", required=True, help="image file to write")
    build.set_defaults(run=cmd_image_build)

    board = sub.add_parser("board", help="the boards of a bench: who they are, and "
                           "emulated ones to serve")
    board_sub = board.add_subparsers(dest="board_command", required=True, parser_class=Parser)
    serve = board_sub.add_parser("serve", help="serve emulated boards on serial lines, "
                                 "their world in real time, until interrupted",
                                 parents=[shared("seed", "json")])
    serve.add_argument("--board", required=True, metavar="TOML[:NAME]",
                       help="sim definition, and the board to serve (default: all)")
    serve.add_argument("--on", action="append", default=[], metavar="NAME=URL",
                       help="serve board NAME on this serial port rather than a new "
                            "pseudo-terminal (repeatable)")
    serve.add_argument("--seconds", type=seconds, default=None,
                       help="stop after this many seconds (default: run until interrupted)")
    serve.add_argument("--speed", type=speed, default=1.0,
                       help="simulated seconds per wall second (default 1)")
    serve.add_argument("--nvm", metavar="DIR", default=None,
                       help="keep each board's non-volatile memory (image slots, boot "
                            "record, boot count) in DIR across runs, as a real board's flash "
                            "(default: in memory, a factory-fresh board every run)")
    serve.set_defaults(run=cmd_board_serve)
    info = board_sub.add_parser("info", help="ask each board of a definition who it is: "
                                "kind, firmware version, serial number",
                                parents=[shared("json")])
    info.add_argument("--board", required=True, metavar="TOML",
                      help="definition whose boards are on ports")
    info.add_argument("--port", action="append", default=[], metavar="NAME=URL",
                      help="put board NAME on this port instead (repeatable)")
    info.set_defaults(run=cmd_board_info)
    proxy = board_sub.add_parser("proxy", help="sit between the flight computer and a "
                                 "board's port and drop, delay, duplicate, corrupt or "
                                 "silence its frames on command", parents=[shared("seed", "json")])
    proxy.add_argument("--board", required=True, metavar="TOML:NAME",
                       help="the definition, and the board whose line it sits on")
    proxy.add_argument("--port", default=None, metavar="URL",
                       help="the board's serial port (default: its `port` in the definition)")
    proxy.add_argument("--listen", default="pty", metavar="URL",
                       help="where the flight computer connects: 'pty' (default: a new "
                            "pseudo-terminal, its path printed) or a serial port URL")
    proxy.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT",
                       help="the control socket for `skyrack board fault` (default "
                            "127.0.0.1 on any free port, printed)")
    proxy.add_argument("--seconds", type=seconds, default=None,
                       help="stop after this many seconds (default: run until interrupted)")
    for kind in ("drop", "duplicate", "corrupt"):
        proxy.add_argument(f"--{kind}-rate", type=probability, default=0.0, metavar="P",
                           help=f"{kind} each frame, either way, with probability P "
                                "(default 0)")
    proxy.set_defaults(run=cmd_board_proxy)
    fault = board_sub.add_parser("fault", help="tell a running `board proxy` to do a "
                                 "fault, or ask it what it has done", parents=[shared("json")])
    fault.add_argument("kind", choices=("drop", "delay", "duplicate", "corrupt", "garbage",
                                        "silence", "speak", "clear", "counters"),
                       help="the fault (counters: only report)")
    fault.add_argument("--control", required=True, metavar="HOST:PORT",
                       help="the proxy's control socket, as `board proxy` printed it")
    fault.add_argument("--direction", choices=("to_board", "to_host"), default="to_host",
                       help="frames to the board or from it (default to_host: its replies)")
    fault.add_argument("--frames", type=frame_count, default=1,
                       help="how many frames it applies to (default 1)")
    fault.add_argument("--seconds", type=seconds, default=None,
                       help="delay: how long; silence: for how long (default: until speak)")
    fault.add_argument("--bits", type=bit_count, default=1,
                       help="corrupt: payload bits to flip (default 1)")
    fault.add_argument("--fix-crc", action="store_true",
                       help="corrupt: compute the frame's CRC afresh, so only what lies "
                            "above the CRC can see the change")
    fault.add_argument("--until-restart", action="store_true",
                       help="silence: until the board's replies show it restarted (a "
                            "latch-up, which a power cycle ends)")
    fault.add_argument("--nbytes", type=frame_count, default=16,
                       help="garbage: how many random bytes (default 16)")
    fault.set_defaults(run=cmd_board_fault)

    fl = sub.add_parser("flash", help="flash an image to a board over its serial port",
                        parents=[shared("json")])
    fl.add_argument("image", help="image file (from `skyrack image build`)")
    fl.add_argument("--board", required=True, metavar="TOML:NAME",
                    help="the definition, and the board to flash")
    fl.add_argument("--port", default=None, metavar="URL",
                    help="serial port (default: the board's `port` in the definition)")
    fl.add_argument("--timeout", type=seconds, default=30.0, metavar="S",
                    help="how long to wait for the board to confirm its new image "
                         "(default 30)")
    fl.set_defaults(run=cmd_flash)


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
    output(args, result,
           f"{args.output}: {header.kind} image {header.version_text}, "
           f"{header.length} payload bytes, crc32 {header.crc32:08x}")
    return 0


def cmd_board_info(args: argparse.Namespace) -> int:
    from skyrack.assembly import assemble, identify

    definition = bench_definition(args.board, args.port, "board info")
    satellite = assemble(dataclasses.replace(definition, plan=()))
    try:
        boards = identify(satellite)
    finally:
        satellite.close()
    output(args, {"boards": boards}, "\n".join(_board_line(name, b)
                                                for name, b in boards.items()))
    return 0


def _board_line(name: str, b: dict[str, Any]) -> str:
    if not b["powered"]:
        return f"{name}: {b['kind']} board on {b['port']}, unpowered (its channel is off)"
    return (f"{name}: {b['kind']} board, firmware {b['firmware_version']}, serial "
            f"{b['serial_number']} on {b['port']}")


def cmd_board_serve(args: argparse.Namespace) -> int:
    from skyrack.serve import BoardServer  # pseudo-terminals: only where they are used

    definition, name = _board_ref(args.board, need_name=False)
    ports = name_urls(args.on, "--on")
    server = BoardServer(definition, [name] if name else (), seed=args.seed, ports=ports,
                         speed=args.speed, nvm_dir=args.nvm)
    stop = SignalStop()
    try:
        if args.json:
            output(args, {"serving": server.paths}, "")
            sys.stdout.flush()
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
        output(args, {"served_s": round(served_s, 3), "boards": stats}, "")
    else:
        print(f"served {served_s:.1f} s: " + "; ".join(
            f"{n}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
            for n, c in stats.items()), file=sys.stderr)
    return 0


def cmd_board_proxy(args: argparse.Namespace) -> int:
    from skyrack.proxy import ControlServer, FaultProxy  # a pty: only where it is used

    definition, name = _board_ref(args.board, need_name=True)
    assert name is not None
    spec = definition.named(name)
    port = args.port or spec.port
    if port is None:
        raise CliError(f"board {name!r} is emulated in {definition.path}: serve it with "
                       "`skyrack board serve` and pass its path as --port")
    host, _, control_port = args.control.rpartition(":")
    if not host or not control_port.isdigit() or int(control_port) > 65535:
        raise CliError(f"--control {args.control!r}: expected HOST:PORT")
    proxy = FaultProxy(port, None if args.listen == "pty" else args.listen, seed=args.seed,
                       baudrate=spec.baudrate)
    try:
        for direction in ("to_board", "to_host"):
            proxy.rates(direction, drop=args.drop_rate, duplicate=args.duplicate_rate,
                        corrupt=args.corrupt_rate)
        try:
            control = ControlServer(proxy, host, int(control_port))
        except OSError as e:
            raise CliError(f"--control {args.control}: {e.strerror or e}") from None
        stop = SignalStop()
        listening = {"board": name, "port": port, "listen": proxy.path,
                     "control": control.address}
        if args.json:
            output(args, listening, "")
        else:
            print(f"{name} {proxy.path}", flush=True)
            print(f"proxying {port} for {name} on {proxy.path}; control on "
                  f"{control.address}; Ctrl-C stops", file=sys.stderr, flush=True)
        sys.stdout.flush()
        started = time.monotonic()
        stop.wait(args.seconds)
        control.close()
    finally:
        proxy.close()
    counters = proxy.counters()
    proxied_s = time.monotonic() - started
    output(args, {"board": name, "proxied_s": round(proxied_s, 3), "counters": counters},
           f"proxied {proxied_s:.1f} s: {_counters_line(counters)}")
    return 0


def _counters_line(counters: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{d}: " + (", ".join(f"{k} {v}" for k, v in c.items()) or "nothing")
                     for d, c in counters.items())


def cmd_board_fault(args: argparse.Namespace) -> int:
    from skyrack.proxy import ProxyControl

    if args.kind == "counters":
        request: dict[str, Any] = {"counters": True}
    elif args.kind == "clear":
        request = {"fault": "clear"}
    else:
        request = {"fault": args.kind, "direction": args.direction}
        if args.kind in ("drop", "duplicate", "corrupt", "delay"):
            request["frames"] = args.frames
        if args.kind == "corrupt":
            request.update(bits=args.bits, fix_crc=args.fix_crc)
        if args.kind == "garbage":
            request["nbytes"] = args.nbytes
        if args.kind == "delay":
            if args.seconds is None:
                raise CliError("delay: say how long with --seconds")
            request["seconds"] = args.seconds
        if args.kind == "silence":
            request["seconds"] = args.seconds
            if args.until_restart:
                request["until_restart"] = True
    control = ProxyControl(args.control)
    try:
        answer = control.send(**request)
    finally:
        control.close()
    output(args, {"request": request, "counters": answer["counters"]},
           _counters_line(answer["counters"]))
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
    bar = progress_bar if sys.stderr.isatty() and not args.json else None
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
            print(json.dumps({**out, "ok": False, "schema": JSON_SCHEMA}))
        print(f"skyrack flash: error: {why}", file=sys.stderr)
        return 1
    output(args, out,
           f"{name}: flashed {header.version_text} ({len(data)} bytes) into slot "
           f"{result.slot} in {wall_s:.1f} s; booted and confirmed")
    return 0
