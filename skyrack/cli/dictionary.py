"""`skyrack dictionary`: the command and telemetry dictionary, and the topology."""

from __future__ import annotations

import argparse
import json
from typing import Any

from boards import definition as boarddef
from flight.software import FlightSoftware
from hal.packetlink import InProcessLink
from hal.spacepacket import TIME_CODE
from skyrack.assembly import assemble
from skyrack.cli.options import CliError
from skyrack.report import arg_text


def add_parsers(sub: Any) -> None:
    dictionary = sub.add_parser("dictionary",
                                help="print the command and telemetry dictionary")
    form = dictionary.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print it as JSON")
    form.add_argument("--xtce", action="store_true",
                      help="print it as XTCE 1.2 (packets, parameters, commands), for a "
                           "standard ground system")
    form.add_argument("--yamcs-events", action="store_true",
                      help="print the message template of every event, as YAMCS's PUS "
                           "event decoder reads them (JSON)")
    dictionary.add_argument("--topology", action="store_true",
                            help="print the component instances instead: what each is "
                                 "connected to and what it reads from the bus (with --json: "
                                 "as JSON)")
    dictionary.set_defaults(run=cmd_dictionary)


def cmd_dictionary(args: argparse.Namespace) -> int:
    if args.topology:
        return _print_topology(args)
    dictionary = FlightSoftware.dictionary()
    if args.json:  # with how on-board time is coded in every TM
        print(json.dumps({**dictionary.to_json(), "time": TIME_CODE}, indent=2))
        return 0
    if args.xtce:
        from hal.xtce import to_xtce

        print(to_xtce(dictionary))
        return 0
    if args.yamcs_events:
        from hal.xtce import event_templates

        print(json.dumps(event_templates(dictionary), indent=2))
        return 0
    lines = ["Commands"]
    for c in dictionary.commands:
        usage = " ".join(arg_text(a) for a in c.args)
        lines.append(f"  {c.name} {usage}".rstrip())
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
        raise CliError("--topology is JSON or text, not XTCE")
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
