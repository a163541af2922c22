"""Boards that misbehave on purpose, and a minimal firmware to serve behind them.

`Misbehaving` wraps any board's `receive(rx) -> tx` and damages what the board sends
back, the first `times` replies or all of them.
"""

from __future__ import annotations

from typing import Any

from boards.firmware.server import OpError, ProtocolServer
from hal.boardops import Op


class ClockPlatform:
    serial_number = "TEST-0001"

    def __init__(self) -> None:
        self.t_s = 0.0
        self.reboots = 0

    def uptime_s(self) -> float:
        return self.t_s

    def reboot(self) -> None:
        self.reboots += 1
        self.t_s = 0.0


class EchoFirmware:
    kind = "test"
    ops = {"tlm": Op("tlm", reply=dict), "echo": Op("echo", dict, dict), "fail": Op("fail"),
           "crash": Op("crash"), "bump": Op("bump", reply=dict, idempotent=False)}

    def __init__(self) -> None:
        self.platform = ClockPlatform()
        self.bumps = 0

    def handlers(self) -> dict[str, Any]:
        return {"tlm": self.tlm, "echo": lambda a: a, "fail": self.fail, "crash": self.crash,
                "bump": self.bump}

    def tlm(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"value": 42}

    def fail(self, args: dict[str, Any]) -> None:
        raise OpError("refused on purpose")

    def crash(self, args: dict[str, Any]) -> None:
        raise RuntimeError("firmware bug")

    def bump(self, args: dict[str, Any]) -> dict[str, int]:
        self.bumps += 1
        return {"bumps": self.bumps}


def make_server(name: str = "testboard") -> ProtocolServer:
    return ProtocolServer(name, EchoFirmware())


class Misbehaving:
    """A board's UART with a fault: 'silent', 'garbage', 'flip', 'drop', 'stale', 'lose',
    'slow' (each reply comes only after the host gave up on it: with the next exchange),
    or 'reset' (the board ran the op, then restarted before its reply went out; needs
    the `server` to restart)."""

    MODES = ("silent", "garbage", "flip", "drop", "stale", "lose", "slow", "reset")

    def __init__(self, receive: Any, mode: str, times: int | None = None,
                 server: ProtocolServer | None = None) -> None:
        assert mode in self.MODES and (mode != "reset" or server is not None)
        self.server = server
        self.receive = receive
        self.mode = mode
        self.remaining = times
        self.calls = 0
        self._previous = b""
        self._late = b""  # 'slow': replies still on their way

    def __call__(self, rx: bytes) -> bytes:
        self.calls += 1
        if self.mode == "silent" and self._active():
            self._use()
            return b""
        tx = self.receive(rx)
        if self.mode == "slow":
            late, self._late = self._late, b""
            if tx and self._active():
                self._use()
                self._late = tx
                return late
            return late + tx
        if not tx or not self._active():
            self._previous = tx
            return tx
        self._use()
        if self.mode == "garbage":
            out = b"\x55\xaa\x13\x00\xfe\xfe\xfe" + tx
        elif self.mode == "flip":
            damaged = bytearray(tx)
            damaged[1] ^= 0x04 if damaged[1] != 0x04 else 0x08
            out = bytes(damaged)
        elif self.mode == "drop":
            out = tx[:2] + tx[5:]
        elif self.mode == "stale":
            out = self._previous + tx
        elif self.mode == "reset":
            assert self.server is not None
            self.server._reboot()  # a brownout or a watchdog, before the UART sent the reply
            out = b""
        else:  # lose: the board ran the op but its reply never arrived
            out = b""
        self._previous = tx
        return out

    def _active(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def _use(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


class Babbling:
    """A board that answers every request in valid frames, with the right seq, but with a
    result that does not decode: each list and map in it filled with text, each text
    replaced by a word no board says."""

    def __init__(self, receive: Any) -> None:
        self.receive = receive
        self.on = True

    def __call__(self, rx: bytes) -> bytes:
        from dataclasses import replace

        from hal.framing import Deframer, encode_frame
        from hal.protocol import decode_reply, encode_reply

        tx = self.receive(rx)
        if not self.on or not tx:
            return tx
        out = b""
        for payload in Deframer().feed(tx):
            reply = decode_reply(payload)
            if isinstance(reply.result, dict):
                reply = replace(reply, result={
                    k: (["?"] * 3 if isinstance(v, list) else {"x": "?"} if isinstance(v, dict)
                        else "warp" if isinstance(v, str) else v)
                    for k, v in reply.result.items()})
            out += encode_frame(encode_reply(reply))
        return out


def subtype_of(packet: Any) -> int:
    """A spacepackets PUS packet's subtype, whichever release names it (0.28:
    `subservice`, later: `message_subtype`)."""
    return int(getattr(packet, "message_subtype", None) or packet.subservice)
