"""The ground server on HTTP and WebSocket (aiohttp: the `web` extra).

    GET  /api/openapi.json         this API, described (OpenAPI 3.1)
    GET  /api/dictionary           the satellite's dictionary
    GET  /api/telemetry            every point's latest value, time and limit state
    GET  /api/events?since=&severity=&name=   events received, oldest first
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
SERVER: web.AppKey[GroundServer] = web.AppKey("server", GroundServer)
SEVERITIES = [s.value for s in Severity]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _dictionary(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVER].dictionary.to_json())


async def _telemetry(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "points": request.app[SERVER].latest()})


async def _events(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    try:
        since = float(request.query.get("since", "-inf"))
    except ValueError:
        return _error(400, f"since={request.query['since']!r} is not a number of seconds")
    severity = request.query.get("severity")
    if severity is not None and severity not in SEVERITIES:
        return _error(400, f"severity={severity!r} is not one of {', '.join(SEVERITIES)}")
    name = request.query.get("name")
    floor = SEVERITIES.index(severity) if severity else 0
    events = [{"t_s": e.t_s, "name": e.name, "severity": e.severity, "args": e.args}
              for e in server.client.events
              if e.t_s >= since and (name is None or e.name == name)
              and SEVERITIES.index(e.severity) >= floor]
    return web.json_response({"ok": True, "events": events})


async def _history(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    name = request.query.get("point", "")
    spec = server.points.get(name)
    if spec is None:
        return _error(400, f"point={name!r} is not a telemetry point")
    try:
        since = float(request.query.get("since", "-inf"))
    except ValueError:
        return _error(400, f"since={request.query['since']!r} is not a number of seconds")
    server.archive.flush()
    try:
        samples = server.archive.query(name, since)
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
    archive = request.app[SERVER].archive
    q = request.query
    view = request.match_info["view"]
    spacecraft = int(q["spacecraft"]) if q.get("spacecraft", "").isdigit() else None
    try:
        if view == "query":
            body: Any = {"samples": archive.query(q.get("point", ""), _float(q, "since", -inf),
                                                  _float(q, "until", inf))}
        elif view == "history":
            body = {"commands": archive.history(int(_float(q, "last", 50)))}
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
    server = request.app[SERVER]
    return web.json_response({"ok": True, "commands": [c.to_json()
                                                       for c in server.commands.values()]})


async def _send(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("command"), str) \
            or not isinstance(body.get("args", {}), dict) \
            or not isinstance(body.get("sender"), str):
        return _error(400, 'expected {"sender": NAME, "command": NAME, "args": {...}}')
    try:
        command = server.send(body["sender"], body["command"], body.get("args", {}))
    except (SkyrackError, ValueError) as e:
        return _error(400, str(e))
    return web.json_response({"ok": True, **command.to_json()}, status=202)


async def _command(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    try:
        command = server.commands[int(request.match_info["id"])]
    except (KeyError, ValueError):
        return _error(404, f"no command {request.match_info['id']!r}")
    return web.json_response({"ok": True, **command.to_json()})


async def _status(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    return web.json_response({
        "ok": True, "tm": server.counts.tm, "commands": server.counts.commands,
        "refused": server.counts.refused, "by_sender": dict(server.counts.by_sender),
        "link_down": server.counts.link_down, "tm_lost": server.client.tm_lost,
        "archived": server.archive.ingested, "undecoded": server.archive.undecoded,
        "clients": sorted(s.client for s in server.streams),
        "undecodable": server.counts.undecodable,
        "dropped": {s.client: s.dropped for s in server.streams},
        "coalesced": {s.client: s.coalesced for s in server.streams},
        "link_rejected": dict(server.client.rejected)})


async def _stream(request: web.Request) -> web.WebSocketResponse:
    server = request.app[SERVER]
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
                           {"name": "name", "in": "query", "schema": {"type": "string"}}],
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


def make_app(server: GroundServer) -> web.Application:
    app = web.Application()
    app[SERVER] = server
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
    app.router.add_get("/api/stream", _stream)
    app.router.add_get("/", _console)
    app.router.add_static("/console/", CONSOLE)

    async def loop(app: web.Application) -> Any:
        async def run() -> None:
            down = False
            while True:
                try:
                    server.step()
                    down = False
                except ConnectionError as e:  # out of reach: the clients stay, it is retried
                    if not down:
                        logging.getLogger("skyrack.ground").warning("%s; retrying", e)
                    down = True
                    server.counts.link_down += 1
                    await asyncio.sleep(0.5)
                await asyncio.sleep(STEP_S)

        task = asyncio.create_task(run())
        yield
        task.cancel()
        server.close()

    app.cleanup_ctx.append(loop)
    return app

