"""How fast the simulated satellite flies: simulated seconds per wall second, with the
full flight software in the loop and boards in process, and how the cost grows with
the simulated duration.

    python bench/sim_speed.py [--repeats 3] [--json out.json]

Three missions: "bus", the default satellite without compute jobs (executive, bus
components, modes, FDIR, board protocol round trips, physics); "default", the default
plan as `skyrack sim` flies it, with two protected jobs under accelerated radiation;
and "bus_serial", the bus mission with every board on a pseudo-terminal
(`skyrack sim --serial`), over the shorter lengths only. Medians over repeats. Targets:
>= 5000x real time for the bus mission and >= 2000x for the default one, boards in
process.

    python bench/sim_speed.py --against ../old [--missions bus] [--orbits 1] [--repeats 5]

compares with another checkout of skyrack (a `git worktree` of an earlier commit, its
shield kernel built): each measurement runs twice at once, in a process importing this
checkout and in one importing the other, so both meet the same load on a shared
machine; the table gives the median of the paired speed ratios (this ÷ that).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from table import report

from boards.definition import default_path, load
from skyrack import mission
from skyrack.assembly import assemble

ORBITS = (0.5, 1.0, 2.0, 4.0)


def fly_s(orbits: float, with_jobs: bool, serial: bool = False) -> tuple[float, float]:
    definition = load(default_path())
    if not with_jobs:
        definition = dataclasses.replace(definition, plan=tuple(
            s for s in definition.plan if not s.command.startswith("compute.")))
    satellite = assemble(definition, seed=1, serial=serial)
    duration_s = orbits * satellite.world.orbit.period_s
    started = time.perf_counter()
    try:
        mission.fly(satellite, duration_s)
    finally:
        satellite.close()
    return duration_s, time.perf_counter() - started


MISSIONS = {"bus": (False, False, ORBITS), "default": (True, False, ORBITS),
            "bus_serial": (False, True, ORBITS[:2])}


def speedup_in(checkout: Path, mission: str, orbits: float) -> subprocess.Popen[str]:
    """One flight in a process importing `checkout`; it prints its speedup. One BLAS
    thread each: two processes whose BLAS wanted both cores would spin on each other."""
    env = {**os.environ, "PYTHONPATH": str(checkout),
           **{name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS")}}
    return subprocess.Popen([sys.executable, __file__, "--one", f"{mission}:{orbits:g}"],
                            env=env, stdout=subprocess.PIPE, text=True)


def paired(against: Path, missions: list[str], lengths: list[float], repeats: int,
           json_path: str | None) -> None:
    here = Path(__file__).resolve().parents[1]
    results: dict[str, float] = {}
    for name in missions:
        for orbits in lengths:
            ratios, ours, theirs = [], [], []
            for _ in range(repeats):
                a, b = speedup_in(here, name, orbits), speedup_in(against, name, orbits)
                mine, other = (float(p.communicate()[0]) for p in (a, b))
                ratios.append(mine / other)
                ours.append(mine)
                theirs.append(other)
            key = f"{name}_{orbits:g}_orbits"
            results[f"{key}_speedup"] = statistics.median(ours)
            results[f"{key}_speedup_baseline"] = statistics.median(theirs)
            results[f"{key}_over_baseline"] = statistics.median(ratios)
    report(results, None, json_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--missions", default=",".join(MISSIONS),
                        help=f"comma-separated, of {', '.join(MISSIONS)}")
    parser.add_argument("--orbits", help="comma-separated lengths (default: each mission's)")
    parser.add_argument("--against", metavar="CHECKOUT", type=Path,
                        help="another checkout, flown at the same time as this one")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # MISSION:ORBITS, for --against
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    if args.one:
        name, orbits = args.one.split(":")
        with_jobs, serial, _ = MISSIONS[name]
        sim_s, wall_s = fly_s(float(orbits), with_jobs, serial)
        print(json.dumps(sim_s / wall_s))
        return
    missions = args.missions.split(",")
    unknown = sorted(set(missions) - set(MISSIONS))
    if unknown:
        parser.error(f"unknown mission {unknown[0]!r} (known: {', '.join(MISSIONS)})")
    chosen = [float(x) for x in args.orbits.split(",")] if args.orbits else None
    if args.against is not None:
        paired(args.against.resolve(), missions, chosen or [1.0], args.repeats, args.json)
        return

    results: dict[str, float] = {}
    for name in missions:
        with_jobs, serial, lengths = MISSIONS[name]
        lengths = tuple(chosen) if chosen else lengths
        per_sim_s = []
        for orbits in lengths:
            runs = [fly_s(orbits, with_jobs, serial) for _ in range(args.repeats)]
            sim_s = runs[0][0]
            wall_s = statistics.median(w for _, w in runs)
            results[f"{name}_{orbits:g}_orbits_speedup"] = sim_s / wall_s
            per_sim_s.append(wall_s / sim_s)
        if len(lengths) > 1:
            # Wall time per simulated second at the longest run over the shortest: 1.0 is
            # linear growth, above it the cost per simulated second is rising.
            results[f"{name}_cost_growth_{lengths[-1]:g}_over_{lengths[0]:g}_orbits"] = (
                per_sim_s[-1] / per_sim_s[0])
    if "bus_1_orbits_speedup" in results and "bus_serial_1_orbits_speedup" in results:
        results["bus_serial_over_bus_wall_1_orbit"] = (results["bus_1_orbits_speedup"]
                                                       / results["bus_serial_1_orbits_speedup"])
    report(results, {k: (">=", 5000.0 if k.startswith("bus_") else 2000.0) for k in results
                     if k.endswith("speedup") and "serial" not in k}, args.json)


if __name__ == "__main__":
    main()
