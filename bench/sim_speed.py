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
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    results: dict[str, float] = {}
    missions = (("bus", False, False, ORBITS), ("default", True, False, ORBITS),
                ("bus_serial", False, True, ORBITS[:2]))
    for name, with_jobs, serial, lengths in missions:
        per_sim_s = []
        for orbits in lengths:
            runs = [fly_s(orbits, with_jobs, serial) for _ in range(args.repeats)]
            sim_s = runs[0][0]
            wall_s = statistics.median(w for _, w in runs)
            results[f"{name}_{orbits:g}_orbits_speedup"] = sim_s / wall_s
            per_sim_s.append(wall_s / sim_s)
        # Wall time per simulated second at the longest run over the shortest: 1.0 is
        # linear growth, above it the cost per simulated second is rising.
        results[f"{name}_cost_growth_{lengths[-1]:g}_over_0.5_orbits"] = (
            per_sim_s[-1] / per_sim_s[0])
    results["bus_serial_over_bus_wall_1_orbit"] = (results["bus_1_orbits_speedup"]
                                                   / results["bus_serial_1_orbits_speedup"])
    report(results, {k: (">=", 5000.0 if k.startswith("bus_") else 2000.0) for k in results
                     if k.endswith("speedup") and "serial" not in k}, args.json)


if __name__ == "__main__":
    main()
