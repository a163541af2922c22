"""A client of a running ground server (ground.web), over its HTTP API: what the CLI
verbs use when given --server. Standard library only."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from hal.errors import SkyrackError


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

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self.satellite is not None:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(
                {"satellite": self.satellite})
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

    def satellites(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/satellites")["satellites"])

    def stream_url(self, client: str) -> str:
        """The WebSocket of this satellite's stream, for `client`."""
        query = {"client": client, **({"satellite": self.satellite} if self.satellite else {})}
        return self.url + "/api/stream?" + urllib.parse.urlencode(query)

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
