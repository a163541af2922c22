import csv
import io
import sqlite3

import pytest

from boards.definition import default_path, load
from flight.software import FlightSoftware
from ground.archive import Archive, ArchiveError
from ground.client import GroundClient, Signer
from hal import layout
from hal.auth import KeyFile
from hal.layout import Layouts, name_id
from hal.packetlink import InProcessLink
from hal.pus import N
from hal.spacepacket import Telemetry, encode_tm
from skyrack.assembly import assemble

KEYS = KeyFile(1, {1: bytes(32)})


@pytest.fixture
def archived(tmp_path):
    """Ten seconds of a simulated satellite's TM, archived."""
    flight_end, ground_end = InProcessLink.pair()
    satellite = assemble(load(default_path()), link=flight_end, keys=KEYS)
    client = GroundClient(ground_end, satellite.flight.dictionary(), Signer(1, bytes(32)))
    archive = Archive(tmp_path / "a.sqlite", client, batch=50)
    client.on_tm.append(archive.ingest)
    client.command("power.switch", {"channel": 2, "on": True})
    for t in range(1, 11):
        satellite.run_until(float(t))
        client.poll()
    satellite.close()
    yield archive, client
    archive.close()


def test_every_tm_lands_and_housekeeping_is_queryable_by_time(archived) -> None:
    archive, client = archived
    assert archive.packet_count() == client.received > 80
    volts = archive.query("power.batt_v")
    assert len(volts) >= 9 and all(30 < v < 40 for _, v in volts)
    assert [t for t, _ in volts] == sorted(t for t, _ in volts)
    window = archive.query("power.batt_v", since_s=3.0, until_s=5.0)
    assert window and all(3.0 <= t <= 5.0 for t, _ in window)
    assert archive.query("mode.mode")[-1][1] == "nominal"  # text points keep their text
    switches = archive.query("power.switches")[-1][1]
    assert switches == 0b111 and isinstance(switches, int)  # ints stay ints


def test_csv_export_long_and_wide_with_units_and_utc(archived) -> None:
    archive, _ = archived
    units = {"power.batt_v": "V", "power.soc_pct": "%"}
    out = io.StringIO()
    rows = archive.export_csv(["power.batt_v", "power.soc_pct"], out, until_s=4.0,
                              units=units)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == ["utc", "t_s", "session", "point", "value", "unit"]
    assert len(table) == rows + 1 and rows >= 6
    assert all(float(r[1]) <= 4.0 and r[0].endswith("Z") and r[5] == units[r[3]]
               for r in table[1:])
    wide = io.StringIO()
    packets = archive.export_csv(["power.batt_v", "power.soc_pct"], wide, until_s=4.0,
                                 wide=True, units=units)
    table = list(csv.reader(io.StringIO(wide.getvalue())))
    assert table[0] == ["utc", "t_s", "session", "power.batt_v [V]", "power.soc_pct [%]"]
    assert packets == rows // 2 and all(r[3] and r[4] for r in table[1:])
    as_json = archive.export_json(["power.batt_v"], until_s=4.0, units=units)
    assert {r["unit"] for r in as_json} == {"V"} and len(as_json) == rows // 2


def test_the_archive_is_wal_indexed_and_readable_while_written(archived) -> None:
    archive, _ = archived
    archive.flush()
    other = sqlite3.connect(archive.path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"packets_key_t", "events_t"} <= indexes
    # reception time through spans: each row in one span, each span's rows received in it
    spans = other.execute("SELECT first_row, last_row, first_rx, last_rx FROM spans "
                          "ORDER BY first_row").fetchall()
    rows = dict(other.execute("SELECT rowid, rx_utc FROM packets"))
    assert [r for a, b, _, _ in spans for r in range(a, b + 1)] == sorted(rows)
    assert all(lo <= rows[r] <= hi for a, b, lo, hi in spans for r in range(a, b + 1))
    # one row a packet; a reader without the flight software decodes it with the
    # dictionary the archive keeps
    assert other.execute("SELECT COUNT(*) FROM packets").fetchone()[0] == archive.ingested
    reader = Archive(archive.path)
    assert reader.query("power.batt_v") == archive.query("power.batt_v")
    assert reader.names() == archive.names() and "mode.mode" in reader.names()
    reader.close()


def test_an_unknown_point_and_an_undecodable_packet_are_reported(archived) -> None:
    archive, _ = archived
    with pytest.raises(ArchiveError, match="no samples of 'power.nothing'"):
        archive.query("power.nothing")
    bogus = Telemetry(0x10, 3, 25, b"\xbe\xef" + bytes(8))
    archive.ingest(bogus, encode_tm(bogus))
    assert archive.undecoded == 1 and archive.packet_count() > 0  # stored raw all the same


@pytest.mark.crash
def test_a_killed_ground_loses_only_what_arrived_in_its_last_delay(tmp_path) -> None:
    """kill -9 while packets stream in: every packet that arrived more than the archive's
    delay before the kill is in the archive, and the archive opens clean."""
    import time

    from tests.crash import Child, Trial, kill_trials, tally, trial_count

    delay_s = 0.1
    path = tmp_path / "crash.sqlite"
    seen = {"count": 0}

    def writer(child: Child) -> None:
        archive = Archive(path, max_delay_s=delay_s)
        base = child.rng.randrange(1 << 30)
        for i in range(400):
            child.step()
            tm = Telemetry(0x100, 3, 25, b"", float(base + i), i % 16384, 0, 1)
            archive.ingest(tm, encode_tm(tm))
            child.report(f"{base + i} {time.monotonic()}")
            time.sleep(0.001)

    def check(trial: Trial) -> None:
        got = {t for (t,) in sqlite3.connect(path).execute("SELECT t_s FROM packets")}
        reports = [(float(a), float(b)) for a, b in (r.split() for r in trial.reports)]
        if not reports:
            return
        last_s = reports[-1][1]  # the kill came after this
        must = {t for t, at in reports if at < last_s - delay_s - 0.1}
        assert must <= got, f"trial {trial.index}: {len(must - got)} packets lost"
        seen["count"] += len(must)

    trials = kill_trials(writer, check, trials=max(12, trial_count(12) // 10), seed=8,
                         max_delay_s=0.4, max_steps=300)
    assert seen["count"] > 100
    tally("ground archive", trials, packets_older_than_the_delay=seen["count"], lost=0)


def _write_archive(path: str, writer: int, packets: list[bytes], out, start) -> None:
    """One ground process: every packet ingested, in small batches, new points too.
    Writer 0 then idles between two packets for longer than SQLite's default busy
    timeout (5 s), as a ground does waiting on its link; writer 1 writes meanwhile."""
    import time

    from hal.spacepacket import decode_tm

    try:
        client = GroundClient(InProcessLink(), FlightSoftware.dictionary(), None)
        start.wait()  # both open the new file at once, as two grounds started together
        archive = Archive(path, client, batch=len(packets) + 1, max_delay_s=1e9)
        if writer == 1:
            time.sleep(0.5)  # writer 0 holds its first points when writer 1 writes
        for i, raw in enumerate(packets):
            archive.ingest(decode_tm(raw), raw)
            if writer == 0 and i == 40:
                time.sleep(5.5)
        archive.close()
        out.put((writer, "ok"))
    except Exception as e:  # reported to the test, which fails on it
        out.put((writer, f"{type(e).__name__}: {e}"))


def test_two_ground_processes_share_one_archive_without_an_error(tmp_path) -> None:
    import multiprocessing

    flight_end, ground_end = InProcessLink.pair()
    satellite = assemble(load(default_path()), link=flight_end, keys=KEYS)
    satellite.run_until(20.0)
    satellite.close()
    packets = ground_end.receive()
    assert len(packets) > 200
    path = str(tmp_path / "shared.sqlite")
    context = multiprocessing.get_context("fork")
    out, start = context.Queue(), context.Event()
    writers = [context.Process(target=_write_archive, args=(path, n, packets, out, start))
               for n in range(2)]
    for w in writers:
        w.start()
    start.set()
    results = sorted(out.get(timeout=120) for _ in writers)
    for w in writers:
        w.join(timeout=30)
    assert results == [(0, "ok"), (1, "ok")]
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT COUNT(*) FROM packets").fetchone()
        (dictionaries,) = db.execute("SELECT COUNT(*) FROM dictionaries").fetchone()
    assert stored == 2 * len(packets) and dictionaries == 1  # every packet; the dictionary once


def test_sessions_spacecraft_and_what_happened_between_two_utc_times(tmp_path) -> None:
    """Two satellites into one archive, the second rebooted halfway: each packet,
    event and command lands with its spacecraft, its session and its reception time,
    and a UTC window gives telemetry, events and commands together."""
    wall = [1_800_000_000.0]
    dictionary = FlightSoftware.dictionary()
    path = tmp_path / "mission.sqlite"
    archives = {sc: Archive(path, GroundClient(InProcessLink(), dictionary, None),
                            spacecraft=sc, wall=lambda: wall[0]) for sc in (1, 2)}
    for sc, boots in ((1, [1]), (2, [1, 2])):
        for boot in boots:
            flight_end, ground_end = InProcessLink.pair()
            satellite = assemble(load(default_path()), seed=sc, link=flight_end, keys=KEYS)
            satellite.flight.system.boots = boot  # as the stored boot count would say
            client = GroundClient(ground_end, dictionary, Signer(1, bytes(32)))
            client.on_tm.append(archives[sc].ingest)
            sent = client.command("compute.cancel", {"job": 7})
            for t in range(1, 6):
                satellite.run_until(float(t))
                wall[0] += 1.0
                client.poll()
            archives[sc].record_command(sent, wall[0], sender=f"op-{sc}")
            satellite.close()
    for archive in archives.values():
        archive.flush()
    archive = archives[2]
    sessions = archive.sessions()
    assert [(s["spacecraft"], s["boot"]) for s in sessions] == [(1, 1), (2, 1), (2, 2)]
    start = sessions[2]["first_rx_utc"]
    window = archive.timeline(start, start + 10, spacecraft=2)
    assert {r["spacecraft"] for r in window["telemetry"]} == {2}
    assert {r["session"] for r in window["telemetry"]} == {sessions[2]["session"]}
    assert all(start <= r["rx_utc"] <= start + 10 for r in window["telemetry"])
    assert window["events"] and all(e["spacecraft"] == 2 for e in window["events"])
    (command,) = window["commands"]
    assert command["sender"] == "op-2" and command["stages"] == ["accepted", "started",
                                                                 "failed"]
    assert command["reports"][-1] == {"stage": "failed", "code": "failed",
                                      "reason": "no job 7"}
    everything, serious = archive.events(), archive.events(severity="warning")
    assert len(serious) < len(everything)
    assert all(e["severity"] in ("warning", "error", "critical") for e in serious)
    named = archive.events(name="fsw.booted", spacecraft=2)
    assert [e["session"] for e in named] == [s["session"] for s in sessions[1:]]
    for a in archives.values():
        a.close()


def test_an_archive_from_before_sessions_gains_the_columns_and_keeps_its_rows(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE packets (t_s REAL, apid INTEGER, service INTEGER, subtype INTEGER,
                              seq INTEGER, raw BLOB);
        CREATE TABLE points (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
        CREATE TABLE samples (point INTEGER, t_s REAL, value, text TEXT);
        CREATE TABLE events (t_s REAL, name TEXT, severity TEXT, args TEXT);
        CREATE TABLE commands (t_sent REAL, name TEXT, args TEXT, apid INTEGER, seq INTEGER,
                               stages TEXT, failure TEXT);
        INSERT INTO packets VALUES (1.0, 16, 3, 25, 0, x'00');
        INSERT INTO events VALUES (1.0, 'fsw.booted', 'info', '{}');""")
    dictionary = FlightSoftware.dictionary()
    power = Layouts(dictionary).structures[name_id("power")]
    hk = Telemetry(0x10, 3, 25, N.pack(power.sid) + layout.pack(
        power.points, [31.5 if p.name == "power.batt_v" else None for p in power.points]), 1.5)
    old.execute("INSERT INTO packets VALUES (1.5, 16, 3, 25, 1, ?)", (encode_tm(hk),))
    old.commit()
    old.close()
    archive = Archive(path)
    assert archive.packet_count() == 2
    assert archive.names() == []  # no dictionary stored with it: given one, it reads
    assert Archive(path, dictionary=dictionary).query("power.batt_v") == [(1.5, 31.5)]
    assert archive.events() == []  # no reception time: not in a UTC window
    assert archive.events_between()[0][1] == "fsw.booted"  # by on-board time, still there
    tm = Telemetry(0x10, 17, 2, b"", 2.0)
    archive.ingest(tm, encode_tm(tm))
    assert archive.packet_count() == 3 and archive.sessions()[0]["first_t_s"] == 2.0
    archive.close()


@pytest.mark.crash
def test_a_killed_ground_loses_nothing_it_handed_its_archive_process(tmp_path) -> None:
    """kill -9 of a ground whose archive ingests in a process of its own: every packet
    it handed over before the kill is written all the same (the writer finishes what
    it was given), and the archive opens clean."""
    import time

    from flight.software import FlightSoftware
    from tests.crash import Child, Trial, kill_trials, tally, trial_count

    dictionary = FlightSoftware.dictionary()
    power = Layouts(dictionary).structures[name_id("power")]
    path = tmp_path / "crash.sqlite"
    seen = {"count": 0}

    def writer(child: Child) -> None:
        archive = Archive(path, GroundClient(InProcessLink(), dictionary, None),
                          writer_process=True)
        base = child.rng.randrange(1 << 30)
        for i in range(300):
            child.step()
            values = [float(i) if p.name == "power.batt_v" else None for p in power.points]
            tm = Telemetry(0x10, 3, 25, N.pack(power.sid) + layout.pack(power.points, values),
                           float(base + i), i % 16384)
            archive.ingest_many([(tm, encode_tm(tm))])
            child.report(str(base + i))
            time.sleep(0.001)

    def check(trial: Trial) -> None:
        handed = {float(r) for r in trial.reports}
        if not handed:
            return
        deadline, got = time.monotonic() + 15, set()
        while time.monotonic() < deadline:  # the orphaned writer finishing its work
            got = {t for (t,) in sqlite3.connect(path).execute("SELECT t_s FROM packets")}
            if handed <= got:
                break
            time.sleep(0.1)
        assert handed <= got, f"trial {trial.index}: {len(handed - got)} packets lost"
        seen["count"] += len(handed)

    trials = kill_trials(writer, check, trials=max(6, trial_count(6) // 10), seed=9,
                         max_delay_s=1.5, max_steps=300)
    assert seen["count"] > 50
    assert Archive(path, dictionary=dictionary).names()  # opens clean, and reads
    tally("ground archive process", trials, packets_handed_over=seen["count"], lost=0)
