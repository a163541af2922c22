"""Typed errors for everything that crosses a wire or a board boundary.

Every error names the board, the operation and the reason, so one line of a log
says what went wrong where.
"""

from __future__ import annotations


class SkyrackError(Exception):
    """Root of the errors skyrack raises on purpose: every error a user can meet derives
    from it (several from ValueError or OSError too, as what they are), so the CLI
    reports them all in one line by catching this one."""


class InputError(SkyrackError, ValueError):
    """Something given to skyrack (a file, a URL, a setting) that it cannot use; the
    message names it and says why."""


class FrameError(SkyrackError):
    """A frame on a byte stream could not be decoded (garbage, truncated, bad CRC, oversize)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class ProtocolError(SkyrackError):
    """A frame decoded cleanly but its message does not follow the board protocol."""


class TransportError(SkyrackError):
    """The byte transport itself failed (port missing, closed, I/O error)."""


class BoardError(SkyrackError):
    """An operation on a board failed."""

    def __init__(self, board: str, op: str, reason: str) -> None:
        super().__init__(f"{board}: {op}: {reason}")
        self.board = board
        self.op = op
        self.reason = reason


class BoardTimeout(BoardError):
    """The board gave no valid reply in time (after any retries)."""


class BoardFault(BoardError):
    """The board answered and reported that the operation failed."""


class BoardReset(BoardError):
    """The board restarted while a non-idempotent request was in flight: the restarted
    board ran it, and it may have run before the reset too."""


class BoardMalformed(BoardError):
    """The board answered, in valid frames, with a result that does not decode: a
    board talking garbage is as unusable as a silent one."""


class BoardLinkError(BoardError):
    """The link to the board failed underneath the protocol (transport error)."""


class PacketError(SkyrackError):
    """A space packet that cannot be accepted: malformed, wrong CRC, not authenticated.
    `kind` is what it is counted under."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
