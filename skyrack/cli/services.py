"""`skyrack ground` verbs for the PUS services besides commanding (service 8):

    ping                                   TC[17,1] are-you-alive, answered by TM[17,2]
    hk enable|disable|once COMPONENT...    TC[3,5] / [3,6] / [3,27] housekeeping
    hk interval COMPONENT... --ms N        TC[3,31] collection interval
    param list | get NAME... | set NAME=VALUE...   service 20, answered by TM[20,2]
    schedule at T COMMAND [ARG=VALUE...]   TC[11,4] a command released at on-board T
    schedule list | delete APID:SEQ...     TC[11,17] (TM[11,13]) and TC[11,5]
    store summary | playback | clear | enable | disable
                                           TC[15,12] (TM[15,13]), [15,9], [15,11], [15,1], [15,2]

Each waits for the TC's completion report and prints what the satellite answered.
"""

from __future__ import annotations

import argparse
import struct
import time
from typing import Any

from ground.console import Console, ConsoleError, parse_args
from hal import layout
from hal.errors import InputError
from hal.layout import name_id
from hal.pus import N
from skyrack.cli.options import CliError, output, seconds, shared
from skyrack.report import short

VERBS = ("ping", "hk", "param", "schedule", "store")
STORE_SUBTYPES = {"summary": 12, "playback": 9, "clear": 11, "enable": 1, "disable": 2}
STORE_SUMMARY = struct.Struct(">IIIIIII")
STORE_FIELDS = ("packets", "octets", "capacity_octets", "stored", "overwritten", "refused",
                "played_back")
HK_SUBTYPES = {"enable": 5, "disable": 6, "once": 27}


def add_parsers(ground_sub: Any) -> None:
    timeout = argparse.ArgumentParser(add_help=False)
    timeout.add_argument("--timeout", type=seconds, default=10.0,
                         help="seconds to wait for completion (default 10)")
    parents = [shared("json"), timeout]
    ground_sub.add_parser("ping", help="are-you-alive (service 17): the round trip",
                          parents=parents)
    hk = ground_sub.add_parser("hk", help="housekeeping (service 3): enable, disable, "
                               "one-shot, interval", parents=parents)
    hk.add_argument("action", choices=[*HK_SUBTYPES, "interval"])
    hk.add_argument("components", nargs="+", metavar="COMPONENT",
                    help="housekeeping structures, by component: power thermal ...")
    hk.add_argument("--ms", type=int, default=None, help="interval (with interval), ms")
    param = ground_sub.add_parser("param", help="on-board parameters (service 20): list, "
                                  "get, set", parents=parents)
    param.add_argument("action", choices=["list", "get", "set"])
    param.add_argument("items", nargs="*", metavar="NAME[=VALUE]")
    schedule = ground_sub.add_parser("schedule", help="time-tagged commands (service 11): "
                                     "at, list, delete", parents=parents)
    schedule.add_argument("action", choices=["at", "list", "delete"])
    schedule.add_argument("items", nargs="*", metavar="T COMMAND ARG=VALUE | APID:SEQ")
    store = ground_sub.add_parser("store", help="the packet store (service 15): summary, "
                                  "playback, clear, enable, disable", parents=parents)
    store.add_argument("action", choices=list(STORE_SUBTYPES))


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        result, text = _VERB[args.ground_command](args, console)
    except (ConsoleError, InputError, ValueError) as e:
        raise CliError(str(e)) from None
    output(args, {"ok": True, **result}, text)
    return 0


def _ping(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], str]:
    started = time.monotonic()
    sent, _ = console.request(17, 1, name="ping", reply=(17, 2), timeout_s=args.timeout)
    round_trip = time.monotonic() - started
    return ({"stages": sent.stages, "round_trip_s": round(round_trip, 4)},
            f"alive: answered in {round_trip * 1000:.0f} ms")


def _hk(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], str]:
    structures = {s.name: s for s in console.client.layouts.structures.values()}
    unknown = [c for c in args.components if c not in structures]
    if unknown:
        raise InputError(f"no housekeeping structure {unknown[0]!r} (there are "
                         f"{', '.join(structures)})")
    sids = [structures[c].sid for c in args.components]
    if args.action == "interval":
        if args.ms is None or not 1 <= args.ms <= 0xFFFFFFFF:
            raise InputError("hk interval needs --ms N, 1..4294967295")
        data = N.pack(len(sids)) + b"".join(struct.pack(">HI", s, args.ms) for s in sids)
        subtype = 31
    else:
        data = N.pack(len(sids)) + b"".join(N.pack(s) for s in sids)
        subtype = HK_SUBTYPES[args.action]
    sent, _ = console.request(3, subtype, data, f"hk {args.action}", timeout_s=args.timeout)
    if args.action == "once":
        values = {p.name: console.client.values.get(p.name, (None, None))[1]
                  for c in args.components for p in structures[c].points}
        return ({"stages": sent.stages, "housekeeping": values},
                "  ".join(f"{k}={short(v)}" for k, v in values.items()))
    return ({"stages": sent.stages, "components": args.components},
            f"hk {args.action} {' '.join(args.components)}: {' -> '.join(sent.stages)}")


def _param(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], str]:
    specs = {p.name: p for p in console.client.dictionary.parameters}
    if args.action == "set":
        if not args.items:
            raise InputError("param set needs NAME=VALUE ...")
        values = []
        for item in args.items:
            name, eq, text = item.partition("=")
            if not eq or name not in specs:
                raise InputError(f"{item!r}: expected NAME=VALUE with NAME a parameter")
            spec = specs[name]
            values.append((spec, parse_args(_as_command(spec), [f"value={text}"])["value"]))
        data = N.pack(len(values)) + b"".join(N.pack(name_id(s.name)) + layout.pack([s], [v])
                                              for s, v in values)
        sent, _ = console.request(20, 3, data, "param set", timeout_s=args.timeout)
        changed = {s.name: v for s, v in values}
        return ({"stages": sent.stages, "set": changed},
                "  ".join(f"{k}={short(v)}" for k, v in changed.items()))
    names = list(specs) if args.action == "list" else args.items
    unknown = [n for n in names if n not in specs]
    if not names or unknown:
        raise InputError(f"param get needs parameter names; unknown: {', '.join(unknown)}"
                         if unknown else "param get needs parameter names")
    data = N.pack(len(names)) + b"".join(N.pack(name_id(n)) for n in names)
    sent, replies = console.request(20, 1, data, f"param {args.action}", reply=(20, 2),
                                    timeout_s=args.timeout)
    values = console.client.parameter_values(replies[-1])
    if args.action == "list":
        rows = {n: {"value": values[n], "default": specs[n].default, "unit": specs[n].unit,
                    "description": specs[n].description} for n in names}
        text = "\n".join(f"{n:36} {short(r['value']):>10} {r['unit'] or '':6} "
                         f"(default {short(r['default'])})  {r['description']}"
                         for n, r in rows.items())
        return {"parameters": rows}, text
    return ({"parameters": values},
            "  ".join(f"{k}={short(v)}" for k, v in values.items()))


def _as_command(spec: Any) -> Any:
    """A parameter as a one-argument command, so that its value is typed and checked
    as a command argument is."""
    from hal.dictionary import ArgSpec, CommandSpec

    return CommandSpec(spec.name, spec.description, (ArgSpec(
        "value", spec.type, spec.description, spec.unit, spec.min, spec.max, spec.values),))


def _schedule(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], str]:
    client = console.client
    if args.action == "at":
        if len(args.items) < 2:
            raise InputError("schedule at needs T COMMAND [ARG=VALUE ...]")
        release_s = float(args.items[0])
        spec = client.dictionary.command(args.items[1])
        values = parse_args(spec, args.items[2:])
        sent = client.time_tagged(release_s, spec.name, values)
        console.until(lambda: sent.done, args.timeout, f"schedule {spec.name}: no completion")
        if not sent.ok:
            failure = sent.failure
            raise ConsoleError(f"schedule {spec.name}: {sent.stages[-1]} "
                               f"({failure.failure}: {failure.reason})" if failure else "")
        return ({"stages": sent.stages, "release_s": release_s, "command": spec.name,
                 "args": values},
                f"{spec.name} scheduled for on-board t={release_s:g} s")
    if args.action == "list":
        sent, replies = console.request(11, 17, name="schedule list", reply=(11, 13),
                                        timeout_s=args.timeout)
        items = client.schedule_summary(replies[-1])
        text = "\n".join(f"t={i['release_s']:10.1f}  APID 0x{i['apid']:03x} seq "
                         f"{i['seq_count']:5}  {i['command'] or '(another service)'}"
                         for i in items) or "nothing scheduled"
        return {"scheduled": items}, text
    ids = []
    for item in args.items:
        apid, colon, seq = item.partition(":")
        try:
            ids.append((int(apid, 0), int(seq)))
        except ValueError:
            raise InputError(f"{item!r}: expected APID:SEQ (as schedule list shows)") \
                from None
    if not ids:
        raise InputError("schedule delete needs APID:SEQ ...")
    data = N.pack(len(ids)) + b"".join(struct.pack(">HH", a, s) for a, s in ids)
    sent, _ = console.request(11, 5, data, "schedule delete", timeout_s=args.timeout)
    return ({"stages": sent.stages, "deleted": [f"0x{a:03x}:{s}" for a, s in ids]},
            f"deleted {len(ids)}")


def _store(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], str]:
    subtype = STORE_SUBTYPES[args.action]
    if args.action == "summary":
        sent, replies = console.request(15, 12, name="store summary", reply=(15, 13),
                                        timeout_s=args.timeout)
        if len(replies[-1].data) != STORE_SUMMARY.size:
            raise ConsoleError(f"TM[15,13] of {len(replies[-1].data)} octets is not a "
                               f"summary ({STORE_SUMMARY.size})")
        summary = dict(zip(STORE_FIELDS, STORE_SUMMARY.unpack(replies[-1].data), strict=True))
        fill = 100.0 * summary["octets"] / summary["capacity_octets"]
        return ({"store": summary},
                f"{summary['packets']} packets waiting ({fill:.1f} % full); since boot "
                f"{summary['stored']} kept, {summary['played_back']} played back, "
                f"{summary['overwritten']} overwritten, {summary['refused']} refused")
    sent, _ = console.request(15, subtype, name=f"store {args.action}", timeout_s=args.timeout)
    return ({"stages": sent.stages}, f"store {args.action}: {' -> '.join(sent.stages)}")


_VERB = {"ping": _ping, "hk": _hk, "param": _param, "schedule": _schedule, "store": _store}
