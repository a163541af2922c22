"""PUS service conventions of this space link, shared by flight and ground: the
application process id, verification failure codes, event severities, and the
layouts of each service's data.

    [1,x]   packet ID u16, packet sequence control u16; failures [1,2] [1,4] [1,8] add
            code u16 and reason (u16 length + UTF-8)
    [3,5] [3,6] [3,27]  N u16, N x SID u16
    [3,31]  N u16, N x (SID u16, collection interval in ms u32)
    [3,25]  SID u16, then the structure's values (hal.layout)
    [5,x]   event ID u16, then the event's declared arguments (hal.layout)
    [8,1]   function ID u16, then the command's arguments (hal.layout)
    [11,4]  N u16, N x (release time CUC 4+2, TC packet)
    [11,5]  N u16, N x (APID u16, sequence count u16)
    [11,13] N u16, N x (release time CUC 4+2, APID u16, sequence count u16, function ID u16)
    [17,1] -> [17,2]  no data
    [20,1]  N u16, N x parameter ID u16
    [20,2] [20,3]  N u16, N x (parameter ID u16, value)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hal.dictionary import Severity
from hal.errors import PacketError

APID = 0x010  # the flight software's application process
# TM destination ids: a report or a reply goes to the source id of the TC that asked
# (each ground station has its own); what every ground may use goes to BROADCAST.
BROADCAST = 0

FAILURES = {
    "unsigned": 1, "unknown_key": 2, "tampered": 3, "replayed": 4, "out_of_window": 5,
    "apid": 10, "unknown_service": 11, "unknown_function": 12, "layout": 13,
    "bad_arguments": 14, "schedule_full": 15, "failed": 20,
}
FAILURE_NAMES = {code: name for name, code in FAILURES.items()}
EVENT_SUBTYPE = {Severity.DEBUG: 1, Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3,
                 Severity.CRITICAL: 4}
ACK_ACCEPT, ACK_START, ACK_PROGRESS, ACK_COMPLETE = 0b1000, 0b0100, 0b0010, 0b0001
ACK_ALL = ACK_ACCEPT | ACK_START | ACK_COMPLETE
VERIFICATION_STAGES = {1: "accepted", 2: "accept_failed", 3: "started", 4: "start_failed",
                       7: "completed", 8: "failed"}

N = struct.Struct(">H")
REQUEST = struct.Struct(">HH")


def reason(text: str) -> bytes:
    raw = text.encode()[:1024]
    return N.pack(len(raw)) + raw


@dataclass(frozen=True, slots=True)
class Report:
    """A service 1 verification report."""

    stage: str
    apid: int
    seq_count: int
    code: int = 0
    reason: str = ""

    @property
    def failure(self) -> str:
        return FAILURE_NAMES.get(self.code, f"code {self.code}")


def verification(subtype: int, packet_id: int, seq_control: int, code: int = 0,
                 why: str = "") -> bytes:
    data = REQUEST.pack(packet_id, seq_control)
    if subtype in (2, 4, 8):
        data += N.pack(code) + reason(why)
    return data


def parse_verification(subtype: int, data: bytes) -> Report:
    stage = VERIFICATION_STAGES.get(subtype)
    if stage is None or len(data) < REQUEST.size:
        raise PacketError("layout", f"TM[1,{subtype}] of {len(data)} octets is not a "
                          "verification report")
    packet_id, seq_control = REQUEST.unpack_from(data)
    if subtype not in (2, 4, 8):
        return Report(stage, packet_id & 0x7FF, seq_control & 0x3FFF)
    if len(data) < REQUEST.size + 4:
        raise PacketError("layout", f"TM[1,{subtype}] has no failure code and reason")
    code, length = struct.unpack_from(">HH", data, REQUEST.size)
    text = data[REQUEST.size + 4:REQUEST.size + 4 + length].decode(errors="replace")
    return Report(stage, packet_id & 0x7FF, seq_control & 0x3FFF, code, text)
