"""The ground server: one process per mission that owns the space link, the archive
(its only writer), the station's anti-replay counters and sequence counts, and the
verification of every command, with any number of clients attached.

Clients (operators' CLIs, scripts, the web console) send commands in their own name
and each is told of its own commands' reports; telemetry, events and command updates
stream to every client through a bounded queue of its own, so a client that does not
keep up loses its own oldest messages (counted) and never slows the server. This
module is the server's logic, free of any web framework; ground.web serves it over
HTTP and WebSocket.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ground.archive import Archive, ArchiveError
from ground.client import GroundClient, Sent, Signer
from ground.series import Series
from hal.auth import DEFAULT_SPACECRAFT
from hal.dictionary import Dictionary
from hal.errors import InputError, PacketError
from hal.packetlink import PacketLink
from hal.spacepacket import Telemetry

STREAM_LIMIT = 10_000  # messages held for one client that does not read
BEHIND = 100  # messages waiting beyond which a client's housekeeping is coalesced
MAX_COMMANDS = 10_000  # commands kept in memory (all are in the archive)
RENDERED = 4096  # housekeeping messages kept rendered for the next client to take them

Message = dict[str, Any]
Encoded = tuple[Message, str]  # a message, and its JSON: encoded once for every client


class Stream:
    """What one client has yet to read, oldest first.

    Housekeeping is held as it came and rendered (`render`: decoded, limits, JSON)
    only when taken, so a client that does not read costs the server nothing but a
    reference. While the client is behind (more than `behind` messages waiting) its
    housekeeping is held as the latest packet of each structure, the older ones counted
    as `coalesced`: its live values stay current, and the archive has every packet.
    Events and command updates are never coalesced; beyond `limit` the oldest message
    goes, counted as `dropped`."""

    def __init__(self, client: str, render: Callable[[Telemetry], Encoded | None],
                 limit: int = STREAM_LIMIT, behind: int = BEHIND) -> None:
        self.client = client
        self.render = render
        self.behind = min(behind, limit // 2)
        self.messages: collections.deque[Encoded | Telemetry] = collections.deque(maxlen=limit)
        self._latest: dict[int, Telemetry] = {}  # while behind: each structure's latest
        self.dropped = 0
        self.coalesced = 0

    def put(self, message: Encoded | Telemetry) -> None:
        if len(self.messages) == self.messages.maxlen:
            self.dropped += 1
        self.messages.append(message)

    def put_all(self, items: list[tuple[int | None, Telemetry | Encoded]]) -> None:
        """Messages and housekeeping, oldest first: (structure id, its packet) or
        (None, a message)."""
        latest = self._latest
        for sid, item in items:
            if sid is None or (not latest and len(self.messages) < self.behind):
                self.put(item)
                continue
            if sid in latest:
                self.coalesced += 1
            latest[sid] = item  # type: ignore[assignment]

    def _take(self) -> list[Encoded]:
        held = [*self.messages, *self._latest.values()]
        self.messages.clear()
        self._latest.clear()
        out = []
        for item in held:
            encoded = self.render(item) if isinstance(item, Telemetry) else item
            if encoded is not None:
                out.append(encoded)
        return out

    def take(self) -> list[Message]:
        """Every message waiting, oldest first."""
        return [message for message, _ in self._take()]

    def take_json(self) -> list[str]:
        """The same, as JSON texts."""
        return [text for _, text in self._take()]


@dataclass
class Command:
    """A command a client sent through the server, and what became of it."""

    id: int
    sender: str
    sent: Sent
    wall_s: float
    stages_told: int = 0  # how many of its reports went out to the streams
    archived: bool = False
    satellite: str = ""

    def to_json(self) -> dict[str, Any]:
        failure = self.sent.failure
        return {"id": self.id, "satellite": self.satellite, "sender": self.sender,
                "command": self.sent.name,
                "args": self.sent.args, "apid": self.sent.apid, "seq_count": self.sent.seq_count,
                "t_sent_utc": self.wall_s, "stages": self.sent.stages, "done": self.sent.done,
                "ok": self.sent.ok,
                "answers": [{"name": e.name, "t_s": e.t_s, "args": e.args}
                            for e in self.sent.answers],
                "failure": f"{failure.failure}: {failure.reason}" if failure else None}


@dataclass
class Counts:
    tm: int = 0
    commands: int = 0
    refused: int = 0
    link_down: int = 0
    undecodable: int = 0  # housekeeping whose values did not decode when streamed
    archive_errors: int = 0  # archive writes that failed (the last: archive_error)
    by_sender: collections.Counter[str] = field(default_factory=collections.Counter)


class GroundServer:
    def __init__(self, link: PacketLink, dictionary: Dictionary, signer: Signer | None,
                 archive: str, *, source_id: int = 1, sequence: Series | None = None,
                 wall: Callable[[], float] = time.time, name: str = "",
                 spacecraft: int | None = None, ids: Iterator[int] | None = None) -> None:
        """The ground of one satellite, `name` in its mission, spacecraft `spacecraft`
        (default: the one its keys are for). The servers of one mission share their
        command ids (`ids`) and their archive file."""
        self.dictionary = dictionary
        self.wall = wall
        self.name = name
        if spacecraft is None:
            spacecraft = signer.spacecraft if signer else DEFAULT_SPACECRAFT
        self.spacecraft = spacecraft
        self.client = GroundClient(link, dictionary, signer, clock=wall, source_id=source_id,
                                   sequence=sequence)
        self.archive = Archive(archive, self.client, spacecraft=spacecraft, wall=wall,
                               writer_process=True)
        self.client.on_batch.append(self._on_batch)
        self.points = {p.name: p for p in dictionary.telemetry}
        self.commands: dict[int, Command] = {}  # the last MAX_COMMANDS, by id
        self._open: list[Command] = []  # not yet archived
        self.streams: set[Stream] = set()
        self.counts = Counts()
        self._ids = ids or itertools.count(1)
        self._rendered: dict[int, tuple[Telemetry, Encoded]] = {}
        self.closed = False
        self.archive_error: str | None = None

    # -- clients -------------------------------------------------------------------

    def attach(self, client: str, limit: int = STREAM_LIMIT, behind: int = BEHIND) -> Stream:
        stream = Stream(client, self._render_hk, limit, behind)
        self.streams.add(stream)
        return stream

    def detach(self, stream: Stream) -> None:
        self.streams.discard(stream)

    def send(self, sender: str, name: str, args: dict[str, Any] | None = None) -> Command:
        """Send a dictionary command for `sender`. Raises ArgumentError (nothing sent)
        for a command or arguments the dictionary refuses."""
        if not sender:
            raise InputError("a command needs the name of its sender")
        try:
            sent = self.client.command(name, args)
        except (ValueError, InputError):
            self.counts.refused += 1
            raise
        command = Command(next(self._ids), sender, sent, self.wall(), satellite=self.name)
        self.commands[command.id] = command
        self._open.append(command)
        self.counts.commands += 1
        self.counts.by_sender[sender] += 1
        self._publish({"type": "command", **command.to_json()})
        return command

    # -- the loop ----------------------------------------------------------------

    def step(self) -> int:
        """Take in what the link brought, archive it, tell every client; returns how
        many packets came."""
        packets = len(self.client.poll())
        for command in self._open:
            if len(command.sent.reports) > command.stages_told:
                command.stages_told = len(command.sent.reports)
                self._publish({"type": "command", **command.to_json()})
            if command.sent.done and not command.archived:
                self._archiving(self.archive.record_command, command.sent, command.wall_s,
                                command.sender)
                command.archived = True
        self._open = [c for c in self._open if not c.archived]
        while len(self.commands) > MAX_COMMANDS:  # the oldest done go: the archive has them
            oldest = next(iter(self.commands))
            if not self.commands[oldest].archived:
                break
            del self.commands[oldest]
        self._archiving(self.archive.flush_due)
        return packets

    def latest(self) -> dict[str, dict[str, Any]]:
        """Every point's latest value: on-board time, value, limit state."""
        return {name: {"t_s": t_s, "value": value,
                       "limit": self.points[name].limit_state(value)
                       if name in self.points else "ok"}
                for name, (t_s, value) in self.client.values.items()}

    def close(self) -> None:
        """Archive what is left and let go of the link (once; again, nothing)."""
        if self.closed:
            return
        self.closed = True
        try:
            for command in self.commands.values():
                if not command.archived:
                    self._archiving(self.archive.record_command, command.sent,
                                    command.wall_s, command.sender)
                    command.archived = True
            self._archiving(self.archive.close)  # an archive that failed is counted
        finally:
            self.client.link.close()

    def _archiving(self, write: Callable[..., None], *args: Any) -> None:
        """An archive write; a failure (a full disk, a writer gone) is counted and
        logged, and the server goes on serving: the link, the streams and commanding
        do not wait on the archive."""
        try:
            write(*args)
        except ArchiveError as e:
            if not self.counts.archive_errors:
                logging.getLogger("skyrack.ground").error("%s: archive: %s",
                                                          self.name or "ground", e)
            self.counts.archive_errors += 1
            self.archive_error = str(e)

    def _on_batch(self, received: list[tuple[Telemetry, bytes]]) -> None:
        self._archiving(self.archive.ingest_many, received)
        self.counts.tm += len(received)
        if not self.streams:
            return
        items: list[tuple[int | None, Telemetry | Encoded]] = []  # in the order they came
        for tm, _ in received:
            if tm.service == 3 and tm.subtype == 25:
                items.append((int.from_bytes(tm.data[:2]), tm))
            elif tm.service == 5:
                event = self.client.event_of(tm)
                items.append((None, self._encode({
                    "type": "event", "t_s": event.t_s, "name": event.name,
                    "severity": event.severity, "args": event.args})))
        for stream in self.streams:
            stream.put_all(items)

    def _render_hk(self, tm: Telemetry) -> Encoded | None:
        """A housekeeping packet as the streams carry it (None: its values do not
        decode, counted); rendered once for all the clients that take it."""
        cached = self._rendered.get(id(tm))
        if cached is not None and cached[0] is tm:
            return cached[1]
        try:
            values = self.client.decode_hk(tm.data)
        except PacketError:
            self.counts.undecodable += 1
            return None
        encoded = self._encode({"type": "hk", "t_s": tm.time_s, "values": values,
                                "limits": {k: self.points[k].limit_state(v)
                                           for k, v in values.items() if k in self.points}})
        if len(self._rendered) >= RENDERED:
            self._rendered.clear()
        self._rendered[id(tm)] = (tm, encoded)
        return encoded

    def _encode(self, message: Message) -> Encoded:
        message["satellite"] = self.name
        return message, json.dumps(message, default=str)

    def _publish(self, message: Message) -> None:
        encoded = self._encode(message)
        for stream in self.streams:
            stream.put(encoded)
