"""Ground server ingest: housekeeping packets per second into the archive with
clients attached, and memory over a long run.

    python bench/ground.py [--packets 400000] [--clients 2] [--repeats 3] [--json out.json]

Packets are the flight software's own: every housekeeping structure of its dictionary
with values in range, and an event every 20 packets, on-board time advancing; they are
encoded beforehand. They reach a GroundServer through its link in reads of 2 000, as
a busy downlink delivers them, and each is checked whole (header, CRC, structure and
size), archived (a row a packet, WAL SQLite in a temporary directory), its events
decoded and stored, and streamed to `--clients` clients. Each client takes its stream
every 50 ms as one frame of JSON, as the web API's WebSocket does, in the server's
thread: what the clients cost, the server pays. Baseline, same run: the same
raw packets inserted as rows of the same columns into a table without an index,
nothing checked or decoded. Memory: peak RSS after a quarter of the run and at its
end; a bounded server does not grow.
Target (issue): >= 100 000 packets/s with clients attached.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from ground.server import GroundServer  # noqa: E402
from hal import layout  # noqa: E402
from hal.dictionary import Dictionary  # noqa: E402
from hal.layout import Layouts, name_id  # noqa: E402
from hal.packetlink import InProcessLink  # noqa: E402
from hal.pus import N  # noqa: E402
from hal.spacepacket import Telemetry, encode_tm  # noqa: E402

READ = 2000  # packets one read of the link brings
TAKE_S = 0.05  # how often a client takes its stream (ground.web.STREAM_S)


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


def run_server(raws: list[bytes], dictionary: Dictionary, clients: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        _, ground_end = InProcessLink.pair()
        server = GroundServer(ground_end, dictionary, None, str(Path(tmp) / "a.sqlite"))
        streams = [server.attach(f"client-{n}") for n in range(clients)]
        messages = octets = 0
        rss_quarter = 0.0
        started = taken_at = time.perf_counter()
        for i in range(0, len(raws), READ):
            ground_end.inbox.extend(raws[i:i + READ])  # what one read of the link brings
            server.step()
            if time.perf_counter() - taken_at >= TAKE_S:
                for stream in streams:  # as ground.web's pump: one frame of what waited
                    texts = stream.take_json()
                    octets += len("[" + ",".join(texts) + "]")
                    messages += len(texts)
                taken_at = time.perf_counter()
            if rss_quarter == 0.0 and i >= len(raws) // 4:
                rss_quarter = maxrss_mib()
        server.close()  # everything written
        wall_s = time.perf_counter() - started
        assert server.archive.ingested == len(raws) and server.client.rejected.total() == 0
        return {"rate": len(raws) / wall_s, "rss_quarter": rss_quarter, "rss_end": maxrss_mib(),
                "messages_per_client": messages / max(clients, 1),
                "coalesced_per_client": sum(s.coalesced for s in streams) / max(clients, 1)}


def run_raw(rows: list[tuple]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.sqlite")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE packets (t_s REAL, apid INTEGER, service INTEGER, "
                   "subtype INTEGER, seq INTEGER, raw BLOB, spacecraft INTEGER, "
                   "session INTEGER, rx_utc REAL, key INTEGER)")
        started = time.perf_counter()
        for i in range(0, len(rows), READ):
            with db:
                db.executemany("INSERT INTO packets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               rows[i:i + READ])
        wall_s = time.perf_counter() - started
        db.close()
        return len(rows) / wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=400_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    dictionary = FlightSoftware.dictionary()
    made = list(packets(args.packets, Layouts(dictionary)))
    raws = [raw for _, raw in made]
    rows = [(tm.time_s, tm.apid, tm.service, tm.subtype, tm.seq_count, raw, 1, 1,
             1.8e9 + i * 1e-5, int.from_bytes(tm.data[:2])) for i, (tm, raw) in enumerate(made)]
    del made
    served, raw = [], []
    last: dict[str, float] = {}
    for _ in range(args.repeats):
        last = run_server(raws, dictionary, args.clients)
        served.append(last["rate"])
        raw.append(run_raw(rows))
    results = {
        "server_ingest_packets_per_s": statistics.median(served),
        "clients_attached": args.clients,
        "raw_insert_packets_per_s": statistics.median(raw),
        "server_over_raw_insert": statistics.median(served) / statistics.median(raw),
        "messages_per_client": last["messages_per_client"],
        "hk_coalesced_per_client": last["coalesced_per_client"],
        "maxrss_mib_after_quarter": last["rss_quarter"],
        "maxrss_mib_at_end": last["rss_end"],
        "maxrss_growth_last_three_quarters_mib": last["rss_end"] - last["rss_quarter"],
    }
    report(results, {"server_ingest_packets_per_s": (">=", 100_000.0),
                     "maxrss_growth_last_three_quarters_mib": ("<=", 16.0)}, args.json)


if __name__ == "__main__":
    main()
