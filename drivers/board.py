"""What every board driver shares: the link and the ops every board answers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from drivers.link import BoardLink
from hal.boards import BoardInfo
from hal.errors import BoardError, BoardMalformed
from hal.transport import Transport

F = TypeVar("F", bound=Callable[..., Any])


def decodes(op: str) -> Callable[[F], F]:
    """Mark a driver method that turns a board's reply into typed values: any value in
    the reply that does not convert (a string where a list of numbers belongs, a list
    where a number does) is a BoardMalformed naming the board and `op`, never a bare
    ValueError or TypeError escaping into the flight software."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def decoded(self: BoardDriver, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except BoardError:
                raise
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
                raise BoardMalformed(self.name, op, f"reply does not decode: "
                                     f"{type(e).__name__}: {e}") from e
        return decoded  # type: ignore[return-value]
    return wrap


class BoardDriver:
    kind: ClassVar[str]

    def __init__(self, name: str, transport: Transport, *, timeout_s: float = 0.25,
                 retries: int = 2) -> None:
        self.name = name
        self.link = BoardLink(name, transport, timeout_s=timeout_s, retries=retries)

    @decodes("ping")
    def ping(self) -> float:
        return float(self._field(self.link.call("ping"), "ping", "uptime_s", (int, float)))

    @decodes("info")
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
            raise BoardMalformed(self.name, op, f"reply has no {key!r}: {result!r}")
        value = result[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int to isinstance; a board that sends true for a number is wrong.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise BoardMalformed(self.name, op,
                                 f"reply field {key!r} has the wrong type: {value!r}")
        return value

    def _items(self, result: Any, op: str, key: str, kind: type | tuple[type, ...]) -> list:
        """`result[key]`, a list whose every item is of `kind`, or BoardMalformed."""
        items = self._field(result, op, key, list)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # Exact types, as msgpack decodes them: a bool is not taken for a number.
        for item in items:
            if type(item) not in kinds:
                raise BoardMalformed(self.name, op, f"reply field {key!r} holds {item!r}, "
                                     f"not {' or '.join(k.__name__ for k in kinds)}")
        return items
