"""Telemetry archive ingest: packets per second into SQLite, and memory over a long run.

    python bench/ground.py [--packets 200000] [--repeats 3] [--json out.json]

Packets are the flight software's own: every housekeeping structure of its dictionary
with values in range, and an event every 20 packets, on-board time advancing. Each is
decoded (housekeeping into one sample row per point), and stored raw, in batched
transactions on a WAL database in a temporary directory. The baseline, in the same
run: inserting the same raw packets alone, without decoding or samples. Memory: peak
RSS after a quarter of the run and after all of it; a bounded ingest does not grow.
Target (issue): >= 10 000 packets/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# This file has the name of the package it measures: take its folder off the path so
# that `ground` is the package, and load the shared table module by its file.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
_spec = importlib.util.spec_from_file_location("table", HERE / "table.py")
assert _spec is not None and _spec.loader is not None
_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_table)
report = _table.report

from flight.software import FlightSoftware  # noqa: E402
from ground.archive import Archive  # noqa: E402
from ground.client import GroundClient  # noqa: E402
from hal import layout  # noqa: E402
from hal.layout import Layouts, name_id  # noqa: E402
from hal.packetlink import InProcessLink  # noqa: E402
from hal.pus import N  # noqa: E402
from hal.spacepacket import Telemetry, encode_tm  # noqa: E402


def sample_value(spec, i: int):
    if spec.name == "fsw.boot_count":
        return 1  # one boot: one session (a new count starts a new one)
    if spec.type == "float":
        return 20.0 + (i % 97) * 0.25
    if spec.type == "int":
        return i % 1000
    if spec.type == "bool":
        return i % 2 == 0
    if spec.type == "enum":
        return spec.values[i % len(spec.values)]
    return ("nominal", "safe", "compute")[i % 3]


def packets(count: int, layouts: Layouts) -> Iterator[tuple[Telemetry, bytes]]:
    structures = list(layouts.structures.values())
    events = list(layouts.events.values())
    for i in range(count):
        t_s = i * 0.1
        if i % 20 == 19:
            event = events[i % len(events)]
            data = N.pack(name_id(event.name)) + layout.pack(
                event.args, [sample_value(a, i) for a in event.args])
            tm = Telemetry(0x10, 5, 2, data, t_s, i % 16384)
        else:
            s = structures[i % len(structures)]
            data = N.pack(s.sid) + layout.pack(s.points, [sample_value(p, i) for p in s.points])
            tm = Telemetry(0x10, 3, 25, data, t_s, i % 16384)
        yield tm, encode_tm(tm)


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_archive(count: int, layouts: Layouts, client: GroundClient) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive(Path(tmp) / "a.sqlite", client)
        quarter = count // 4
        started = time.perf_counter()
        rss_quarter = 0.0
        for i, (tm, raw) in enumerate(packets(count, layouts)):
            archive.ingest(tm, raw)
            if i == quarter:
                rss_quarter = maxrss_mib()
        archive.flush()
        wall_s = time.perf_counter() - started
        archive.close()
        return count / wall_s, rss_quarter, maxrss_mib()


def run_raw(count: int, layouts: Layouts) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.sqlite")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE packets (t_s REAL, apid INTEGER, service INTEGER, "
                   "subtype INTEGER, seq INTEGER, raw BLOB)")
        stream = packets(count, layouts)
        started = time.perf_counter()
        while True:
            batch = [(tm.time_s, tm.apid, tm.service, tm.subtype, tm.seq_count, raw)
                     for tm, raw in itertools.islice(stream, 2000)]
            if not batch:
                break
            with db:
                db.executemany("INSERT INTO packets VALUES (?, ?, ?, ?, ?, ?)", batch)
        wall_s = time.perf_counter() - started
        db.close()
        return count / wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    dictionary = FlightSoftware.dictionary()
    layouts = Layouts(dictionary)
    client = GroundClient(InProcessLink(), dictionary, None)
    archived, raw = [], []
    rss = (0.0, 0.0)
    for _ in range(args.repeats):
        rate, rss_quarter, rss_end = run_archive(args.packets, layouts, client)
        archived.append(rate)
        rss = (rss_quarter, rss_end)
        raw.append(run_raw(args.packets, layouts))
    results = {
        "ingest_packets_per_s": statistics.median(archived),
        "raw_insert_packets_per_s": statistics.median(raw),
        "ingest_over_raw_insert": statistics.median(archived) / statistics.median(raw),
        "hk_points_per_packet": statistics.mean(len(s.points)
                                                for s in layouts.structures.values()),
        "maxrss_mib_after_quarter": rss[0],
        "maxrss_mib_at_end": rss[1],
        "maxrss_growth_last_three_quarters_mib": rss[1] - rss[0],
    }
    report(results, {"ingest_packets_per_s": (">=", 10_000.0),
                     "maxrss_growth_last_three_quarters_mib": ("<=", 16.0)}, args.json)


if __name__ == "__main__":
    main()
