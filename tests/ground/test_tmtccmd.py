"""tmtccmd, a ground tool we did not write, on our space link: its TCP space-packet
client and its serial COBS interface each receive and parse the flight software's
TM, and the TCs they carry are accepted and verified.

The TCs are built by spacepackets (tmtccmd's packet library) and signed with the key
file's key; tmtccmd is the transport under test. Its serial interface opens a real
tty: here one end of a null modem of two pseudo-terminals, the flight software on
the other.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator

import pytest

from boards.definition import default_path, load
from hal.auth import KeyFile, sign
from hal.packetlink import SerialPacketLink, TcpServerLink
from hal.pus import APID
from hal.spacepacket import decode_tc
from skyrack.assembly import assemble
from tests.doubles import subtype_of

tmtccmd_com = pytest.importorskip("tmtccmd.com")
from spacepackets.ccsds.spacepacket import PacketId, PacketType  # noqa: E402
from spacepackets.ecss import PusTc, PusTm  # noqa: E402
from tmtccmd.com.serial_base import SerialCfg  # noqa: E402
from tmtccmd.com.serial_cobs import SerialCobsComIF  # noqa: E402
from tmtccmd.com.tcp import TcpSpacepacketsClient  # noqa: E402
from tmtccmd.com.tcpip_utils import EthAddr  # noqa: E402

KEYS = KeyFile(1, {1: bytes(range(32))})
TIMESTAMP_LEN = 6  # CUC 4+2, implicit P-field (the dictionary says so)


class NullModem:
    """Two pseudo-terminals whose controllers are joined: what one peripheral end
    writes, the other reads, as two serial ports joined by a null-modem cable."""

    def __init__(self) -> None:
        self._fds = [os.openpty() for _ in range(2)]
        for _, peripheral in self._fds:
            tty.setraw(peripheral)
        self.paths = [os.ttyname(peripheral) for _, peripheral in self._fds]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        a, b = self._fds[0][0], self._fds[1][0]
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    continue
                os.write(b if fd == a else a, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        for pair in self._fds:
            for fd in pair:
                os.close(fd)


def signed(service: int, subtype: int, seq_count: int, data: bytes = b"") -> bytes:
    """A TC as spacepackets builds it, signed for the satellite."""
    theirs = PusTc(service, subtype, apid=APID, app_data=data, seq_count=seq_count,
                   source_id=7)
    return sign(decode_tc(theirs.pack()), 1, seq_count + 1, KEYS.keys[1])


def exchange(satellite, com, sent: list[bytes], until: Callable[[list[PusTm]], bool]
             ) -> list[PusTm]:
    """Send through `com`, run the satellite, and parse what `com` receives with
    spacepackets, until `until(received)` or 20 simulated seconds."""
    for packet in sent:
        com.send(packet)
    received: list[PusTm] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not until(received):
        satellite.run_until(satellite.clock.now_s() + 0.2)
        time.sleep(0.02)
        received += [PusTm.unpack(p, timestamp_len=TIMESTAMP_LEN) for p in com.receive()]
    return received


def reports_for(received: list[PusTm], tc: bytes) -> list[int]:
    """The service 1 subtypes of the reports naming `tc` (its packet ID and sequence
    control), addressed to its source."""
    return [subtype_of(tm) for tm in received
            if tm.service == 1 and tm.source_data[:4] == tc[:4] and destination_of(tm) == 7]


def destination_of(tm: PusTm) -> int:
    header = tm.pus_tm_sec_header
    return int(getattr(header, "destination_id", None) or header.dest_id)


def done(tcs: list[bytes]) -> Callable[[list[PusTm]], bool]:
    return lambda received: all(7 in reports_for(received, tc) for tc in tcs)


def check(received: list[PusTm], tcs: list[bytes]) -> None:
    for tc in tcs:
        assert reports_for(received, tc) == [1, 3, 7]
    assert any(tm.service == 3 and subtype_of(tm) == 25 for tm in received)  # housekeeping
    assert any(tm.service == 17 and subtype_of(tm) == 2 for tm in received)  # the reply


@pytest.fixture
def definition():
    return load(default_path())


def test_tmtccmds_tcp_client_is_a_ground_station(definition) -> None:
    link = TcpServerLink("127.0.0.1", 0)
    satellite = assemble(definition, seed=1, link=link, keys=KEYS)
    com = TcpSpacepacketsClient("tcp", [PacketId(PacketType.TM, True, APID)], 0.01,
                                EthAddr(*link.address))
    try:
        com.open()
        while not link.connected:
            link.receive()  # accept it
        tcs = [signed(17, 1, 0), signed(17, 1, 1)]
        check(exchange(satellite, com, tcs, done(tcs)), tcs)
        assert satellite.flight.space_link.counters["tc_accepted"] == 2
        assert link.counters["skipped_bytes"] == 0
    finally:
        com.close()
        satellite.close()


@pytest.fixture
def null_modem() -> Iterator[NullModem]:
    modem = NullModem()
    yield modem
    modem.close()


def test_tmtccmds_serial_cobs_interface_is_a_ground_station(definition, null_modem) -> None:
    link = SerialPacketLink(null_modem.paths[0])
    satellite = assemble(definition, seed=1, link=link, keys=KEYS)
    com = SerialCobsComIF(SerialCfg("cobs", null_modem.paths[1], 115200, 0.1))
    try:
        com.open()
        tcs = [signed(17, 1, 0), signed(17, 1, 1)]
        check(exchange(satellite, com, tcs, done(tcs)), tcs)
        assert satellite.flight.space_link.counters["tc_accepted"] == 2
        assert not link.deframer.rejected  # no frame it could not take
    finally:
        com.close()
        satellite.close()
