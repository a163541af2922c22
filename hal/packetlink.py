"""Packet links: how space packets travel between ground and flight.

A link carries whole packets: `send(packet)`, and `receive()`, which never blocks and
returns what has arrived. In process, a pair of queues; on a byte stream (TCP) the
packets delimit themselves by their primary header's length field.
"""

from __future__ import annotations

import collections
from typing import Protocol

from hal.spacepacket import MAX_PACKET_BYTES, PRIMARY_BYTES, packet_length

MAX_QUEUED = 4096  # packets held for a peer that does not read; beyond it, oldest dropped


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

    @classmethod
    def pair(cls) -> tuple[InProcessLink, InProcessLink]:
        a, b = cls(), cls()
        a.peer, b.peer = b, a
        return a, b

    def send(self, packet: bytes) -> None:
        if self.peer is None:
            raise ConnectionError("this link end has no peer")
        if len(self.peer.inbox) == MAX_QUEUED:
            self.peer.dropped += 1
        self.peer.inbox.append(bytes(packet))

    def receive(self) -> list[bytes]:
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
