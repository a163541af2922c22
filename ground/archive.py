"""The telemetry archive: every TM packet the ground receives, in SQLite.

    packets (t_s, apid, service, subtype, seq, raw)  every packet, bytes as received
    samples (point, t_s, value, text)                housekeeping values, one row each
    events  (t_s, name, severity, args)              events, arguments as JSON
    commands (t_sent, name, args, apid, seq, stages, failure)  the command history
    points  (id, name)                               telemetry point names

WAL mode, so an operator's query reads while a console writes. Rows are written in
batches, one transaction per `batch` packets or per `max_delay_s` of the oldest row
waiting (whichever comes first), or on `flush()`: batches make ingest fast, the delay
bounds what a crash of the ground can lose to about a second. Indexed by time, by APID
and time, and by point and time.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from ground.client import GroundClient, Sent
from hal.errors import PacketError, SkyrackError
from hal.spacepacket import Telemetry

SCHEMA = """
CREATE TABLE IF NOT EXISTS packets (t_s REAL, apid INTEGER, service INTEGER,
                                    subtype INTEGER, seq INTEGER, raw BLOB);
CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS samples (point INTEGER, t_s REAL, value, text TEXT);
CREATE TABLE IF NOT EXISTS events (t_s REAL, name TEXT, severity TEXT, args TEXT);
CREATE TABLE IF NOT EXISTS commands (t_sent REAL, name TEXT, args TEXT, apid INTEGER,
                                     seq INTEGER, stages TEXT, failure TEXT);
CREATE INDEX IF NOT EXISTS packets_t ON packets (t_s);
CREATE INDEX IF NOT EXISTS packets_apid_t ON packets (apid, t_s);
CREATE INDEX IF NOT EXISTS samples_point_t ON samples (point, t_s);
CREATE INDEX IF NOT EXISTS events_t ON events (t_s);
"""
BATCH = 2000
MAX_DELAY_S = 1.0
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's transaction


class ArchiveError(SkyrackError):
    """The archive cannot be opened or read; the message says why."""


class Archive:
    def __init__(self, path: str | Path, client: GroundClient | None = None,
                 batch: int = BATCH, max_delay_s: float = MAX_DELAY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`client` decodes housekeeping and events (it holds the dictionary); without
        one, only raw packets are stored."""
        self.path = str(path)
        self.db = self._open()
        self.client = client
        self.batch = batch
        self.max_delay_s = max_delay_s
        self.clock = clock
        self._oldest_s: float | None = None  # when the oldest unwritten row came
        self._points = dict(self.db.execute("SELECT name, id FROM points"))
        self._packets: list[tuple[Any, ...]] = []
        self._samples: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []
        self.ingested = 0
        self.undecoded = 0

    def _open(self) -> sqlite3.Connection:
        """Several ground processes may write one archive: each transaction is short
        (one batch, or one new point), and a writer waits its turn for up to
        BUSY_TIMEOUT_S rather than failing; in WAL mode readers never wait. Setting the
        journal mode can be refused while another process opens the file, without
        SQLite's own wait, so the opening itself is retried until then too."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            db = None
            try:
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
                db.executescript(SCHEMA)
                return db
            except sqlite3.OperationalError as e:
                if db is not None:
                    db.close()
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise ArchiveError(f"{self.path}: {e}") from None
                time.sleep(0.05)
            except sqlite3.Error as e:
                if db is not None:
                    db.close()
                raise ArchiveError(f"{self.path}: {e}") from None

    def _point(self, name: str) -> int:
        point = self._points.get(name)
        if point is None:
            with self.db:  # committed at once: no write transaction left open between batches
                self.db.execute("INSERT OR IGNORE INTO points (name) VALUES (?)", (name,))
                point = self.db.execute("SELECT id FROM points WHERE name = ?",
                                        (name,)).fetchone()[0]
            self._points[name] = point
        return point

    def ingest(self, tm: Telemetry, raw: bytes) -> None:
        """One TM (decoded, and as received). Written with the batch."""
        if self._oldest_s is None:
            self._oldest_s = self.clock()
        self._packets.append((tm.time_s, tm.apid, tm.service, tm.subtype, tm.seq_count, raw))
        if self.client is not None:
            try:
                if (tm.service, tm.subtype) == (3, 25):
                    for name, value in self.client.decode_hk(tm.data).items():
                        point = self._point(name)
                        if isinstance(value, str):
                            self._samples.append((point, tm.time_s, None, value))
                        elif value is not None:
                            self._samples.append((point, tm.time_s, value, None))
                elif tm.service == 5:
                    event = self.client.decode_event(tm)
                    self._events.append((event.t_s, event.name, event.severity,
                                         json.dumps(event.args, default=str)))
            except PacketError:
                self.undecoded += 1
        self.ingested += 1
        if len(self._packets) >= self.batch:
            self.flush()
        else:
            self.flush_due()

    def flush_due(self) -> None:
        """Write what waits if the oldest of it has waited `max_delay_s`: call it while
        idle too, so that rows never wait on the next packet."""
        if self._oldest_s is not None and self.clock() - self._oldest_s >= self.max_delay_s:
            self.flush()

    def flush(self) -> None:
        with self.db:
            self.db.executemany("INSERT INTO packets VALUES (?, ?, ?, ?, ?, ?)", self._packets)
            self.db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", self._samples)
            self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", self._events)
        self._packets.clear()
        self._samples.clear()
        self._events.clear()
        self._oldest_s = None

    @property
    def pending(self) -> int:
        """Packets received and not yet written."""
        return len(self._packets)

    def close(self) -> None:
        self.flush()
        self.db.close()

    def record_command(self, sent: Sent, wall_s: float) -> None:
        """A command sent, with the verification stages it reached (wall-clock time)."""
        failure = sent.failure
        with self.db:
            self.db.execute("INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?, ?)", (
                wall_s, sent.name, json.dumps(sent.args, default=str), sent.apid,
                sent.seq_count, " ".join(sent.stages),
                f"{failure.failure}: {failure.reason}" if failure else None))

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last `limit` commands, oldest first."""
        rows = self.db.execute("SELECT t_sent, name, args, apid, seq, stages, failure FROM "
                               "commands ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [{"t_sent": t, "command": n, "args": json.loads(a), "apid": apid, "seq": seq,
                 "stages": stages.split(), **({"failure": f} if f else {})}
                for t, n, a, apid, seq, stages, f in reversed(rows)]

    # -- reading ---------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._points)

    def query(self, name: str, since_s: float = -math.inf,
              until_s: float = math.inf) -> list[tuple[float, Any]]:
        """(on-board time, value) of `name`, oldest first. Raises ArchiveError for a
        point the archive never saw."""
        self.flush()
        point = self._points.get(name)
        if point is None:
            raise ArchiveError(f"{self.path}: no samples of {name!r} (it has "
                               f"{len(self._points)} points)")
        rows = self.db.execute(
            "SELECT t_s, value, text FROM samples WHERE point = ? AND t_s >= ? AND t_s <= ? "
            "ORDER BY t_s", (point, since_s, until_s))
        return [(t, text if text is not None else value) for t, value, text in rows]

    def events_between(self, since_s: float = -math.inf,
                       until_s: float = math.inf) -> list[tuple[float, str, str, dict[str, Any]]]:
        self.flush()
        rows = self.db.execute("SELECT t_s, name, severity, args FROM events WHERE t_s >= ? "
                               "AND t_s <= ? ORDER BY t_s", (since_s, until_s))
        return [(t, n, s, json.loads(a)) for t, n, s, a in rows]

    def packet_count(self) -> int:
        self.flush()
        return self.db.execute("SELECT COUNT(*) FROM packets").fetchone()[0]

    def export_csv(self, names: Sequence[str], out: IO[str], since_s: float = -math.inf,
                   until_s: float = math.inf) -> int:
        """Rows of (t_s, point, value), by time; returns the rows written."""
        series = {name: self.query(name, since_s, until_s) for name in names}
        rows = sorted((t, name, v) for name, points in series.items() for t, v in points)
        writer = csv.writer(out)
        writer.writerow(["t_s", "point", "value"])
        writer.writerows(rows)
        return len(rows)

