"""A client of a running ground server (ground.web), over its HTTP API: what the CLI
verbs use when given --server, and RemoteGround, a console's client through it.
Standard library only."""

from __future__ import annotations

import collections
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ground.client import MAX_EVENTS, GroundEvent
from hal.dictionary import Dictionary
from hal.errors import SkyrackError

REFRESH_S = 0.1  # how often a RemoteGround asks the server for what is new


class ServerError(SkyrackError):
    """The server refused a request, or cannot be reached; the message says which."""


class RemoteArchive:
    """The archive a ground server writes, read through its API: the reading methods
    of ground.archive.Archive that the CLI's views use."""

    def __init__(self, server: ServerClient) -> None:
        self.server = server
        self.path = server.url

    def query(self, name: str, since_s: float, until_s: float) -> list[tuple[float, Any]]:
        return [tuple(s) for s in self.server.archive("query", point=name, since=since_s,
                                                       until=until_s)["samples"]]

    def history(self, limit: int) -> list[dict[str, Any]]:
        return list(self.server.archive("history", last=limit)["commands"])

    def events(self, since_utc: float, until_utc: float, *, spacecraft: int | None = None,
               severity: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        return list(self.server.archive("events", since=since_utc, until=until_utc,
                                        spacecraft=spacecraft, severity=severity,
                                        name=name)["events"])

    def timeline(self, since_utc: float, until_utc: float, *, spacecraft: int | None = None,
                 names: list[str] | None = None) -> dict[str, Any]:
        view = self.server.archive("timeline", since=since_utc, until=until_utc,
                                   spacecraft=spacecraft,
                                   point=["all"] if names is None else names)
        view.pop("ok", None)
        return view

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.server.archive("sessions")["sessions"])

    def close(self) -> None:
        pass


class ServerClient:
    def __init__(self, url: str, timeout_s: float = 10.0, satellite: str | None = None) -> None:
        """The server at `url`; of a mission's, satellite `satellite` (default: its
        first)."""
        if not url.startswith(("http://", "https://")):
            raise ServerError(f"server {url!r}: expected http://HOST:PORT")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.satellite = satellite

    def _of_satellite(self, path: str) -> str:
        """`path` for this client's satellite (none named: the server's first)."""
        if self.satellite is None:
            return path
        return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(
            {"satellite": self.satellite})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        path = self._of_satellite(path)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                reason = json.loads(e.read()).get("error", e.reason)
            except ValueError:
                reason = e.reason
            raise ServerError(f"{self.url}: {reason}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServerError(f"cannot reach the ground server at {self.url}: {reason}") \
                from None

    def dictionary(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/dictionary"))

    def telemetry(self) -> dict[str, Any]:
        """Every point's latest: {"t_s", "value", "limit"}, by name."""
        return dict(self._call("GET", "/api/telemetry")["points"])

    def status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/status"))

    def events(self, after: int | None = None) -> dict[str, Any]:
        """{"total": events received, "events": those numbered after `after`}."""
        return dict(self._call("GET", "/api/events" + (f"?after={after}" if after else "")))

    def satellites(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/satellites")["satellites"])

    def stream_url(self, client: str) -> str:
        """The WebSocket of this satellite's stream, for `client`."""
        return self.url + self._of_satellite("/api/stream?" + urllib.parse.urlencode(
            {"client": client}))

    def send(self, sender: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/api/commands",
                               {"sender": sender, "command": name, "args": args}))

    def command(self, command_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/commands/{command_id}"))

    def archive(self, view: str, **params: Any) -> dict[str, Any]:
        """One of the server's archive views (ground.web); None and infinite values
        are left out, lists repeat their key."""
        pairs = [(k, item) for k, v in params.items() if v is not None
                 for item in (v if isinstance(v, list) else [v])
                 if not (isinstance(item, float) and math.isinf(item))]
        return dict(self._call("GET", f"/api/archive/{view}?" + urllib.parse.urlencode(pairs)))

    def wait(self, command_id: int, timeout_s: float) -> dict[str, Any]:
        """The command once done, or as it stands after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            command = self.command(command_id)
            if command["done"] or time.monotonic() >= deadline:
                return command
            time.sleep(0.05)


@dataclass(frozen=True)
class Failure:
    """Why a command sent through a server failed (as ground.pus.Report names it)."""

    failure: str
    reason: str


class RemoteSent:
    """A command sent through a ground server, as a Sent: its stages as the server
    tracks them, refreshed by RemoteGround.poll."""

    def __init__(self, command: dict[str, Any]) -> None:
        self.id = command["id"]
        self.name = command["command"]
        self.args = command["args"]
        self.update(command)

    def update(self, command: dict[str, Any]) -> None:
        self.stages: list[str] = list(command["stages"])
        self.done: bool = command["done"]
        self.ok: bool = command["ok"]
        code, _, reason = (command["failure"] or "").partition(": ")
        self.failure = Failure(code, reason) if command["failure"] else None
        self.answers = [GroundEvent(a["t_s"], a["name"], "info", a["args"])
                        for a in command["answers"]]


class RemoteGround:
    """What an operator's console reads and commands of a GroundClient, through a
    ground server instead of a link of its own: the dictionary, the latest value of
    every point, the events received since it attached (each once, in order), and
    commands sent in the name of `sender` with their stages. For console.Console:
    scripts and the pytest plugin run through a server as they do on a link."""

    def __init__(self, server: ServerClient, sender: str, refresh_s: float = REFRESH_S) -> None:
        self.server = server
        self.sender = sender
        self.refresh_s = refresh_s
        self.dictionary = Dictionary.from_json(server.dictionary())
        self.values: dict[str, tuple[float, Any]] = {}
        self.events: collections.deque[GroundEvent] = collections.deque(maxlen=MAX_EVENTS)
        self.events_total = 0
        self._after = int(server.status()["events_total"])  # heard from now on
        self._open: list[RemoteSent] = []
        self._polled = -math.inf
        self.poll(force=True)

    def command(self, name: str, args: dict[str, Any] | None = None) -> RemoteSent:
        """Send through the server. Raises ServerError (nothing sent) for a command
        the server refuses."""
        sent = RemoteSent(self.server.send(self.sender, name, dict(args or {})))
        self._open.append(sent)
        return sent

    def poll(self, force: bool = False) -> list[Any]:
        """Bring values, events and the open commands' stages up to date (at most
        every `refresh_s`). No raw packets come this way: returns none."""
        now = time.monotonic()
        if not force and now - self._polled < self.refresh_s:
            return []
        self._polled = now
        points = self.server.telemetry()
        self.values.update({name: (p["t_s"], p["value"]) for name, p in points.items()})
        for e in self.server.events(after=self._after)["events"]:
            self.events.append(GroundEvent(e["t_s"], e["name"], e["severity"], e["args"]))
            self.events_total += 1
            self._after = e["n"]
        for sent in self._open:
            sent.update(self.server.command(sent.id))
        self._open = [s for s in self._open if not s.done]
        return []
