"""Telecommand authentication, SDLS-style (after CCSDS 355.0-B-2).

A signed TC carries, at the front of its application data, a security header of a
16-bit key id (the security parameter index) and a 32-bit anti-replay counter; and at
the end, before the packet's CRC, the first 16 octets of an HMAC-SHA-256 over every
octet of the packet before the MAC (primary and PUS headers, security header, data).

    [primary 6][PUS TC 5][key id 2][counter 4][application data ...][MAC 16][CRC 2]

Key id 0 means "no security": such a TC is unsigned. The receiver keeps, per key, the
highest counter it accepted; a counter at or below it is a replay, and one more than
`window` above it is out of window. Keys are 32 random octets, held in a key file
outside the repository: JSON {"active": id, "keys": {"id": "hex", ...}}.
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


def mac(key: bytes, covered: bytes) -> bytes:
    return hmac.new(key, covered, hashlib.sha256).digest()[:MAC_BYTES]


def sign(tc: Telecommand, key_id: int, counter: int, key: bytes) -> bytes:
    """The packet of `tc`, signed with key `key_id` at anti-replay `counter`."""
    if not 1 <= key_id <= 0xFFFF:
        raise ValueError(f"key id {key_id} outside 1..65535 (0 means unsigned)")
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError(f"counter {counter} does not fit 32 bits")
    head = SECURITY_HEADER.pack(key_id, counter)
    draft = encode_tc(replace(tc, data=head + tc.data + bytes(MAC_BYTES)))
    tag = mac(key, draft[:-(MAC_BYTES + CRC_BYTES)])
    return encode_tc(replace(tc, data=head + tc.data + tag))


@dataclass(frozen=True, slots=True)
class Verified:
    tc: Telecommand  # with the security header and MAC taken off its data
    key_id: int
    counter: int


@dataclass
class KeyRing:
    """The receiving side: keys by id, and the last counter accepted under each."""

    keys: dict[int, bytes]
    window: int = DEFAULT_WINDOW
    counters: dict[int, int] = field(default_factory=dict)
    retired: set[int] = field(default_factory=set)  # keys that may never sign again

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
        tag = packet[-(MAC_BYTES + CRC_BYTES):-CRC_BYTES]
        if not hmac.compare_digest(tag, mac(key, packet[:-(MAC_BYTES + CRC_BYTES)])):
            raise PacketError("tampered", f"the MAC does not verify under key {key_id}")
        last = self.counters.get(key_id, -1)
        if counter <= last:
            raise PacketError("replayed", f"counter {counter} under key {key_id} is not above "
                              f"the last accepted, {last}")
        if counter > last + self.window:
            raise PacketError("out_of_window", f"counter {counter} under key {key_id} is more "
                              f"than {self.window} above the last accepted, {last}")
        self.counters[key_id] = counter
        inner = tc.data[SECURITY_HEADER.size:-MAC_BYTES]
        return Verified(replace(tc, data=inner), key_id, counter)


@dataclass
class KeyFile:
    active: int
    keys: dict[int, bytes]

    def to_text(self) -> str:
        return json.dumps({"active": self.active,
                           "keys": {str(k): v.hex() for k, v in sorted(self.keys.items())}},
                          indent=2) + "\n"

    @classmethod
    def generate(cls, count: int = 2) -> KeyFile:
        """Fresh random keys, ids 1..count; key 1 active."""
        return cls(1, {i: secrets.token_bytes(KEY_BYTES) for i in range(1, count + 1)})

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
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"{where}: not a key file ({type(e).__name__})") from None
        for key_id, key in keys.items():
            if not 1 <= key_id <= 0xFFFF:
                raise InputError(f"{where}: key id {key_id} outside 1..65535")
            if len(key) != KEY_BYTES:
                raise InputError(f"{where}: key {key_id} is {len(key)} octets, not {KEY_BYTES}")
        if active not in keys:
            raise InputError(f"{where}: the active key {active!r} is not in the file")
        return cls(active, keys)
