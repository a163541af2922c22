"""CRC-16/CCITT-FALSE, the check on board-protocol frames and space packets.

poly 0x1021, init 0xFFFF, no reflection, no final xor; check("123456789") = 0x29B1.
"""

from __future__ import annotations

import crcmod.predefined

crc16_ccitt_false = crcmod.predefined.mkPredefinedCrcFun("crc-ccitt-false")
