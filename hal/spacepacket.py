"""The space link's packets: CCSDS Space Packets (CCSDS 133.0-B-2) carrying PUS-C
telecommands and telemetry (ECSS-E-ST-70-41C), each closed by a CRC-16/CCITT-FALSE
packet error control field.

    primary header (6 bytes, big-endian)
      version 3 bits = 0 | type 1 (0 TM, 1 TC) | secondary header flag 1 = 1 | APID 11
      sequence flags 2 = 0b11 (unsegmented) | sequence count 14 (TC: packet name)
      data length 16 = octets in the data field - 1
    TC secondary header (5 bytes)
      PUS version 4 = 2 | ack flags 4 | service 8 | subtype 8 | source ID 16
    TM secondary header (13 bytes)
      PUS version 4 = 2 | time reference status 4 = 0 | service 8 | subtype 8 |
      message type counter 16 | destination ID 16 | time: CUC 4+2, implicit P-field
    user data, then CRC-16/CCITT-FALSE over everything before it (2 bytes)

CUC time counts seconds (4 octets) and 2^-16 s (2 octets) from the satellite's time
reference: on-board time, the flight software's clock. Packets are self-delimiting:
`packet_length` reads the total size from the first 6 bytes, which is how a TCP
stream is cut into packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from hal.crc import crc16_ccitt_false
from hal.errors import PacketError

TM, TC = 0, 1
PUS_VERSION = 2
PRIMARY_BYTES = 6
TC_SECONDARY_BYTES = 5
TM_SECONDARY_BYTES = 13
CRC_BYTES = 2
MAX_APID = 0x7FF
IDLE_APID = 0x7FF  # CCSDS: idle packets, never a source of ours
MAX_PACKET_BYTES = 65536 + PRIMARY_BYTES  # what the 16-bit length field can say
UNSEGMENTED = 0b11
SEQ_MODULO = 1 << 14
FINE_PER_S = 1 << 16
# The time code, as the dictionary states it for ground systems: CCSDS 301.0-B-4 CUC,
# 4 octets of seconds and 2 of 2^-16 s, since the satellite's own time reference (an
# agency-defined epoch), its P-field implicit (not on the wire). Were it explicit it
# would be this octet: no extension, time code 010 (agency epoch), 4 coarse, 2 fine.
TIME_CODE = {"code": "CUC", "coarse_octets": 4, "fine_octets": 2, "p_field": "implicit",
             "implicit_p_field": "0x2e", "epoch": "the satellite's time reference "
             "(on-board time)", "resolution_s": 1 / FINE_PER_S}

_PRIMARY = struct.Struct(">HHH")
_TC_SECONDARY = struct.Struct(">BBBH")
_TM_SECONDARY = struct.Struct(">BBBHHIH")
_TM_HEAD = struct.Struct(">HHH" + _TM_SECONDARY.format[1:])
_TM_MIN_BYTES = PRIMARY_BYTES + TM_SECONDARY_BYTES + CRC_BYTES
_TM_ID_BITS = 0x0800  # version 0, type TM, secondary header: the packet id's top 5 bits


@dataclass(frozen=True, slots=True)
class Telecommand:
    apid: int
    service: int
    subtype: int
    data: bytes = b""  # application data
    seq_count: int = 0
    source_id: int = 0
    ack_flags: int = 0b1001  # acceptance and completion reports wanted (bits 3 and 0)

    @property
    def request_id(self) -> tuple[int, int]:
        """(packet ID, packet sequence control): how service 1 names this TC."""
        return (_packet_id(TC, self.apid), (UNSEGMENTED << 14) | self.seq_count)


class Telemetry(NamedTuple):
    """A TM packet's fields (a named tuple: the ground makes one for each of up to
    10^5 packets a second, and a tuple is made in a third of a frozen dataclass's
    time)."""

    apid: int
    service: int
    subtype: int
    data: bytes = b""  # source data
    time_s: float = 0.0  # on-board time
    seq_count: int = 0
    msg_counter: int = 0
    destination_id: int = 0


def _packet_id(kind: int, apid: int) -> int:
    return (kind << 12) | (1 << 11) | apid


def _check(name: str, value: int, bits: int) -> None:
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{name} {value} does not fit {bits} bits")


def cuc(time_s: float) -> bytes:
    """On-board time as CUC: 4 octets of seconds, 2 of 2^-16 s (truncated)."""
    if not 0 <= time_s < 1 << 32:
        raise ValueError(f"time {time_s} s is outside the CUC 4+2 range")
    ticks = int(time_s * FINE_PER_S)
    return struct.pack(">IH", ticks >> 16, ticks & 0xFFFF)


def from_cuc(raw: bytes) -> float:
    coarse, fine = struct.unpack(">IH", raw)
    return coarse + fine / FINE_PER_S


def _primary(kind: int, apid: int, seq_count: int, data_field_bytes: int) -> bytes:
    _check("APID", apid, 11)
    _check("sequence count", seq_count, 14)
    if not 1 <= data_field_bytes <= 65536:
        raise ValueError(f"a data field of {data_field_bytes} octets does not fit a packet")
    return _PRIMARY.pack(_packet_id(kind, apid), (UNSEGMENTED << 14) | seq_count,
                         data_field_bytes - 1)


def _seal(body: bytes) -> bytes:
    return body + crc16_ccitt_false(body).to_bytes(2, "big")


def encode_tc(tc: Telecommand) -> bytes:
    _check("service", tc.service, 8)
    _check("subtype", tc.subtype, 8)
    _check("source ID", tc.source_id, 16)
    _check("ack flags", tc.ack_flags, 4)
    secondary = _TC_SECONDARY.pack((PUS_VERSION << 4) | tc.ack_flags, tc.service, tc.subtype,
                                   tc.source_id)
    size = len(secondary) + len(tc.data) + CRC_BYTES
    return _seal(_primary(TC, tc.apid, tc.seq_count, size) + secondary + tc.data)


def encode_tm(tm: Telemetry) -> bytes:
    _check("service", tm.service, 8)
    _check("subtype", tm.subtype, 8)
    _check("message counter", tm.msg_counter, 16)
    _check("destination ID", tm.destination_id, 16)
    secondary = (struct.pack(">BBBHH", PUS_VERSION << 4, tm.service, tm.subtype,
                             tm.msg_counter, tm.destination_id) + cuc(tm.time_s))
    size = len(secondary) + len(tm.data) + CRC_BYTES
    return _seal(_primary(TM, tm.apid, tm.seq_count, size) + secondary + tm.data)


def packet_length(head: bytes) -> int:
    """Total octets of the packet whose primary header starts `head` (≥ 6 bytes)."""
    if len(head) < PRIMARY_BYTES:
        raise PacketError("truncated", f"{len(head)} octets is too short for a primary "
                          f"header ({PRIMARY_BYTES})")
    _, _, length = _PRIMARY.unpack_from(head)
    return PRIMARY_BYTES + length + 1


def _open(packet: bytes, kind: int, secondary_bytes: int) -> tuple[int, int, bytes]:
    """Check the primary header and CRC; (APID, sequence count, data after the
    primary header without the CRC)."""
    name = "TC" if kind == TC else "TM"
    if len(packet) < PRIMARY_BYTES + secondary_bytes + CRC_BYTES:
        raise PacketError("truncated", f"{len(packet)} octets is too short for a PUS {name} "
                          f"({PRIMARY_BYTES + secondary_bytes + CRC_BYTES} at least)")
    packet_id, seq_control, length = _PRIMARY.unpack_from(packet)
    if packet_id >> 13 != 0:
        raise PacketError("header", f"packet version {packet_id >> 13}; CCSDS packets are 0")
    if (packet_id >> 12) & 1 != kind:
        raise PacketError("header", f"a {'TC' if kind == TM else 'TM'} where a {name} "
                          "was expected")
    if not (packet_id >> 11) & 1:
        raise PacketError("header", "no secondary header: not a PUS packet")
    if seq_control >> 14 != UNSEGMENTED:
        raise PacketError("header", f"sequence flags {seq_control >> 14:02b}: segmented "
                          "packets are not used on this link")
    if PRIMARY_BYTES + length + 1 != len(packet):
        raise PacketError("length", f"the header says {PRIMARY_BYTES + length + 1} octets; "
                          f"the packet has {len(packet)}")
    crc = int.from_bytes(packet[-CRC_BYTES:], "big")
    if crc16_ccitt_false(packet[:-CRC_BYTES]) != crc:
        raise PacketError("crc", "packet error control (CRC-16) does not match")
    return packet_id & MAX_APID, seq_control & (SEQ_MODULO - 1), packet[PRIMARY_BYTES:-CRC_BYTES]


def decode_tc(packet: bytes) -> Telecommand:
    """A TC, checked whole. Raises PacketError naming what is wrong."""
    apid, seq, body = _open(packet, TC, TC_SECONDARY_BYTES)
    flags, service, subtype, source = _TC_SECONDARY.unpack_from(body)
    if flags >> 4 != PUS_VERSION:
        raise PacketError("header", f"PUS version {flags >> 4}; this link speaks PUS-C (2)")
    return Telecommand(apid, service, subtype, bytes(body[TC_SECONDARY_BYTES:]), seq, source,
                       flags & 0xF)


def decode_tm_checked(packet: bytes) -> Telemetry:
    """A TM that decode_tm has already passed (another process of the ground handing
    it on), read without checking it again."""
    packet_id, seq_control, _, _, service, subtype, counter, destination, coarse, fine = \
        _TM_HEAD.unpack_from(packet)
    return Telemetry(packet_id & MAX_APID, service, subtype,
                     packet[PRIMARY_BYTES + TM_SECONDARY_BYTES:-CRC_BYTES],
                     coarse + fine / FINE_PER_S, seq_control & (SEQ_MODULO - 1), counter,
                     destination)


def decode_tm(packet: bytes) -> Telemetry:
    """A TM, checked whole. Raises PacketError naming what is wrong."""
    # A sound packet passes one combined test; any other goes the long way, which
    # says what is wrong (the ground takes in up to 10^5 packets a second).
    if len(packet) >= _TM_MIN_BYTES:
        packet_id, seq_control, length, flags, service, subtype, counter, destination, \
            coarse, fine = _TM_HEAD.unpack_from(packet)
        if packet_id & 0xF800 == _TM_ID_BITS and seq_control >> 14 == UNSEGMENTED \
                and length + PRIMARY_BYTES + 1 == len(packet) and flags >> 4 == PUS_VERSION \
                and crc16_ccitt_false(packet[:-CRC_BYTES]) == int.from_bytes(
                    packet[-CRC_BYTES:]):
            data = packet[PRIMARY_BYTES + TM_SECONDARY_BYTES:-CRC_BYTES]
            return Telemetry(packet_id & MAX_APID, service, subtype,
                             data if type(data) is bytes else bytes(data),
                             coarse + fine / FINE_PER_S, seq_control & (SEQ_MODULO - 1),
                             counter, destination)
    apid, seq, body = _open(packet, TM, TM_SECONDARY_BYTES)
    flags, service, subtype, counter, destination, coarse, fine = _TM_SECONDARY.unpack_from(body)
    if flags >> 4 != PUS_VERSION:
        raise PacketError("header", f"PUS version {flags >> 4}; this link speaks PUS-C (2)")
    return Telemetry(apid, service, subtype, bytes(body[TM_SECONDARY_BYTES:]),
                     coarse + fine / FINE_PER_S, seq, counter, destination)
