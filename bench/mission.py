"""How fast the sim flies, and what the board protocol costs per request.

    python bench/mission.py [--orbits 2] [--repeats 5] [--json out.json]

Reports medians over repeats, each measured in this run against its baseline:
- mission: simulated seconds per wall second for `skyrack sim` (baseline: real time).
- board round trip: one `tlm` request through driver, framing, COBS, CRC, msgpack and
  the board's protocol server, in process, against calling the firmware's handler
  directly (baseline); the ratio is the wire path's overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time

from table import report

from boards.definition import default_path, load
from skyrack import mission
from skyrack.assembly import assemble


def fly_once(orbits: float) -> tuple[float, float]:
    satellite = assemble(load(default_path()), seed=1)
    duration_s = orbits * satellite.world.orbit.period_s
    started = time.perf_counter()
    mission.fly(satellite, duration_s)
    return duration_s, time.perf_counter() - started


def round_trip_us(n: int) -> tuple[float, float]:
    satellite = assemble(load(default_path()), seed=1)
    driver = satellite.drivers["power"]
    firmware = satellite.emulators["power"].server.firmware
    started = time.perf_counter()
    for _ in range(n):
        driver.housekeeping()
    wire_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for _ in range(n):
        firmware.tlm({})
    direct_us = (time.perf_counter() - started) / n * 1e6
    return wire_us, direct_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orbits", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()

    flights = [fly_once(args.orbits) for _ in range(args.repeats)]
    wall_s = statistics.median(w for _, w in flights)
    sim_s = flights[0][0]
    trips = [round_trip_us(args.requests) for _ in range(args.repeats)]
    wire_us = statistics.median(w for w, _ in trips)
    direct_us = statistics.median(d for _, d in trips)

    results = {
        "orbits": args.orbits,
        "repeats": args.repeats,
        "mission_sim_s": round(sim_s, 1),
        "mission_wall_s_median": round(wall_s, 3),
        "speedup_vs_real_time": round(sim_s / wall_s),
        "tlm_round_trip_us_median": round(wire_us, 2),
        "tlm_handler_direct_us_median": round(direct_us, 2),
        "wire_path_overhead_ratio": round(wire_us / direct_us, 2),
    }
    report(results, json_path=args.json)


if __name__ == "__main__":
    main()
