"""What every board driver shares: the link, and ops run by their declarations."""

from __future__ import annotations

from typing import Any, ClassVar

from drivers.link import BoardLink
from hal.boardops import BY_KIND, Op, WireError, ops_for
from hal.boards import BoardInfo
from hal.errors import BoardMalformed
from hal.transport import Transport


def run_op(link: BoardLink, spec: Op, request: Any = None, *,
           retries: int | None = None) -> Any:
    """Run `spec` as hal.boardops declares it: the request encoded from its dataclass,
    the reply decoded into its own. A reply that does not match the declaration is a
    BoardMalformed naming the board, the op and the field: a board talking garbage is
    as unusable as a silent one."""
    raw = link.call(spec.name, spec.encode_request(request), idempotent=spec.idempotent,
                    retries=retries)
    try:
        return spec.decode_reply(raw)
    except WireError as e:
        raise BoardMalformed(link.board, spec.name, f"reply does not decode: {e}") from None


class BoardDriver:
    kind: ClassVar[str]

    def __init__(self, name: str, transport: Transport, *, timeout_s: float = 0.25,
                 retries: int = 2) -> None:
        self.name = name
        self.link = BoardLink(name, transport, timeout_s=timeout_s, retries=retries)
        self.ops = ops_for(BY_KIND[self.kind])

    def call(self, op: str, request: Any = None) -> Any:
        """Op `op` of this board (run_op)."""
        return run_op(self.link, self.ops[op], request)

    def ping(self) -> float:
        return float(self.call("ping").uptime_s)

    def info(self) -> BoardInfo:
        return self.call("info")

    def reset(self) -> None:
        self.call("reset")
        self.link.deframer.reset()
