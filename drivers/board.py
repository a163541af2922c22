"""What every board driver shares: the link and the ops every board answers."""

from __future__ import annotations

from typing import Any, ClassVar

from drivers.link import BoardLink
from hal.boards import BoardInfo
from hal.errors import BoardError
from hal.transport import Transport


class BoardDriver:
    kind: ClassVar[str]

    def __init__(self, name: str, transport: Transport, *, timeout_s: float = 0.25,
                 retries: int = 2) -> None:
        self.name = name
        self.link = BoardLink(name, transport, timeout_s=timeout_s, retries=retries)

    def ping(self) -> float:
        return float(self._field(self.link.call("ping"), "ping", "uptime_s", (int, float)))

    def info(self) -> BoardInfo:
        r = self.link.call("info")
        return BoardInfo(
            name=self._field(r, "info", "name", str),
            kind=self._field(r, "info", "kind", str),
            firmware_version=self._field(r, "info", "firmware_version", str),
            serial_number=self._field(r, "info", "serial_number", str),
        )

    def reset(self) -> None:
        self.link.call("reset", idempotent=False)
        self.link.deframer.reset()

    def _field(self, result: Any, op: str, key: str, kind: type | tuple[type, ...]) -> Any:
        """`result[key]`, checked, or a BoardError that says what the board got wrong."""
        if not isinstance(result, dict) or key not in result:
            raise BoardError(self.name, op, f"reply has no {key!r}: {result!r}")
        value = result[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to isinstance; a board that sends true for a number is wrong.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise BoardError(self.name, op, f"reply field {key!r} has the wrong type: {value!r}")
        return value
