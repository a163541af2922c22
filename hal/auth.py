"""Telecommand authentication, SDLS-style (after CCSDS 355.0-B-2).

A signed TC carries, at the front of its application data, a security header of a
16-bit key id (the security parameter index) and a 32-bit anti-replay counter; and at
the end, before the packet's CRC, the first 16 octets of an HMAC-SHA-256 over the
spacecraft id (u16) and every octet of the packet before the MAC (primary and PUS
headers, security header, data).

    [primary 6][PUS TC 5][key id 2][counter 4][application data ...][MAC 16][CRC 2]

The spacecraft id is not in the packet (on a radio link it is in the transfer frame);
it is in the MAC, as SDLS security associations are per spacecraft, so that a TC
signed for one satellite verifies on no other, even under a shared key.

Key id 0 means "no security": such a TC is unsigned. The receiver keeps, per key, the
highest counter it accepted and which of the REORDER counters below it it accepted
too (a sliding window, as IPsec's anti-replay window, RFC 4303 3.4.3): TCs from
several ground processes of one station, which take their counters in one order and
may arrive in another, are all accepted once. A counter seen before, or older than
the window, is a replay; one more than `window` above the highest is out of window.
Keys are 32 random octets, held in a key file outside the repository:
JSON {"spacecraft": id, "active": id, "keys": {"id": "hex", ...}}. A key file names
the one spacecraft its keys are for; each satellite has its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import struct
from dataclasses import dataclass, field, replace

from hal.errors import InputError, PacketError
from hal.spacepacket import CRC_BYTES, Telecommand, encode_tc

SECURITY_HEADER = struct.Struct(">HI")
MAC_BYTES = 16
KEY_BYTES = 32
UNSIGNED = 0
MAX_COUNTER = 0xFFFFFFFF
DEFAULT_WINDOW = 1024
REORDER = 64  # counters below the highest that may still arrive (once each)
MAX_SPACECRAFT = 0x3FF  # CCSDS spacecraft ids are 10 bits (TC transfer frames)
DEFAULT_SPACECRAFT = 1
_SPACECRAFT = struct.Struct(">H")


def check_spacecraft(spacecraft: int) -> int:
    if type(spacecraft) is not int or not 0 <= spacecraft <= MAX_SPACECRAFT:
        raise InputError(f"spacecraft id {spacecraft!r} outside 0..{MAX_SPACECRAFT}")
    return spacecraft


def mac(key: bytes, spacecraft: int, covered: bytes) -> bytes:
    return hmac.new(key, _SPACECRAFT.pack(spacecraft) + covered,
                    hashlib.sha256).digest()[:MAC_BYTES]


def sign(tc: Telecommand, key_id: int, counter: int, key: bytes,
         spacecraft: int = DEFAULT_SPACECRAFT) -> bytes:
    """The packet of `tc`, signed for `spacecraft` with key `key_id` at anti-replay
    `counter`."""
    check_spacecraft(spacecraft)
    if not 1 <= key_id <= 0xFFFF:
        raise ValueError(f"key id {key_id} outside 1..65535 (0 means unsigned)")
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError(f"counter {counter} does not fit 32 bits")
    head = SECURITY_HEADER.pack(key_id, counter)
    draft = encode_tc(replace(tc, data=head + tc.data + bytes(MAC_BYTES)))
    tag = mac(key, spacecraft, draft[:-(MAC_BYTES + CRC_BYTES)])
    return encode_tc(replace(tc, data=head + tc.data + tag))


def mac_verifies(packet: bytes, key: bytes, spacecraft: int) -> bool:
    """Whether the MAC of signed TC `packet` is right for `key` and `spacecraft`."""
    tag = packet[-(MAC_BYTES + CRC_BYTES):-CRC_BYTES]
    return hmac.compare_digest(tag, mac(key, spacecraft, packet[:-(MAC_BYTES + CRC_BYTES)]))


def signed_key(tc: Telecommand, packet: bytes, keys: dict[int, bytes],
               spacecraft: int) -> int | None:
    """The id of the key of `keys` that signed `tc` for `spacecraft`, or None when it
    is unsigned or signed otherwise."""
    if len(tc.data) < SECURITY_HEADER.size + MAC_BYTES:
        return None
    key_id, _ = SECURITY_HEADER.unpack_from(tc.data)
    key = keys.get(key_id)
    return key_id if key is not None and mac_verifies(packet, key, spacecraft) else None


@dataclass(frozen=True, slots=True)
class Verified:
    tc: Telecommand  # with the security header and MAC taken off its data
    key_id: int
    counter: int


@dataclass
class KeyRing:
    """The receiving side, one spacecraft's: keys by id, and the last counter accepted
    under each."""

    keys: dict[int, bytes]
    window: int = DEFAULT_WINDOW
    spacecraft: int = DEFAULT_SPACECRAFT
    counters: dict[int, int] = field(default_factory=dict)
    retired: set[int] = field(default_factory=set)  # keys that may never sign again
    # Per key, bit i set: counter (highest - i) was accepted. A key with a counter and
    # no bitmap (a ring restored from counters alone) takes nothing below its highest.
    seen: dict[int, int] = field(default_factory=dict)

    def verify(self, tc: Telecommand, packet: bytes) -> Verified:
        """Check a decoded TC (and the packet it came in) and accept its counter.
        Raises PacketError of kind unsigned, unknown_key, tampered, replayed or
        out_of_window; nothing changes then."""
        if len(tc.data) < SECURITY_HEADER.size + MAC_BYTES:
            raise PacketError("unsigned", "no security header and MAC: the TC is unsigned")
        key_id, counter = SECURITY_HEADER.unpack_from(tc.data)
        if key_id == UNSIGNED:
            raise PacketError("unsigned", "key id 0: the TC is unsigned")
        key = self.keys.get(key_id)
        if key_id in self.retired:
            raise PacketError("unknown_key", f"key id {key_id} is retired")
        if key is None:
            raise PacketError("unknown_key", f"key id {key_id} is not on board")
        if not mac_verifies(packet, key, self.spacecraft):
            raise PacketError("tampered", f"the MAC does not verify under key {key_id} for "
                              f"spacecraft {self.spacecraft} (tampered, or signed for "
                              "another satellite)")
        last = self.counters.get(key_id, -1)
        seen = self.seen.get(key_id, (1 << REORDER) - 1)
        if counter <= last:
            below = last - counter
            if below >= REORDER or seen >> below & 1:
                why = "was accepted before" if below < REORDER else \
                    f"is older than the {REORDER} the window keeps"
                raise PacketError("replayed", f"counter {counter} under key {key_id} is not "
                                  f"above the last accepted, {last}, and {why}")
            self.seen[key_id] = seen | 1 << below
        elif counter > last + self.window:
            raise PacketError("out_of_window", f"counter {counter} under key {key_id} is more "
                              f"than {self.window} above the last accepted, {last}")
        else:
            shift = counter - last
            self.seen[key_id] = (seen << shift | 1) & ((1 << REORDER) - 1) \
                if shift < REORDER else 1
            self.counters[key_id] = counter
        inner = tc.data[SECURITY_HEADER.size:-MAC_BYTES]
        return Verified(replace(tc, data=inner), key_id, counter)


@dataclass
class KeyFile:
    active: int
    keys: dict[int, bytes]
    spacecraft: int = DEFAULT_SPACECRAFT

    def to_text(self) -> str:
        return json.dumps({"spacecraft": self.spacecraft, "active": self.active,
                           "keys": {str(k): v.hex() for k, v in sorted(self.keys.items())}},
                          indent=2) + "\n"

    @classmethod
    def generate(cls, count: int = 2, spacecraft: int = DEFAULT_SPACECRAFT) -> KeyFile:
        """Fresh random keys for `spacecraft`, ids 1..count; key 1 active."""
        return cls(1, {i: secrets.token_bytes(KEY_BYTES) for i in range(1, count + 1)},
                   check_spacecraft(spacecraft))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyFile:
        """The key file at `path`. Refused (InputError) when anyone but its owner may
        read or write it, as ssh refuses a private key: keys that others can read
        authenticate them too, and keys that others can write are theirs."""
        fd = os.open(path, os.O_RDONLY)
        with os.fdopen(fd) as f:
            mode = os.fstat(fd).st_mode & 0o777
            if mode & 0o077:
                raise InputError(f"{os.fspath(path)}: mode {mode:04o} lets other users read "
                                 f"or change the keys; chmod 600 it")
            return cls.parse(f.read(), os.fspath(path))

    def save_new(self, path: str | os.PathLike[str]) -> None:
        """Write a new key file, readable by its owner only; FileExistsError if there is
        one (a key file is never overwritten: counters and the satellite depend on it)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.to_text())
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def parse(cls, text: str, where: str) -> KeyFile:
        """Raises ValueError naming `where` and what is wrong (never a key's bytes)."""
        try:
            doc = json.loads(text)
            active = doc["active"]
            keys = {int(k): bytes.fromhex(v) for k, v in doc["keys"].items()}
            spacecraft = doc.get("spacecraft")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"{where}: not a key file ({type(e).__name__})") from None
        if spacecraft is None:
            raise InputError(f"{where}: names no spacecraft (keys are per satellite); make "
                             "one with `skyrack keys new FILE --spacecraft-id ID`")
        try:
            check_spacecraft(spacecraft)
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
        for key_id, key in keys.items():
            if not 1 <= key_id <= 0xFFFF:
                raise InputError(f"{where}: key id {key_id} outside 1..65535")
            if len(key) != KEY_BYTES:
                raise InputError(f"{where}: key {key_id} is {len(key)} octets, not {KEY_BYTES}")
        if active not in keys:
            raise InputError(f"{where}: the active key {active!r} is not in the file")
        return cls(active, keys, spacecraft)
