"""The telemetry archive: every TM packet the ground receives, in SQLite.

    packets (t_s, apid, service, subtype, seq, raw, spacecraft, session, rx_utc, key)
                           one row a packet; key: a TM[3,25]'s structure id, a TM[5,x]'s
                           event id
    events  (t_s, name, severity, args, spacecraft, session, rx_utc)  args as JSON
    commands (t_sent, name, args, apid, seq, stages, failure, spacecraft, sender,
              reports)                                the command history
    sessions (id, spacecraft, boot, first_rx_utc, first_t_s, dictionary, last_t_s)
                           one a flight-software boot, and the dictionary it spoke
    dictionaries (id, digest, json)                   each dictionary heard, once
    structures (session, key)                         the structures each session sent
    spans (first_row, last_row, first_rx, last_rx)    the packets each batch wrote, by
                                                      row and reception time

t_s is on-board generation time (seconds since the satellite's time reference),
rx_utc and t_sent ground time (UTC, seconds since 1970). A session is one boot of the
flight software: a new one starts when on-board time goes back (it restarts at each
boot) or housekeeping shows another boot count (fsw.boot_count).

Housekeeping is kept as it came, one row a packet, and decoded when read, with the
dictionary of the session that sent it (stored with it, so an archive reads back
without the flight software that wrote it), as YAMCS keeps raw packets and
processes them on request: an ingest that decodes nothing it does not have to keeps
up with the downlink at a hundred thousand packets a second (bench/ground.py). At
ingest each housekeeping packet's structure id and size are checked against the
dictionary (a mismatch is counted in `undecoded`); a packet whose values then do not
decode is skipped when read, and counted in `unreadable`. Events are decoded at
ingest (a row each, searchable by name and severity). Archives written before these
columns gain them when opened; their packets are given their keys from their raw
octets, and are decoded with the dictionary a reader gives (`dictionary=`), as is any
packet archived without one.

A ground server's archive (writer_process) ingests in a process of its own, handed
each read of the link, so that the ground and its archive each have a core.

WAL mode, so an operator's query reads while a console writes. Rows are written in
batches, one transaction per `batch` packets or per `max_delay_s` of the oldest row
waiting (whichever comes first), or on `flush()`: batches make ingest fast, the delay
bounds what a crash of the ground can lose to about a second. Packets are indexed
by structure (or event) and on-board time; by reception time through `spans`, a row a
batch (a batch's rows are consecutive), which costs the ingest nothing per packet.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import math
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from ground.client import GroundClient, Sent
from hal.dictionary import Dictionary
from hal.errors import PacketError, SkyrackError
from hal.layout import Layouts, Structure, name_id
from hal.spacepacket import PRIMARY_BYTES, TM_SECONDARY_BYTES, Telemetry

SCHEMA = """
CREATE TABLE IF NOT EXISTS packets (t_s REAL, apid INTEGER, service INTEGER,
                                    subtype INTEGER, seq INTEGER, raw BLOB, spacecraft INTEGER,
                                    session INTEGER, rx_utc REAL, key INTEGER);
CREATE TABLE IF NOT EXISTS events (t_s REAL, name TEXT, severity TEXT, args TEXT,
                                   spacecraft INTEGER, session INTEGER, rx_utc REAL);
CREATE TABLE IF NOT EXISTS commands (t_sent REAL, name TEXT, args TEXT, apid INTEGER,
                                     seq INTEGER, stages TEXT, failure TEXT,
                                     spacecraft INTEGER, sender TEXT, reports TEXT);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, spacecraft INTEGER, boot INTEGER,
                                     first_rx_utc REAL, first_t_s REAL, dictionary INTEGER,
                                     last_t_s REAL);
CREATE TABLE IF NOT EXISTS dictionaries (id INTEGER PRIMARY KEY, digest TEXT UNIQUE,
                                         json TEXT);
CREATE TABLE IF NOT EXISTS structures (session INTEGER, key INTEGER,
                                       PRIMARY KEY (session, key));
CREATE TABLE IF NOT EXISTS spans (first_row INTEGER PRIMARY KEY, last_row INTEGER,
                                  first_rx REAL, last_rx REAL);
CREATE INDEX IF NOT EXISTS events_t ON events (t_s);
"""
# Columns added after the first archives were written: added on open where missing
# (a new archive has them from the start).
ADDED = {"packets": ("spacecraft INTEGER", "session INTEGER", "rx_utc REAL", "key INTEGER"),
         "events": ("spacecraft INTEGER", "session INTEGER", "rx_utc REAL"),
         "commands": ("spacecraft INTEGER", "sender TEXT", "reports TEXT"),
         "sessions": ("dictionary INTEGER", "last_t_s REAL")}
INDEXES = """
CREATE INDEX IF NOT EXISTS packets_key_t ON packets (key, t_s);
CREATE INDEX IF NOT EXISTS events_rx ON events (spacecraft, rx_utc);
CREATE INDEX IF NOT EXISTS commands_t ON commands (spacecraft, t_sent);
"""
OLD_INDEXES = ("packets_t", "packets_apid_t", "packets_session", "samples_point_t",
               "samples_rx")
# A packet's key, from its raw octets: the first two of its application data.
KEY_AT = PRIMARY_BYTES + TM_SECONDARY_BYTES
DATA_AT = KEY_AT + 2
CRC_BYTES = 2
BOOT_POINT = "fsw.boot_count"
SEVERITIES = ("debug", "info", "warning", "error", "critical")
REBOOT_BACKSTEP_S = 1.0  # on-board time going back more than this: a new boot
BATCH = 2000
MAX_DELAY_S = 1.0
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's transaction
IDLE_S = 0.1  # a writer process with nothing handed over looks at what is due this often


class ArchiveError(SkyrackError):
    """The archive cannot be opened or read; the message says why."""


def _key(raw: bytes | None) -> int | None:
    return int.from_bytes(raw[KEY_AT:DATA_AT]) if raw and len(raw) >= DATA_AT else None


def _connect(path: str) -> sqlite3.Connection:
    """Several ground processes may write one archive: each transaction is short
    (one batch, or one new session), and a writer waits its turn for up to
    BUSY_TIMEOUT_S rather than failing; in WAL mode readers never wait. Setting the
    journal mode can be refused while another process opens the file, without
    SQLite's own wait, so the opening itself is retried until then too."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        db = None
        try:
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
            db.executescript(SCHEMA)
            keyed = True
            for table, columns in ADDED.items():
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                for column in columns:
                    if column.split()[0] not in have:
                        keyed = keyed and column != "key INTEGER"
                        try:
                            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                        except sqlite3.OperationalError as e:
                            if "duplicate column" not in str(e):
                                raise  # another ground added it first: as good
            if not keyed:  # an older archive: its packets' keys from their octets,
                # its rows one span, its indexes this module's
                db.create_function("packet_key", 1, _key, deterministic=True)
                with db:
                    for index in OLD_INDEXES:
                        db.execute(f"DROP INDEX IF EXISTS {index}")
                    db.execute("INSERT OR IGNORE INTO spans SELECT min(rowid), max(rowid), "
                               "min(rx_utc), max(rx_utc) FROM packets HAVING count(*) > 0")
                    db.execute("UPDATE packets SET key = packet_key(raw) WHERE key IS "
                               "NULL AND (service = 5 OR (service = 3 AND subtype = 25))")
                    db.execute("INSERT OR IGNORE INTO structures SELECT DISTINCT "
                               "coalesce(session, 0), key FROM packets WHERE service = 3 "
                               "AND subtype = 25 AND key IS NOT NULL")
            db.executescript(INDEXES)
            return db
        except sqlite3.OperationalError as e:
            if db is not None:
                db.close()
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise ArchiveError(f"{path}: {e}") from None
            time.sleep(0.05)
        except sqlite3.Error as e:
            if db is not None:
                db.close()
            raise ArchiveError(f"{path}: {e}") from None

Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[int, int]],
              tuple[float, int] | None]


def _write_batch(db: sqlite3.Connection, batch: Batch, path: str) -> None:
    """Packets, events, structures seen and a session's latest on-board time, in one
    transaction; the packets' rows as one span."""
    packets, events, seen, last = batch
    try:
        # The write lock first (waiting for another writer's batch): the rows it takes
        # are then the ones after the last row read here, whoever else writes.
        db.execute("BEGIN IMMEDIATE")
        with db:
            if packets:
                (top,) = db.execute("SELECT max(rowid) FROM packets").fetchone()
                db.executemany("INSERT INTO packets (t_s, apid, service, subtype, seq, raw, "
                               "spacecraft, session, rx_utc, key) VALUES (?, ?, ?, ?, ?, ?, ?, "
                               "?, ?, ?)", packets)
                first = (top or 0) + 1
                db.execute("INSERT INTO spans VALUES (?, ?, ?, ?)", (
                    first, first + len(packets) - 1, min(r[8] for r in packets),
                    max(r[8] for r in packets)))
            db.executemany("INSERT INTO events (t_s, name, severity, args, spacecraft, "
                           "session, rx_utc) VALUES (?, ?, ?, ?, ?, ?, ?)", events)
            db.executemany("INSERT OR IGNORE INTO structures (session, key) VALUES (?, ?)", seen)
            if last is not None:
                db.execute("UPDATE sessions SET last_t_s = ? WHERE id = ?", last)
    except sqlite3.Error as e:
        raise ArchiveError(f"{path}: {e}") from None


class _Writer:
    """A process of its own that does an archive's ingest (sessions, events, rows) and
    its writing, so that the time they take is spent on another core than the
    ground's: it is handed each read of the link (reception time and the raw packets,
    already checked whole by the ground, pickled through a pipe) and ingests them in
    order with the same Archive code, inline. If the ground dies, it still writes
    what it was handed, then ends; a failure it meets is raised in the ground at the
    next hand-over. It is `python -m ground.archive`, started afresh (nothing of the
    ground's own program runs again in it)."""

    def __init__(self, path: str, config: dict[str, Any]) -> None:
        self.path = path
        from_parent, to_child = os.pipe()  # (read end, write end)
        from_child, to_parent = os.pipe()
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ground.archive", str(from_parent), str(to_parent), path],
                pass_fds=(from_parent, to_parent), env=env, stdin=subprocess.DEVNULL)
        finally:
            os.close(from_parent)
            os.close(to_parent)
        self._out = Connection(to_child, readable=False)
        self._in = Connection(from_child, writable=False)
        self._send(("open", config))
        self.stats: dict[str, Any] = self._ask("sync")  # it has opened the file

    def ingest(self, rx_utc: float, packets: list[bytes]) -> None:
        self._check()
        self._send(("ingest", (rx_utc, packets)))

    def sync(self) -> dict[str, Any]:
        """Everything handed over is written; the ingest's counts."""
        self.stats = self._ask("sync")
        return self.stats

    def close(self) -> None:
        try:
            self._ask("close")
        finally:
            self._out.close()
            self._in.close()
            try:
                self._process.wait(timeout=BUSY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def _send(self, message: tuple[str, Any]) -> None:
        try:
            self._out.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        except OSError:
            raise ArchiveError(f"{self.path}: the archive writer has stopped") from None

    def _ask(self, op: str) -> Any:
        """Ask `op` and wait for its answer; raise what the writer met meanwhile."""
        self._send((op, None))
        errors = []
        while True:
            kind, message = self._receive()
            if kind == op:
                break
            errors.append(message)
        self._raise(errors)
        return message

    def _check(self) -> None:
        """Raise what the writer met since the last hand-over."""
        errors = []
        while self._in.poll():
            kind, message = self._receive()
            if kind == "error":
                errors.append(message)
        self._raise(errors)

    def _receive(self) -> tuple[str, Any]:
        try:
            kind, message = pickle.loads(self._in.recv_bytes())
        except (EOFError, OSError):
            raise ArchiveError(f"{self.path}: the archive writer has stopped") from None
        return kind, message

    @staticmethod
    def _raise(errors: list[str]) -> None:
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ArchiveError(f"{errors[0]}{more}")


def _write_forever(path: str, pipe_in: Connection, pipe_out: Connection) -> None:
    """The writer process: an inline Archive, fed each read of the link the ground
    hands over, until told to stop or the ground's end of the pipe closes; it writes
    what waits when the oldest of it is due, even while nothing comes."""
    from hal.packetlink import InProcessLink
    from hal.spacepacket import decode_tm_checked

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the ground's to handle

    def tell(kind: str, message: Any) -> None:
        pipe_out.send_bytes(pickle.dumps((kind, message)))

    try:
        op, config = pickle.loads(pipe_in.recv_bytes())
        dictionary = Dictionary.from_json(config["dictionary"]) if config["dictionary"] \
            else None
        client = GroundClient(InProcessLink(), dictionary, None) if dictionary else None
        archive = Archive(path, client, config["batch"], config["max_delay_s"],
                          spacecraft=config["spacecraft"])
    except (EOFError, OSError):
        return
    except ArchiveError as e:
        tell("error", str(e))
        return

    def stats() -> dict[str, Any]:
        return {"undecoded": archive.undecoded, "session": archive.session,
                "ingested": archive.ingested}

    try:
        while True:
            try:
                if not pipe_in.poll(IDLE_S):
                    archive.flush_due()
                    continue
                op, payload = pickle.loads(pipe_in.recv_bytes())
            except (EOFError, OSError):
                break
            except ArchiveError as e:
                tell("error", str(e))
                continue
            try:
                if op == "ingest":
                    rx_utc, packets = payload
                    # each checked whole by the ground that handed it over
                    archive.ingest_many([(decode_tm_checked(raw), raw) for raw in packets],
                                        rx_utc)
                elif op in ("sync", "close"):
                    archive.flush()
            except ArchiveError as e:  # what failed is lost; told, and the next is tried
                tell("error", str(e))
            if op in ("sync", "close"):
                tell(op, stats())
                if op == "close":
                    break
    finally:
        try:
            archive.close()
        except ArchiveError:
            pass


class Archive:
    def __init__(self, path: str | Path, client: GroundClient | None = None,
                 batch: int = BATCH, max_delay_s: float = MAX_DELAY_S,
                 clock: Callable[[], float] = time.monotonic, *, spacecraft: int = 1,
                 wall: Callable[[], float] = time.time,
                 dictionary: Dictionary | None = None, writer_process: bool = False) -> None:
        """`client` decodes events and checks housekeeping (it holds the dictionary,
        stored with each session it ingests); without one, only raw packets are
        stored. What is ingested is the satellite `spacecraft`'s, received at `wall()`
        (UTC). `dictionary` (else the client's) reads packets archived without one.
        `writer_process`: the ingest and its writing are a process of its own (_Writer)."""
        self.path = str(path)
        self.db = _connect(self.path)
        # With a writer process, the ingest is the process's, and this connection reads
        # (and writes the commands, which are rare).
        self._writer = _Writer(self.path, {
            "spacecraft": spacecraft, "batch": batch, "max_delay_s": max_delay_s,
            "dictionary": client.dictionary.to_json() if client else None}) \
            if writer_process else None
        self.client = client
        self.spacecraft = spacecraft
        self.wall = wall
        self.batch = batch
        self.max_delay_s = max_delay_s
        self.clock = clock
        self._oldest_s: float | None = None  # when the oldest unwritten row came
        self._packets: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []
        self._seen: set[tuple[int, int]] = set()  # (session, structure) written
        self._new_seen: list[tuple[int, int]] = []
        self.ingested = 0
        self.undecoded = 0  # housekeeping of a structure or size the dictionary lacks
        self.unreadable = 0  # housekeeping skipped when read: its values do not decode
        fallback = dictionary or (client.dictionary if client else None)
        self._fallback = Layouts(fallback) if fallback else None
        self._layouts: dict[int, Layouts] = {}  # by dictionary id
        self._session_dictionary: dict[int, int | None] = {}
        self._dictionary_id = self._store_dictionary(client.dictionary) \
            if client and not writer_process else None
        self._hk_sizes: dict[int, int] = {}
        self._boot: tuple[Structure, int] | None = None
        if client is not None:
            self._hk_sizes = {sid: s.size for sid, s in client.layouts.structures.items()}
            fsw = client.layouts.structures.get(name_id(BOOT_POINT.split(".")[0]))
            names = [p.name for p in fsw.points] if fsw else []
            if fsw is not None and BOOT_POINT in names:
                self._boot = (fsw, names.index(BOOT_POINT))
        self._session, self._boot_count, self._last_t_s = self._last_session()
        self._session_last_t_s = self._last_t_s

    def _store_dictionary(self, dictionary: Dictionary) -> int:
        text = json.dumps(dictionary.to_json(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(text.encode()).hexdigest()
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO dictionaries (digest, json) VALUES (?, ?)",
                            (digest, text))
            (ident,) = self.db.execute("SELECT id FROM dictionaries WHERE digest = ?",
                                       (digest,)).fetchone()
        return int(ident)

    # -- sessions ----------------------------------------------------------------------

    def _last_session(self) -> tuple[int | None, int | None, float]:
        """This spacecraft's latest session, its boot count, its latest on-board time:
        a restarted ground goes on with it while on-board time does."""
        row = self.db.execute("SELECT id, boot, last_t_s FROM sessions WHERE spacecraft = ? "
                              "ORDER BY id DESC LIMIT 1", (self.spacecraft,)).fetchone()
        if row is None:
            return None, None, -math.inf
        last = row[2]
        if last is None:  # written before sessions kept it
            (last,) = self.db.execute("SELECT max(t_s) FROM packets WHERE session = ?",
                                      (row[0],)).fetchone()
        return row[0], row[1], last if last is not None else -math.inf

    def _new_session(self, t_s: float, rx_utc: float, boot: int | None) -> None:
        with self.db:
            cursor = self.db.execute("INSERT INTO sessions (spacecraft, boot, first_rx_utc, "
                                     "first_t_s, dictionary, last_t_s) VALUES (?, ?, ?, ?, ?, ?)",
                                     (self.spacecraft, boot, rx_utc, t_s, self._dictionary_id,
                                      t_s))
        self._session, self._boot_count = cursor.lastrowid, boot
        self._session_last_t_s = t_s

    def _track(self, t_s: float, rx_utc: float, boot: int | None) -> None:
        """The session a packet of on-board time `t_s` belongs to (a new one when time
        went back or the boot count changed)."""
        if self._session is None or t_s < self._last_t_s - REBOOT_BACKSTEP_S \
                or (boot is not None and self._boot_count is not None
                    and boot != self._boot_count):
            self._write_pending()  # the old session's rows go with it
            self._new_session(t_s, rx_utc, boot)
        elif boot is not None and self._boot_count is None:
            with self.db:
                self.db.execute("UPDATE sessions SET boot = ? WHERE id = ?", (boot, self._session))
            self._boot_count = boot
        self._last_t_s = max(self._last_t_s, t_s) if t_s >= self._last_t_s - \
            REBOOT_BACKSTEP_S else t_s

    @property
    def session(self) -> int | None:
        if self._writer is not None:
            return self._writer.stats["session"]  # type: ignore[no-any-return]
        return self._session

    def ingest(self, tm: Telemetry, raw: bytes) -> None:
        """One TM (decoded, and as received). Written with the batch."""
        self.ingest_many([(tm, raw)])

    def ingest_many(self, received: Sequence[tuple[Telemetry, bytes]],
                    rx_utc: float | None = None) -> None:
        """TMs (decoded, and as received) that came in one read of the link, at one
        reception time (default: now). Written with the batch."""
        if rx_utc is None:
            rx_utc = self.wall()
        if self._writer is not None:
            self._writer.ingest(rx_utc, [raw for _, raw in received])
            self.ingested += len(received)
            return
        rows, spacecraft, checked = self._packets, self.spacecraft, self.client is not None
        sizes, seen = self._hk_sizes, self._seen
        boot_sid = self._boot[0].sid if self._boot is not None else None
        session, last = self._session, self._last_t_s
        for tm, raw in received:
            apid, service, subtype, data, t_s, seq, _, _ = tm
            key = boot = None
            if service == 3:
                if subtype == 25 and len(data) >= 2:
                    key = int.from_bytes(data[:2])
                    if checked:
                        if sizes.get(key) != len(data) - 2:
                            self.undecoded += 1
                        elif key == boot_sid:
                            boot = self._boot_count_in(tm)
            elif service == 5 and len(data) >= 2:
                key = int.from_bytes(data[:2])
            if session is None or t_s < last - REBOOT_BACKSTEP_S \
                    or (boot is not None and boot != self._boot_count):
                self._last_t_s = last
                self._track(t_s, rx_utc, boot)
                session, last = self._session, self._last_t_s
            elif t_s > last:
                last = t_s
            if key is not None:
                if service == 3:
                    if (session, key) not in seen:
                        self._saw(key)
                elif checked:
                    self._event(tm, rx_utc)
            rows.append((t_s, apid, service, subtype, seq, raw, spacecraft, session, rx_utc, key))
        self._last_t_s = last
        self.ingested += len(received)
        if rows and self._oldest_s is None:
            self._oldest_s = self.clock()
        if len(rows) >= self.batch:
            self._write_pending()
        else:
            self.flush_due()

    def _boot_count_in(self, tm: Telemetry) -> int | None:
        assert self._boot is not None
        try:
            boot = self._boot[0].values(tm.data[2:])[BOOT_POINT]
        except PacketError:
            self.undecoded += 1
            return None
        return boot if isinstance(boot, int) else None

    def _saw(self, key: int) -> None:
        """The current session has sent structure `key` (kept for reading)."""
        seen = (self._session, key)
        if seen not in self._seen:
            self._seen.add(seen)  # type: ignore[arg-type]
            self._new_seen.append(seen)  # type: ignore[arg-type]

    def _event(self, tm: Telemetry, rx_utc: float) -> None:
        assert self.client is not None
        try:
            event = self.client.event_of(tm)
        except PacketError:
            self.undecoded += 1
            return
        self._events.append((event.t_s, event.name, event.severity,
                             json.dumps(event.args, default=str), self.spacecraft,
                             self._session, rx_utc))

    def flush_due(self) -> None:
        """Write what waits if the oldest of it has waited `max_delay_s`: call it while
        idle too, so that rows never wait on the next packet. (A writer process keeps
        its own time.)"""
        if self._oldest_s is not None and self.clock() - self._oldest_s >= self.max_delay_s:
            self._write_pending()

    def _write_pending(self) -> None:
        """Write what waits, in one transaction."""
        last = None
        if self._session is not None and self._last_t_s != self._session_last_t_s:
            last = (self._last_t_s, self._session)
            self._session_last_t_s = self._last_t_s
        if self._packets or self._events or self._new_seen or last:
            _write_batch(self.db, (self._packets, self._events, self._new_seen, last),
                         self.path)
        self._packets.clear()
        self._events.clear()
        self._new_seen.clear()
        self._oldest_s = None

    def flush(self) -> None:
        """Everything ingested is in the file (what reads see)."""
        if self._writer is not None:
            self.undecoded = self._writer.sync()["undecoded"]
            return
        self._write_pending()

    @property
    def pending(self) -> int:
        """Packets received and not yet written."""
        return len(self._packets)

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            else:
                self._write_pending()
        finally:
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

    def history(self, limit: int = 50, *, spacecraft: int | None = None) -> list[dict[str, Any]]:
        """The last `limit` commands (to one spacecraft, or to any), oldest first."""
        rows = self.db.execute("SELECT t_sent, name, args, apid, seq, stages, failure FROM "
                               "commands WHERE ? IS NULL OR spacecraft = ? ORDER BY rowid DESC "
                               "LIMIT ?", (spacecraft, spacecraft, limit)).fetchall()
        return [{"t_sent": t, "command": n, "args": json.loads(a), "apid": apid, "seq": seq,
                 "stages": stages.split(), "failure": f}
                for t, n, a, apid, seq, stages, f in reversed(rows)]

    # -- reading ---------------------------------------------------------------------

    def _layouts_of(self, session: int | None) -> Layouts | None:
        """The dictionary session `session` spoke (else the one given as fallback)."""
        if session not in self._session_dictionary:
            row = self.db.execute("SELECT dictionary FROM sessions WHERE id = ?",
                                  (session,)).fetchone()
            self._session_dictionary[session] = row[0] if row else None  # type: ignore[index]
        ident = self._session_dictionary[session]  # type: ignore[index]
        if ident is None:
            return self._fallback
        layouts = self._layouts.get(ident)
        if layouts is None:
            (text,) = self.db.execute("SELECT json FROM dictionaries WHERE id = ?",
                                      (ident,)).fetchone()
            layouts = self._layouts[ident] = Layouts(Dictionary.from_json(json.loads(text)))
        return layouts

    def _structures(self) -> dict[int, Structure]:
        """Every housekeeping structure the archive holds packets of, by id."""
        self.flush()
        out = {}
        for session, key in self.db.execute("SELECT session, key FROM structures"):
            layouts = self._layouts_of(session or None)
            structure = layouts.structures.get(key) if layouts else None
            if structure is not None:
                out.setdefault(key, structure)
        return out

    def _decoded(self, rows: Iterator[tuple[Any, ...]]
                 ) -> Iterator[tuple[float, float, int, int, dict[str, Any]]]:
        """(rx_utc, t_s, spacecraft, session, values) of housekeeping rows (rx_utc, t_s,
        spacecraft, session, key, raw), each decoded with its session's dictionary."""
        for rx, t, spacecraft, session, key, raw in rows:
            layouts = self._layouts_of(session)
            structure = layouts.structures.get(key) if layouts else None
            try:
                if structure is None:
                    raise PacketError("layout", f"structure 0x{key:04x} unknown")
                values = structure.values(raw[DATA_AT:len(raw) - CRC_BYTES])
            except PacketError:
                self.unreadable += 1
                continue
            yield rx, t, spacecraft, session, values

    def names(self) -> list[str]:
        """Every point the archive has housekeeping of."""
        return sorted({p.name for s in self._structures().values() for p in s.points})

    def query(self, name: str, since_s: float = -math.inf, until_s: float = math.inf, *,
              spacecraft: int | None = None) -> list[tuple[float, Any]]:
        """(on-board time, value) of `name`, oldest first: of one spacecraft, or of
        every one. Raises ArchiveError for a point the archive never saw."""
        return [(t, value) for _, t, _, value in self._point(name, since_s, until_s,
                                                              spacecraft)]

    def _point(self, name: str, since_s: float, until_s: float,
               spacecraft: int | None = None) -> list[tuple[Any, ...]]:
        """(rx_utc, t_s, session, value) of every sample of `name` between two on-board
        times, oldest first."""
        keys = [key for key, s in self._structures().items()
                if any(p.name == name for p in s.points)]
        if not keys:
            raise ArchiveError(f"{self.path}: no samples of {name!r} (it has "
                               f"{len(self.names())} points)")
        out = []
        for key in keys:
            rows = self.db.execute(
                "SELECT rx_utc, t_s, spacecraft, session, key, raw FROM packets WHERE key = ? "
                "AND service = 3 AND subtype = 25 AND t_s >= ? AND t_s <= ? AND (? IS NULL "
                "OR spacecraft = ?) ORDER BY t_s", (key, since_s, until_s, spacecraft,
                                                    spacecraft))
            out += [(rx, t, session, values[name]) for rx, t, _, session, values
                    in self._decoded(rows) if values.get(name) is not None]
        return sorted(out, key=lambda r: r[1]) if len(keys) > 1 else out

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
        wanted = set(names) if names else None
        rows = self._received(since_utc, until_utc, spacecraft,
                              "service = 3 AND subtype = 25")
        return [{"rx_utc": rx, "t_s": t, "spacecraft": sc, "session": se, "point": point,
                 "value": value}
                for rx, t, sc, se, values in self._decoded(iter(rows))
                for point, value in values.items()
                if value is not None and (wanted is None or point in wanted)]

    def _received(self, since_utc: float, until_utc: float, spacecraft: int | None,
                  where: str) -> list[tuple[Any, ...]]:
        """(rx_utc, t_s, spacecraft, session, key, raw) of the packets received between
        two UTC times that meet `where`, in the order received."""
        self.flush()
        spans = self.db.execute("SELECT first_row, last_row FROM spans WHERE last_rx >= ? AND "
                                "first_rx <= ? ORDER BY first_row", (since_utc, until_utc))
        rows: list[tuple[Any, ...]] = []
        for first, last in _merged(spans):
            rows += self.db.execute(
                "SELECT rx_utc, t_s, spacecraft, session, key, raw, rowid FROM packets WHERE "
                f"rowid BETWEEN ? AND ? AND rx_utc >= ? AND rx_utc <= ? AND {where} AND "
                "(? IS NULL OR spacecraft = ?)",
                (first, last, since_utc, until_utc, spacecraft, spacecraft))
        rows.sort(key=lambda r: (r[0], r[6]))
        return [r[:6] for r in rows]

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
        out = [(rx, t, session, name, value) for name in names
               for rx, t, session, value in self._point(name, since_s, until_s)]
        return sorted(out, key=lambda r: (r[2] or 0, r[1], r[3]))


def _merged(spans: Iterator[tuple[int, int]]) -> list[tuple[int, int]]:
    """Row ranges, in order, with those that touch joined."""
    out: list[tuple[int, int]] = []
    for first, last in spans:
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def _utc(rx_utc: float | None) -> str:
    """ISO 8601 UTC, to the millisecond ("" for a row older than reception times)."""
    if rx_utc is None:
        return ""
    return datetime.datetime.fromtimestamp(rx_utc, datetime.UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


if __name__ == "__main__":  # the writer process (_Writer): fds in and out, the archive
    _write_forever(sys.argv[3], Connection(int(sys.argv[1]), writable=False),
                   Connection(int(sys.argv[2]), readable=False))
