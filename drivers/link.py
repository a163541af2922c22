"""The host side of the board protocol: request, await the matching reply, retry.

Every op is retried a bounded number of times after a timeout or a garbled reply, with
the same sequence number: a board that already ran it answers the retry from its last
reply without running it again (boards.firmware.server), so a lost reply never makes a
non-idempotent op run twice. Replies with another sequence number (late answers to an
earlier call) and copies of a reply already taken are discarded and counted, and the
deframer resynchronises after any garbage.

A board that restarts forgets its last reply, so a retry that reaches it after a reset
runs the op afresh. Replies carry the board's boot count: when it changes between the
first try of a non-idempotent op and the reply, the link raises BoardReset rather than
pass off a result that may be the op's second run. Resets seen any other way are
counted.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import msgpack

from hal.errors import (
    BoardFault,
    BoardLinkError,
    BoardReset,
    BoardTimeout,
    ProtocolError,
    TransportError,
)
from hal.framing import Deframer, encode_frame, frame_buffer
from hal.protocol import SEQ_MODULO, Reply, Request, decode_reply, encode_request
from hal.transport import Transport


class BoardLink:
    def __init__(self, board: str, transport: Transport, *, timeout_s: float = 0.25,
                 retries: int = 2) -> None:
        if timeout_s <= 0:
            raise ValueError(f"{board}: timeout_s must be positive, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"{board}: retries must be >= 0, got {retries}")
        self.board = board
        self.transport = transport
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self.retries = retries
        self.deframer = Deframer()
        # Used under the lock, one exchange at a time.
        self._packer, self._frame = msgpack.Packer(), frame_buffer()
        self.counters: collections.Counter[str] = collections.Counter()
        self._seq = 0
        self.boot: int | None = None  # the board's boot count, as its last reply gave it

    def call(self, op: str, args: dict[str, Any] | None = None, *,
             idempotent: bool = True, retries: int | None = None) -> Any:
        """Run `op` on the board and return its result. `idempotent=False` marks an op
        whose retries rely on the board's duplicate suppression (all boards of this
        protocol have it); it is retried all the same. `retries` overrides the link's
        count for this call (0 for an op the board resets after, whose duplicate
        suppression the reset wipes).

        Raises:
            BoardFault: the board answered that the op failed (never retried).
            BoardTimeout: no valid reply after every allowed attempt.
            BoardLinkError: the transport failed.
        """
        with self._lock:  # one exchange at a time, whichever thread asks
            return self._call(op, args, idempotent, retries)

    def _call(self, op: str, args: dict[str, Any] | None, idempotent: bool,
              retries: int | None) -> Any:
        attempts = 1 + (self.retries if retries is None else retries)
        rejected_before = self.deframer.rejected_total
        bad_before = self.counters.get("bad_replies", 0)  # [] of a missing key: Python
        seq = self._next_seq()  # one number for every try: the board spots the repeats
        request = Request(seq, op, args or {})
        for attempt in range(attempts):
            if attempt:
                self.counters["retries"] += 1
            try:
                self.transport.write(encode_frame(encode_request(request, self._packer),
                                                  scratch=self._frame))
                self.counters["requests"] += 1
                reply = self._await(seq)
            except TransportError as e:
                self.counters["link_errors"] += 1
                raise BoardLinkError(self.board, op, str(e)) from e
            if reply is None:
                continue
            self._note_boot(reply.boot, op, mid_request=attempt > 0 and not idempotent)
            if not reply.ok:
                self.counters["faults"] += 1
                raise BoardFault(self.board, op, reply.error or "unspecified error")
            return reply.result
        self.counters["timeouts"] += 1
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        reason = self._silence_reason(rejected_before, bad_before)
        raise BoardTimeout(self.board, op,
                           f"no valid reply within {self.timeout_s:g} s after {tries}: {reason}")

    def _note_boot(self, boot: int | None, op: str, mid_request: bool) -> None:
        before, self.boot = self.boot, boot if boot is not None else self.boot
        if boot is None or before is None or boot == before:
            return
        self.counters["resets"] += 1
        if mid_request:
            raise BoardReset(self.board, op,
                             f"the board restarted during the request (boot {before} -> "
                             f"{boot}): the restarted board ran it, and it may have run "
                             "before the restart too")

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % SEQ_MODULO
        return self._seq

    def _await(self, seq: int) -> Reply | None:
        """The reply to `seq`, or None when none came in time."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            data = self.transport.read(remaining)
            if not data:
                return None
            found = None
            for payload in self.deframer.feed(data):  # all of them: none goes uncounted
                try:
                    reply = decode_reply(payload)
                except ProtocolError:
                    self.counters["bad_replies"] += 1
                    continue
                if reply.seq != seq or found is not None:  # late, or a duplicate
                    self.counters["stale_replies"] += 1
                    continue
                found = reply
            if found is not None:
                return found

    def _silence_reason(self, rejected_before: int, bad_before: int) -> str:
        rejected = self.deframer.rejected_total - rejected_before
        bad = self.counters["bad_replies"] - bad_before
        if rejected:
            return f"{rejected} frame(s) rejected, last: {self.deframer.last_error}"
        if bad:
            return f"{bad} reply(ies) not in the board protocol"
        return "board silent"

    def stats(self) -> dict[str, int]:
        """Counters for housekeeping: requests, retries, timeouts, faults, rejects."""
        out = {k: self.counters[k] for k in
               ("requests", "retries", "timeouts", "faults", "link_errors", "bad_replies",
                "stale_replies", "resets")}
        out["frames_rejected"] = self.deframer.rejected_total
        return out
