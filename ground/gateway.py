"""A signing gateway, so that standard ground systems (YAMCS, tmtccmd, COSMOS) can
command the satellite with their stock TC encoding.

Between the satellite's space link and any number of tools on a TCP listener: every
TM from the satellite goes to every tool unchanged (a second listener, for tools with
a separate TC link such as YAMCS's, takes TCs only); every TC from a tool is checked
as a PUS TC, given this station's source id (so the satellite addresses its reports
here and no other station takes them), signed with the key file's key and the next
anti-replay counter the station's series gives, and sent on. The tool's own sequence
count is kept, so the tool matches the service 1 reports to its command as it would
without the gateway. A TC that is already signed by a key of the file, for this
spacecraft, goes on untouched. Anything that is not a TC is counted and dropped.

The gateway is the station's security layer: it signs what reaches it, so its
listeners must be reachable by the station's own tools only (127.0.0.1, or a closed
network).
"""

from __future__ import annotations

import collections
from dataclasses import replace

from ground.client import Signer
from hal.auth import sign, signed_key
from hal.errors import InputError, PacketError
from hal.packetlink import PacketLink
from hal.spacepacket import decode_tc


class Gateway:
    def __init__(self, satellite: PacketLink, tools: PacketLink, signer: Signer,
                 keys: dict[int, bytes], source_id: int,
                 tc_only: PacketLink | None = None) -> None:
        self.satellite = satellite
        self.tools = tools
        self.tc_only = tc_only
        self.signer = signer
        self.keys = keys
        self.source_id = source_id
        self.counters: collections.Counter[str] = collections.Counter()

    def step(self) -> int:
        """Move what has arrived either way; returns how many packets moved."""
        moved = 0
        for packet in self.satellite.receive():
            self.tools.send(packet)
            self.counters["tm_forwarded"] += 1
            moved += 1
        incoming = self.tools.receive()
        if self.tc_only is not None:
            incoming += self.tc_only.receive()
        for packet in incoming:
            outgoing = self.uplink(packet)
            if outgoing is not None:
                self.satellite.send(outgoing)
                moved += 1
        return moved

    def uplink(self, packet: bytes) -> bytes | None:
        """The packet to send the satellite for `packet` from a tool, or None (counted)."""
        try:
            tc = decode_tc(packet)
        except PacketError as e:
            self.counters[f"refused_{e.kind}"] += 1
            return None
        if signed_key(tc, packet, self.keys, self.signer.spacecraft) is not None:
            self.counters["tc_passed"] += 1
            return packet
        try:
            signed = sign(replace(tc, source_id=self.source_id), self.signer.key_id,
                          self.signer.next_counter(), self.signer.key, self.signer.spacecraft)
        except (ValueError, InputError):  # too long to sign, or the key is exhausted
            self.counters["refused_unsignable"] += 1
            return None
        self.counters["tc_signed"] += 1
        return signed
