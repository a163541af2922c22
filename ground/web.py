"""The ground server on HTTP and WebSocket (aiohttp: the `web` extra).

    GET  /api/openapi.json         this API, described (OpenAPI 3.1)
    GET  /api/dictionary           the satellite's dictionary
    GET  /api/telemetry            every point's latest value, time and limit state
    GET  /api/events?since=&severity=&name=&after=   events received, oldest first,
                                   each numbered (n; after=N: those after number N)
    GET  /api/history?point=&since=   a point's archived values (on-board time), oldest
                                   first, with its unit and limits
    GET  /api/archive/{view}       the archive the server writes, read through it: query
                                   (point, since, until: on-board s), history (last),
                                   events and timeline (since, until: UTC s; spacecraft,
                                   severity, name, point), sessions
    GET  /api/commands             commands sent through the server, with their stages
    POST /api/commands             {"sender", "command", "args"}: send one (202)
    GET  /api/commands/{id}        one command and the stages it has reached
    GET  /api/status               counts: packets, commands, clients, drops
    GET  /api/stream?client=NAME   WebSocket: each frame a JSON array of what waited for
                                   this client, oldest first: {"type": "hk" | "event" |
                                   "command", ...}
    GET  /                         the web console (ground/console_web: HTML, CSS and
                                   JavaScript as they are, nothing to build)

A refused request is 400 with {"ok": false, "error": "..."}; an unknown id 404.
The server's loop runs on the event loop every STEP_S; each WebSocket client has its
own bounded stream and its own sender task, so a slow one never holds the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from math import inf, isfinite
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from ground.server import GroundServer
from hal.dictionary import Severity
from hal.errors import SkyrackError

CONSOLE = Path(__file__).parent / "console_web"
STEP_S = 0.02
MAX_HISTORY = 20_000  # samples one history request returns (the latest)
STREAM_S = 0.05
SERVERS: web.AppKey[dict[str, GroundServer]] = web.AppKey("servers", dict)
SEVERITIES = [s.value for s in Severity]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def _server(request: web.Request, name: str | None = None) -> GroundServer:
    """The ground of the satellite a request names (`satellite=`; default: the
    mission's first)."""
    servers = request.app[SERVERS]
    name = name or request.query.get("satellite")
    if name is None:
        return next(iter(servers.values()))
    if name not in servers:
        raise web.HTTPNotFound(text=json.dumps({
            "ok": False, "error": f"no satellite {name!r} in this mission (it has "
                                  f"{', '.join(servers)})"}), content_type="application/json")
    return servers[name]


def _spacecraft(request: web.Request, server: GroundServer) -> int | None:
    """The spacecraft an archive view is of: `spacecraft=` (`all`: every one), else
    the satellite's when one is named, else every one."""
    text = request.query.get("spacecraft")
    if text is not None:
        return int(text) if text.isdigit() else None
    return server.spacecraft if "satellite" in request.query else None


async def _dictionary(request: web.Request) -> web.Response:
    return web.json_response(_server(request).dictionary.to_json())


async def _telemetry(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "points": _server(request).latest()})


async def _events(request: web.Request) -> web.Response:
    server = _server(request)
    try:
        since = float(request.query.get("since", "-inf"))
    except ValueError:
        return _error(400, f"since={request.query['since']!r} is not a number of seconds")
    severity = request.query.get("severity")
    if severity is not None and severity not in SEVERITIES:
        return _error(400, f"severity={severity!r} is not one of {', '.join(SEVERITIES)}")
    name = request.query.get("name")
    after = request.query.get("after", "0")
    if not after.isdigit():
        return _error(400, f"after={after!r} is not an event number")
    floor = SEVERITIES.index(severity) if severity else 0
    kept = list(server.client.events)
    total = server.client.events_total
    first = total - len(kept) + 1  # events are numbered from 1, the first ever received
    events = [{"n": first + i, "t_s": e.t_s, "name": e.name, "severity": e.severity,
               "args": e.args}
              for i, e in enumerate(kept)
              if first + i > int(after) and e.t_s >= since and (name is None or e.name == name)
              and SEVERITIES.index(e.severity) >= floor]
    return web.json_response({"ok": True, "total": total, "events": events})


async def _history(request: web.Request) -> web.Response:
    server = _server(request)
    name = request.query.get("point", "")
    spec = server.points.get(name)
    if spec is None:
        return _error(400, f"point={name!r} is not a telemetry point")
    try:
        since = float(request.query.get("since", "-inf"))
    except ValueError:
        return _error(400, f"since={request.query['since']!r} is not a number of seconds")
    try:
        samples = server.archive.query(name, since, spacecraft=server.spacecraft)
    except SkyrackError:
        samples = []  # not received yet
    return web.json_response({"ok": True, "point": name, "unit": spec.unit,
                              "yellow": spec.yellow, "red": spec.red,
                              "samples": samples[-MAX_HISTORY:]})


def _float(query: Any, key: str, default: float) -> float:
    try:
        return float(query.get(key, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f'{{"ok": false, "error": "{key} is not a number"}}',
                                 content_type="application/json") from None


async def _archive(request: web.Request) -> web.Response:
    """The archive's views (ground.archive), for the CLI verbs given --server."""
    server = _server(request)
    archive = server.archive
    q = request.query
    view = request.match_info["view"]
    spacecraft = _spacecraft(request, server)
    try:
        if view == "query":  # of one satellite: its own, unless another is asked for
            body: Any = {"samples": archive.query(
                q.get("point", ""), _float(q, "since", -inf), _float(q, "until", inf),
                spacecraft=spacecraft if "spacecraft" in q else server.spacecraft)}
        elif view == "history":
            body = {"commands": archive.history(int(_float(q, "last", 50)),
                                                spacecraft=spacecraft)}
        elif view == "events":
            body = {"events": archive.events(_float(q, "since", -inf), _float(q, "until", inf),
                                             spacecraft=spacecraft,
                                             severity=q.get("severity"), name=q.get("name"))}
        elif view == "timeline":
            points = q.getall("point", [])
            body = archive.timeline(_float(q, "since", -inf), _float(q, "until", inf),
                                    spacecraft=spacecraft,
                                    names=None if points == ["all"] else points)
            for key in ("since_utc", "until_utc"):  # JSON has no infinities
                body[key] = body[key] if isfinite(body[key]) else None
        elif view == "sessions":
            body = {"sessions": archive.sessions(spacecraft)}
        else:
            return _error(404, f"no archive view {view!r}")
    except (SkyrackError, ValueError) as e:
        return _error(400, str(e))
    return web.json_response({"ok": True, **body})


async def _commands(request: web.Request) -> web.Response:
    server = _server(request)
    return web.json_response({"ok": True, "commands": [c.to_json()
                                                       for c in server.commands.values()]})


async def _send(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("command"), str) \
            or not isinstance(body.get("args", {}), dict) \
            or not isinstance(body.get("sender"), str) \
            or not isinstance(body.get("satellite", ""), str):
        return _error(400, 'expected {"sender": NAME, "command": NAME, "args": {...}, '
                      '"satellite": NAME (default: the first)}')
    server = _server(request, body.get("satellite"))
    try:
        command = server.send(body["sender"], body["command"], body.get("args", {}))
    except (SkyrackError, ValueError) as e:
        return _error(400, str(e))
    return web.json_response({"ok": True, **command.to_json()}, status=202)


async def _command(request: web.Request) -> web.Response:
    text = request.match_info["id"]
    command = next((s.commands[int(text)] for s in request.app[SERVERS].values()
                    if text.isdigit() and int(text) in s.commands), None)
    if command is None:  # ids are the mission's: any satellite's
        return _error(404, f"no command {text!r}")
    return web.json_response({"ok": True, **command.to_json()})


async def _status(request: web.Request) -> web.Response:
    server = _server(request)
    return web.json_response({
        "ok": True, "tm": server.counts.tm, "commands": server.counts.commands,
        "refused": server.counts.refused, "by_sender": dict(server.counts.by_sender),
        "link_down": server.counts.link_down, "tm_lost": server.client.tm_lost,
        "events_total": server.client.events_total,
        "archived": server.archive.ingested, "undecoded": server.archive.undecoded,
        "clients": sorted(s.client for s in server.streams),
        "undecodable": server.counts.undecodable,
        "archive_errors": server.counts.archive_errors, "archive_error": server.archive_error,
        "dropped": {s.client: s.dropped for s in server.streams},
        "coalesced": {s.client: s.coalesced for s in server.streams},
        "link_rejected": dict(server.client.rejected)})


async def _satellites(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "satellites": [
        {"name": name, "spacecraft": s.spacecraft, "tm": s.counts.tm,
         "tm_lost": s.client.tm_lost, "commands": s.counts.commands,
         "link_down": s.counts.link_down}
        for name, s in request.app[SERVERS].items()]})


async def _stream(request: web.Request) -> web.WebSocketResponse:
    server = _server(request)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    stream = server.attach(request.query.get("client", request.remote or "?"))

    async def pump() -> None:
        while not ws.closed:
            texts = stream.take_json()
            if texts:  # what waited, in one frame
                await ws.send_str("[" + ",".join(texts) + "]")
            await asyncio.sleep(STREAM_S)

    sender = asyncio.create_task(pump())
    try:
        async for message in ws:  # nothing is expected from the client: read to see it go
            if message.type == WSMsgType.ERROR:
                break
    finally:
        sender.cancel()
        server.detach(stream)
    return ws


async def _console(request: web.Request) -> web.FileResponse:
    return web.FileResponse(CONSOLE / "index.html")


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = _json({"type": "object", "properties": {"ok": {"const": False},
                                               "error": {"type": "string"}}}, "refused")
COMMAND = {"type": "object", "properties": {
    "ok": {"type": "boolean"}, "id": {"type": "integer"}, "sender": {"type": "string"},
    "command": {"type": "string"}, "args": {"type": "object"}, "apid": {"type": "integer"},
    "seq_count": {"type": "integer"}, "t_sent_utc": {"type": "number"},
    "stages": {"type": "array", "items": {"enum": ["accepted", "accept_failed", "started",
                                                   "start_failed", "completed", "failed"]}},
    "done": {"type": "boolean"}, "failure": {"type": ["string", "null"]}}}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "skyrack ground server", "version": "1"},
    "paths": {
        "/api/dictionary": {"get": {"summary": "The satellite's dictionary",
                                    "responses": {"200": _json({"type": "object"}, "it")}}},
        "/api/telemetry": {"get": {"summary": "Every point's latest value",
                                   "responses": {"200": _json({"type": "object"}, "points")}}},
        "/api/events": {"get": {
            "summary": "Events received, oldest first",
            "parameters": [{"name": "since", "in": "query", "schema": {"type": "number"}},
                           {"name": "severity", "in": "query", "schema": {"enum": SEVERITIES}},
                           {"name": "name", "in": "query", "schema": {"type": "string"}},
                           {"name": "after", "in": "query", "schema": {"type": "integer"}}],
            "responses": {"200": _json({"type": "object"}, "events"), "400": ERROR}}},
        "/api/history": {"get": {
            "summary": "A point's archived values (on-board time), with unit and limits",
            "parameters": [{"name": "point", "in": "query", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "since", "in": "query", "schema": {"type": "number"}}],
            "responses": {"200": _json({"type": "object"}, "samples"), "400": ERROR}}},
        "/api/commands": {
            "get": {"summary": "Commands sent through the server",
                    "responses": {"200": _json({"type": "object"}, "commands")}},
            "post": {"summary": "Send a command",
                     "requestBody": _json({"type": "object", "required": ["sender", "command"],
                                           "properties": {"sender": {"type": "string"},
                                                          "command": {"type": "string"},
                                                          "args": {"type": "object"}}},
                                          "the command"),
                     "responses": {"202": _json(COMMAND, "sent"), "400": ERROR}}},
        "/api/commands/{id}": {"get": {
            "summary": "One command and its verification stages",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "responses": {"200": _json(COMMAND, "it"), "404": ERROR}}},
        "/api/satellites": {"get": {"summary": "The mission's satellites: name, spacecraft "
                                    "id, counts", "responses": {
            "200": _json({"type": "object"}, "satellites")}}},
        "/api/status": {"get": {"summary": "Counts", "responses": {
            "200": _json({"type": "object"}, "counts")}}},
        "/api/stream": {"get": {
            "summary": "WebSocket: telemetry, events and command updates as they come; "
                       "each frame a JSON array of the messages that waited, oldest first "
                       "(a client behind gets the latest housekeeping of each structure)",
            "parameters": [{"name": "client", "in": "query", "schema": {"type": "string"}}],
            "responses": {"101": {"description": "switching to WebSocket"}}}},
    },
}


# Every request but these is of one satellite of the mission: `satellite=NAME` (default:
# the first); an unknown one is 404.
for _path, _operations in OPENAPI["paths"].items():
    if _path not in ("/api/openapi.json", "/api/satellites", "/"):
        for _operation in _operations.values():
            _operation.setdefault("parameters", []).append(
                {"name": "satellite", "in": "query", "schema": {"type": "string"}})
            _operation["responses"].setdefault("404", ERROR)


def make_app(servers: GroundServer | dict[str, GroundServer]) -> web.Application:
    """The API over one satellite's ground server, or a mission's (by name; the first
    is the default satellite of every request)."""
    if isinstance(servers, GroundServer):
        servers = {servers.name or "satellite": servers}
    app = web.Application()
    app[SERVERS] = servers
    app.router.add_get("/api/openapi.json", _openapi)
    app.router.add_get("/api/dictionary", _dictionary)
    app.router.add_get("/api/telemetry", _telemetry)
    app.router.add_get("/api/events", _events)
    app.router.add_get("/api/history", _history)
    app.router.add_get("/api/archive/{view}", _archive)
    app.router.add_get("/api/commands", _commands)
    app.router.add_post("/api/commands", _send)
    app.router.add_get("/api/commands/{id}", _command)
    app.router.add_get("/api/status", _status)
    app.router.add_get("/api/satellites", _satellites)
    app.router.add_get("/api/stream", _stream)
    app.router.add_get("/", _console)
    app.router.add_static("/console/", CONSOLE)

    async def loop(app: web.Application) -> Any:
        async def run(server: GroundServer) -> None:
            down = False
            while True:
                try:
                    server.step()
                    down = False
                except ConnectionError as e:  # out of reach: the clients stay, it is retried
                    if not down:
                        logging.getLogger("skyrack.ground").warning(
                            "%s: %s; retrying", server.name or "link", e)
                    down = True
                    server.counts.link_down += 1
                    await asyncio.sleep(0.5)
                await asyncio.sleep(STEP_S)

        tasks = [asyncio.create_task(run(s)) for s in servers.values()]
        yield
        for task in tasks:
            task.cancel()
        for server in servers.values():
            server.close()

    app.cleanup_ctx.append(loop)
    return app

