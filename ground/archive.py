"""The telemetry archive: every TM packet the ground receives, in SQLite.

    packets (t_s, apid, service, subtype, seq, raw, spacecraft, session, rx_utc)
    samples (point, t_s, value, text, spacecraft, session, rx_utc)  one row a value
    events  (t_s, name, severity, args, spacecraft, session, rx_utc)  args as JSON
    commands (t_sent, name, args, apid, seq, stages, failure, spacecraft, sender,
              reports)                                the command history
    sessions (id, spacecraft, boot, first_rx_utc, first_t_s)  one a flight-software boot
    points  (id, name)                               telemetry point names

t_s is on-board generation time (seconds since the satellite's time reference),
rx_utc and t_sent ground time (UTC, seconds since 1970). A session is one boot of the
flight software: a new one starts when on-board time goes back (it restarts at each
boot) or housekeeping shows another boot count (fsw.boot_count). Archives written
before these columns existed gain them when opened (their rows: NULL).

WAL mode, so an operator's query reads while a console writes. Rows are written in
batches, one transaction per `batch` packets or per `max_delay_s` of the oldest row
waiting (whichever comes first), or on `flush()`: batches make ingest fast, the delay
bounds what a crash of the ground can lose to about a second. Indexed by time, by APID
and time, and by point and time.
"""

from __future__ import annotations

import csv
import datetime
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
                                    subtype INTEGER, seq INTEGER, raw BLOB, spacecraft INTEGER,
                                    session INTEGER, rx_utc REAL);
CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS samples (point INTEGER, t_s REAL, value, text TEXT,
                                    spacecraft INTEGER, session INTEGER, rx_utc REAL);
CREATE TABLE IF NOT EXISTS events (t_s REAL, name TEXT, severity TEXT, args TEXT,
                                   spacecraft INTEGER, session INTEGER, rx_utc REAL);
CREATE TABLE IF NOT EXISTS commands (t_sent REAL, name TEXT, args TEXT, apid INTEGER,
                                     seq INTEGER, stages TEXT, failure TEXT,
                                     spacecraft INTEGER, sender TEXT, reports TEXT);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, spacecraft INTEGER, boot INTEGER,
                                     first_rx_utc REAL, first_t_s REAL);
CREATE INDEX IF NOT EXISTS packets_t ON packets (t_s);
CREATE INDEX IF NOT EXISTS packets_apid_t ON packets (apid, t_s);
CREATE INDEX IF NOT EXISTS samples_point_t ON samples (point, t_s);
CREATE INDEX IF NOT EXISTS events_t ON events (t_s);
"""
# Columns added after the first archives were written: added on open where missing
# (a new archive has them from the start).
ADDED = {"packets": ("spacecraft INTEGER", "session INTEGER", "rx_utc REAL"),
         "samples": ("spacecraft INTEGER", "session INTEGER", "rx_utc REAL"),
         "events": ("spacecraft INTEGER", "session INTEGER", "rx_utc REAL"),
         "commands": ("spacecraft INTEGER", "sender TEXT", "reports TEXT")}
INDEXES = """
CREATE INDEX IF NOT EXISTS packets_session ON packets (session, t_s);
CREATE INDEX IF NOT EXISTS samples_rx ON samples (spacecraft, rx_utc);
CREATE INDEX IF NOT EXISTS events_rx ON events (spacecraft, rx_utc);
CREATE INDEX IF NOT EXISTS commands_t ON commands (spacecraft, t_sent);
"""
BOOT_POINT = "fsw.boot_count"
SEVERITIES = ("debug", "info", "warning", "error", "critical")
REBOOT_BACKSTEP_S = 1.0  # on-board time going back more than this: a new boot
BATCH = 2000
MAX_DELAY_S = 1.0
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's transaction


class ArchiveError(SkyrackError):
    """The archive cannot be opened or read; the message says why."""


class Archive:
    def __init__(self, path: str | Path, client: GroundClient | None = None,
                 batch: int = BATCH, max_delay_s: float = MAX_DELAY_S,
                 clock: Callable[[], float] = time.monotonic, *, spacecraft: int = 1,
                 wall: Callable[[], float] = time.time) -> None:
        """`client` decodes housekeeping and events (it holds the dictionary); without
        one, only raw packets are stored. What is ingested is the satellite
        `spacecraft`'s, received at `wall()` (UTC)."""
        self.path = str(path)
        self.db = self._open()
        self.client = client
        self.spacecraft = spacecraft
        self.wall = wall
        self._session, self._boot, self._last_t_s = self._last_session()
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
                for table, columns in ADDED.items():
                    have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                    for column in columns:
                        if column.split()[0] not in have:
                            try:
                                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                            except sqlite3.OperationalError as e:
                                if "duplicate column" not in str(e):
                                    raise  # another ground added it first: as good

                db.executescript(INDEXES)
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

    # -- sessions ----------------------------------------------------------------------

    def _last_session(self) -> tuple[int | None, int | None, float]:
        """This spacecraft's latest session, its boot count, its latest on-board time:
        a restarted ground goes on with it while on-board time does."""
        row = self.db.execute("SELECT id, boot FROM sessions WHERE spacecraft = ? ORDER BY id "
                              "DESC LIMIT 1", (self.spacecraft,)).fetchone()
        if row is None:
            return None, None, -math.inf
        (last,) = self.db.execute("SELECT max(t_s) FROM packets WHERE session = ?",
                                  (row[0],)).fetchone()
        return row[0], row[1], last if last is not None else -math.inf

    def _new_session(self, t_s: float, rx_utc: float, boot: int | None) -> None:
        with self.db:
            cursor = self.db.execute("INSERT INTO sessions (spacecraft, boot, first_rx_utc, "
                                     "first_t_s) VALUES (?, ?, ?, ?)",
                                     (self.spacecraft, boot, rx_utc, t_s))
        self._session, self._boot = cursor.lastrowid, boot

    def _track(self, t_s: float, rx_utc: float, boot: int | None) -> None:
        """The session a packet of on-board time `t_s` belongs to (a new one when time
        went back or the boot count changed)."""
        if self._session is None or t_s < self._last_t_s - REBOOT_BACKSTEP_S \
                or (boot is not None and self._boot is not None and boot != self._boot):
            self.flush()  # the old session's rows go with it
            self._new_session(t_s, rx_utc, boot)
        elif boot is not None and self._boot is None:
            with self.db:
                self.db.execute("UPDATE sessions SET boot = ? WHERE id = ?", (boot, self._session))
            self._boot = boot
        self._last_t_s = max(self._last_t_s, t_s) if t_s >= self._last_t_s - \
            REBOOT_BACKSTEP_S else t_s

    @property
    def session(self) -> int | None:
        return self._session

    def ingest(self, tm: Telemetry, raw: bytes) -> None:
        """One TM (decoded, and as received). Written with the batch."""
        rx_utc = self.wall()
        values: dict[str, Any] = {}
        event = None
        if self.client is not None:
            try:
                if (tm.service, tm.subtype) == (3, 25):
                    values = self.client.hk_of(tm)
                elif tm.service == 5:
                    event = self.client.event_of(tm)
            except PacketError:
                self.undecoded += 1
        boot = values.get(BOOT_POINT)
        self._track(tm.time_s, rx_utc, boot if isinstance(boot, int) else None)
        if self._oldest_s is None:
            self._oldest_s = self.clock()
        where = (self.spacecraft, self._session, rx_utc)
        self._packets.append((tm.time_s, tm.apid, tm.service, tm.subtype, tm.seq_count, raw,
                              *where))
        for name, value in values.items():
            point = self._point(name)
            if isinstance(value, str):
                self._samples.append((point, tm.time_s, None, value, *where))
            elif value is not None:
                self._samples.append((point, tm.time_s, value, None, *where))
        if event is not None:
            self._events.append((event.t_s, event.name, event.severity,
                                 json.dumps(event.args, default=str), *where))
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
            self.db.executemany("INSERT INTO packets (t_s, apid, service, subtype, seq, raw, "
                                "spacecraft, session, rx_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                self._packets)
            self.db.executemany("INSERT INTO samples (point, t_s, value, text, spacecraft, "
                                "session, rx_utc) VALUES (?, ?, ?, ?, ?, ?, ?)", self._samples)
            self.db.executemany("INSERT INTO events (t_s, name, severity, args, spacecraft, "
                                "session, rx_utc) VALUES (?, ?, ?, ?, ?, ?, ?)", self._events)
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

    def record_command(self, sent: Sent, wall_s: float, sender: str | None = None) -> None:
        """A command sent (at `wall_s`, UTC), by whom, with the verification stages it
        reached and each report."""
        failure = sent.failure
        reports = [{"stage": r.stage, **({"code": r.failure, "reason": r.reason}
                                         if r.code else {})} for r in sent.reports]
        with self.db:
            self.db.execute("INSERT INTO commands (t_sent, name, args, apid, seq, stages, "
                            "failure, spacecraft, sender, reports) VALUES (?, ?, ?, ?, ?, ?, "
                            "?, ?, ?, ?)", (
                                wall_s, sent.name, json.dumps(sent.args, default=str),
                                sent.apid, sent.seq_count, " ".join(sent.stages),
                                f"{failure.failure}: {failure.reason}" if failure else None,
                                self.spacecraft, sender, json.dumps(reports)))

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

    def sessions(self, spacecraft: int | None = None) -> list[dict[str, Any]]:
        """The flight-software boots seen, oldest first."""
        rows = self.db.execute(
            "SELECT id, spacecraft, boot, first_rx_utc, first_t_s FROM sessions "
            "WHERE ? IS NULL OR spacecraft = ? ORDER BY id", (spacecraft, spacecraft))
        return [{"session": i, "spacecraft": sc, "boot": boot, "first_rx_utc": rx,
                 "first_t_s": t} for i, sc, boot, rx, t in rows]

    def events(self, since_utc: float = -math.inf, until_utc: float = math.inf, *,
               spacecraft: int | None = None, severity: str | None = None,
               name: str | None = None) -> list[dict[str, Any]]:
        """Events received between two UTC times, at or above `severity`, named `name`
        (or any), oldest first."""
        self.flush()
        floor = SEVERITIES.index(severity) if severity else 0
        rows = self.db.execute(
            "SELECT rx_utc, t_s, spacecraft, session, name, severity, args FROM events "
            "WHERE rx_utc >= ? AND rx_utc <= ? AND (? IS NULL OR spacecraft = ?) "
            "AND (? IS NULL OR name = ?) ORDER BY rx_utc, rowid",
            (since_utc, until_utc, spacecraft, spacecraft, name, name))
        return [{"rx_utc": rx, "t_s": t, "spacecraft": sc, "session": se, "name": n,
                 "severity": sev, "args": json.loads(a)}
                for rx, t, sc, se, n, sev, a in rows
                if sev in SEVERITIES and SEVERITIES.index(sev) >= floor]

    def commands(self, since_utc: float = -math.inf, until_utc: float = math.inf, *,
                 spacecraft: int | None = None) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT t_sent, spacecraft, sender, name, args, apid, seq, stages, failure, "
            "reports FROM commands WHERE t_sent >= ? AND t_sent <= ? AND (? IS NULL OR "
            "spacecraft = ?) ORDER BY t_sent, rowid",
            (since_utc, until_utc, spacecraft, spacecraft))
        return [{"t_sent_utc": t, "spacecraft": sc, "sender": who, "command": n,
                 "args": json.loads(a), "apid": apid, "seq_count": seq,
                 "stages": stages.split(), "failure": f,
                 "reports": json.loads(r) if r else []}
                for t, sc, who, n, a, apid, seq, stages, f, r in rows]

    def samples(self, since_utc: float = -math.inf, until_utc: float = math.inf, *,
                spacecraft: int | None = None,
                names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Housekeeping values received between two UTC times, oldest first: of the
        points `names` (None: every one; empty: none)."""
        if names is not None and not names:
            return []
        self.flush()
        ids = {v: k for k, v in self._points.items()}
        wanted = set(names) if names else None
        rows = self.db.execute(
            "SELECT rx_utc, t_s, spacecraft, session, point, value, text FROM samples "
            "WHERE rx_utc >= ? AND rx_utc <= ? AND (? IS NULL OR spacecraft = ?) "
            "ORDER BY rx_utc, rowid", (since_utc, until_utc, spacecraft, spacecraft))
        return [{"rx_utc": rx, "t_s": t, "spacecraft": sc, "session": se, "point": ids[p],
                 "value": text if text is not None else value}
                for rx, t, sc, se, p, value, text in rows
                if wanted is None or ids.get(p) in wanted]

    def timeline(self, since_utc: float, until_utc: float, *, spacecraft: int | None = None,
                 names: Sequence[str] | None = None) -> dict[str, Any]:
        """What happened between two UTC times: telemetry, events and commands."""
        return {"since_utc": since_utc, "until_utc": until_utc, "spacecraft": spacecraft,
                "telemetry": self.samples(since_utc, until_utc, spacecraft=spacecraft,
                                          names=names),
                "events": self.events(since_utc, until_utc, spacecraft=spacecraft),
                "commands": self.commands(since_utc, until_utc, spacecraft=spacecraft)}

    def packet_count(self) -> int:
        self.flush()
        return self.db.execute("SELECT COUNT(*) FROM packets").fetchone()[0]

    def export_csv(self, names: Sequence[str], out: IO[str], since_s: float = -math.inf,
                   until_s: float = math.inf, *, wide: bool = False,
                   units: dict[str, str | None] | None = None) -> int:
        """The points' samples between two on-board times, as CSV with the UTC they
        were received and their unit: long (a row a value: utc, t_s, session, point,
        value, unit) or `wide` (a row a packet: utc, t_s, session, then a column a
        point, "name [unit]"). Returns the rows written."""
        units = units or {}
        rows = self._rows(names, since_s, until_s)
        writer = csv.writer(out)
        if not wide:
            writer.writerow(["utc", "t_s", "session", "point", "value", "unit"])
            for rx, t, session, name, value in rows:
                writer.writerow([_utc(rx), t, session, name, value, units.get(name) or ""])
            return len(rows)
        columns = list(names)
        writer.writerow(["utc", "t_s", "session"] + [
            f"{n} [{units[n]}]" if units.get(n) else n for n in columns])
        packets: dict[tuple[Any, ...], dict[str, Any]] = {}
        for rx, t, session, name, value in rows:
            packets.setdefault((rx, t, session), {})[name] = value
        for (rx, t, session), values in packets.items():
            writer.writerow([_utc(rx), t, session] + [values.get(n, "") for n in columns])
        return len(packets)

    def export_json(self, names: Sequence[str], since_s: float = -math.inf,
                    until_s: float = math.inf,
                    units: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
        units = units or {}
        return [{"utc": _utc(rx), "rx_utc": rx, "t_s": t, "session": session, "point": name,
                 "value": value, "unit": units.get(name)}
                for rx, t, session, name, value in self._rows(names, since_s, until_s)]

    def _rows(self, names: Sequence[str], since_s: float,
              until_s: float) -> list[tuple[Any, ...]]:
        self.flush()
        out = []
        for name in names:
            point = self._points.get(name)
            if point is None:
                raise ArchiveError(f"{self.path}: no samples of {name!r}")
            out += [(rx, t, session, name, text if text is not None else value)
                    for rx, t, session, value, text in self.db.execute(
                        "SELECT rx_utc, t_s, session, value, text FROM samples WHERE point = ? "
                        "AND t_s >= ? AND t_s <= ?", (point, since_s, until_s))]
        return sorted(out, key=lambda r: (r[2] or 0, r[1], r[3]))


def _utc(rx_utc: float | None) -> str:
    """ISO 8601 UTC, to the millisecond ("" for a row older than reception times)."""
    if rx_utc is None:
        return ""
    return datetime.datetime.fromtimestamp(rx_utc, datetime.UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")

