"""Packet links: how space packets travel between ground and flight.

A link carries whole packets: `send(packet)`, and `receive()`, which never blocks and
returns what has arrived. In process, a pair of queues; on TCP the packets delimit
themselves by their primary header's length field; on a serial line each is a COBS
frame.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
from typing import Protocol

from hal.errors import InputError
from hal.framing import Deframer, encode_frame
from hal.spacepacket import MAX_PACKET_BYTES, PRIMARY_BYTES, packet_length
from hal.transport import SerialTransport

MAX_QUEUED = 4096  # packets held for a peer that does not read; beyond it, oldest dropped
SEND_TIMEOUT_S = 2.0  # a peer that takes no bytes for this long is dropped
MAX_CONNECTIONS = 8  # grounds a flight link serves at once
MAX_QUEUED_BYTES = 1 << 20  # unsent telemetry held for one ground


class PacketLink(Protocol):
    def send(self, packet: bytes) -> None: ...

    def receive(self) -> list[bytes]:
        """Packets that arrived since the last call; never blocks."""
        ...

    def close(self) -> None: ...


class InProcessLink:
    """One end of an in-process link; `pair()` makes both ends."""

    def __init__(self) -> None:
        self.inbox: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)
        self.peer: InProcessLink | None = None
        self.dropped = 0
        self._lock = threading.Lock()

    @classmethod
    def pair(cls) -> tuple[InProcessLink, InProcessLink]:
        a, b = cls(), cls()
        a.peer, b.peer = b, a
        return a, b

    def send(self, packet: bytes) -> None:
        peer = self.peer
        if peer is None:
            raise ConnectionError("this link end has no peer")
        with peer._lock:
            if len(peer.inbox) == MAX_QUEUED:
                peer.dropped += 1  # the oldest, which the append pushes out
            peer.inbox.append(bytes(packet))

    def receive(self) -> list[bytes]:
        # Under the lock: a sender on another thread (a bench's flight loop and its
        # ground) neither slips a packet in between the copy and the clear, where it
        # would be lost, nor counts a drop that did not happen.
        with self._lock:
            out = list(self.inbox)
            self.inbox.clear()
        return out

    def close(self) -> None:
        self.peer = None


class PacketSplitter:
    """Cuts a byte stream into packets by their length fields.

    A stream that does not start with a plausible primary header (version 0, secondary
    header flag set) is resynchronised one byte at a time, and the skipped bytes are
    counted; the packet checks (CRC) then sort what was cut."""

    def __init__(self, max_packet_bytes: int = MAX_PACKET_BYTES) -> None:
        self._buffer = bytearray()
        self.max_packet_bytes = max_packet_bytes
        self.skipped_bytes = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out = []
        while len(self._buffer) >= PRIMARY_BYTES:
            first = self._buffer[0]
            if first >> 5 != 0 or not first & 0x08:  # version 0, secondary header flag
                del self._buffer[0]
                self.skipped_bytes += 1
                continue
            size = packet_length(bytes(self._buffer[:PRIMARY_BYTES]))
            if size > self.max_packet_bytes:
                del self._buffer[0]
                self.skipped_bytes += 1
                continue
            if len(self._buffer) < size:
                break
            out.append(bytes(self._buffer[:size]))
            del self._buffer[:size]
        return out


class _Connection:
    """One ground on a TcpServerLink: its socket, what it sent that is not yet a whole
    packet, and what waits to go to it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.splitter = PacketSplitter()
        self.outbox = bytearray()
        self.open = True
        self.dropped = 0  # telemetry packets this ground did not take in time


class TcpServerLink:
    """The flight end on TCP, heard by every ground connected at once, as a radio link
    by every station in view: telemetry goes to each, and packets from any come in (the
    uplink authenticates them). Nothing blocks the flight software: each ground's
    unsent telemetry is bounded by `max_queued_bytes`, and a packet that does not fit
    is dropped for that ground and counted, so a ground that never reads loses its own
    telemetry only. Up to `max_connections`: when all are taken, a new ground takes
    the place of the one that has lost the most telemetry by not reading (counted as
    evicted); if every one reads, the new one is refused at once and counted. So
    connections held open and never read cannot lock a real ground out."""

    def __init__(self, host: str, port: int, max_connections: int = MAX_CONNECTIONS,
                 max_queued_bytes: int = MAX_QUEUED_BYTES) -> None:
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.setblocking(False)
        self.address = self._listener.getsockname()[:2]
        self.max_connections = max_connections
        self.max_queued_bytes = max_queued_bytes
        self._connections: list[_Connection] = []
        self._held: list[bytes] = []  # read from a ground that has gone, not yet received
        self.counters: collections.Counter[str] = collections.Counter()

    @property
    def connected(self) -> int:
        return len(self._connections)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["accept_errors"] += 1
                return
            if len(self._connections) >= self.max_connections:
                stalled = max(self._connections, key=lambda c: c.dropped)
                if stalled.dropped == 0:
                    sock.close()
                    self.counters["refused"] += 1
                    continue
                self._close(stalled)
                self._prune()
                self.counters["evicted"] += 1
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connections.append(_Connection(sock))
            self.counters["connections"] += 1

    def _close(self, conn: _Connection) -> None:
        if conn.open:
            conn.open = False
            conn.sock.close()
            self.counters["disconnects"] += 1

    def _prune(self) -> None:
        self._connections = [c for c in self._connections if c.open]

    def _read(self, conn: _Connection) -> list[bytes]:
        """The whole packets that arrived from `conn` (closed if it hung up)."""
        chunks = []
        while conn.open:
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:  # the ground hung up
                self._close(conn)
                break
            chunks.append(data)
        packets = conn.splitter.feed(b"".join(chunks)) if chunks else []
        self.counters["skipped_bytes"] += conn.splitter.skipped_bytes
        conn.splitter.skipped_bytes = 0
        return packets

    def _flush(self, conn: _Connection) -> None:
        """Send what the socket takes now, never waiting."""
        while conn.outbox and conn.open:
            try:
                sent = conn.sock.send(conn.outbox)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._held += self._read(conn)  # a ground that hung up may have sent first
                self._close(conn)
                return
            del conn.outbox[:sent]

    def receive(self) -> list[bytes]:
        self._accept()
        packets, self._held = self._held, []
        for conn in self._connections:
            packets += self._read(conn)
            self._flush(conn)
        self._prune()
        return packets

    def send(self, packet: bytes) -> None:
        self._accept()
        if not self._connections:
            self.counters["dropped"] += 1
            return
        for conn in self._connections:
            if len(conn.outbox) + len(packet) > self.max_queued_bytes:
                self.counters["dropped"] += 1  # this ground does not keep up: its loss
                conn.dropped += 1
                self._flush(conn)
                continue
            conn.outbox += packet
            self._flush(conn)
        self._prune()
        self.counters["sent"] += 1

    def hang_up(self) -> None:
        """Close every ground's connection (each may connect again)."""
        for conn in self._connections:
            self._close(conn)
        self._connections = []

    def close(self) -> None:
        self.hang_up()
        self._listener.close()


class TcpClientLink:
    """The ground end on TCP: connects, and reconnects after a drop when next used."""

    def __init__(self, host: str, port: int, connect_timeout_s: float = 5.0) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self._sock: socket.socket | None = None
        self._splitter = PacketSplitter()
        self.reconnects = 0
        self._connect()

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port),
                                            timeout=self.connect_timeout_s)
        except OSError as e:
            raise ConnectionError(f"cannot reach tcp://{self.host}:{self.port}: "
                                  f"{e.strerror or e}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._splitter = PacketSplitter()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._connect()
            self.reconnects += 1
        assert self._sock is not None
        return self._sock

    def send(self, packet: bytes) -> None:
        sock = self._socket()
        try:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.sendall(packet)
        except OSError as e:
            self.close()
            raise ConnectionError(f"tcp://{self.host}:{self.port}: send failed: {e}") from None

    def receive(self, timeout_s: float = 0.0) -> list[bytes]:
        """What arrived, waiting up to `timeout_s` for the first bytes."""
        sock = self._socket()
        chunks = []
        ready, _, _ = select.select([sock], [], [], timeout_s)
        while ready:
            try:
                sock.settimeout(0.0)
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.close()  # the satellite hung up; the next call reconnects
                break
            chunks.append(data)
            ready, _, _ = select.select([sock], [], [], 0.0)
        return self._splitter.feed(b"".join(chunks)) if chunks else []

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def parse_url(url: str) -> tuple[str, str, int]:
    """`tcp://host:port` to ("tcp", host, port). Raises ValueError saying what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "tcp":
        raise InputError(f"link {url!r}: expected tcp://HOST:PORT or serial:PORT")
    host, colon, port_text = rest.rpartition(":")
    if not colon or not host:
        raise InputError(f"link {url!r}: expected tcp://HOST:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(f"link {url!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise InputError(f"link {url!r}: port {port} is outside 0..65535")
    return scheme, host.strip("[]"), port


class SerialPacketLink:
    """Either end on a serial line (a hal SerialTransport): one space packet a COBS frame,
    0x00 + COBS(packet) + 0x00, as tmtccmd's serial COBS interface frames them. The
    packet's own CRC protects it (the receiver checks it), and a receiver
    resynchronises at the next 0x00 after line noise. Undecodable frames are counted in
    `deframer.rejected`; a failing port raises TransportError."""

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        self.transport = SerialTransport(url, baudrate)
        self.deframer = Deframer(max_payload_bytes=MAX_PACKET_BYTES, crc=False)

    def send(self, packet: bytes) -> None:
        self.transport.write(encode_frame(packet, max_payload_bytes=MAX_PACKET_BYTES,
                                          crc=False))

    def receive(self) -> list[bytes]:
        data = self.transport.read(0.0)
        return self.deframer.feed(data) if data else []

    def close(self) -> None:
        self.transport.close()


def open_link(url: str, *, listen: bool) -> TcpServerLink | TcpClientLink | SerialPacketLink:
    """A link from its URL: `tcp://HOST:PORT` (the flight end listens, the ground
    connects) or `serial:PORT` (any pyserial URL: serial:/dev/ttyUSB0). Raises
    ValueError for a URL of neither kind; ConnectionError, OSError or TransportError
    when it cannot be opened."""
    if url.startswith("serial:"):
        return SerialPacketLink(url.removeprefix("serial:"))
    _, host, port = parse_url(url)
    return TcpServerLink(host, port) if listen else TcpClientLink(host, port)
