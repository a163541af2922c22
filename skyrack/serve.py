"""`skyrack board serve`: emulated boards on serial lines, their world in real time.

The boards are the ones `skyrack sim` flies, on the same simulated physics, but the
world's clock follows the wall clock (times `speed`), so a flight computer on the
bench, or `skyrack flash`, talks to them as to boards that live in real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from boards.definition import DefinitionError, SatelliteDefinition, resolve
from sim.pty import PortBoard, PtyBoard
from skyrack.assembly import build_world

TICK_S = 0.05


class Stop(Protocol):
    """What `run` stops on: a threading.Event, or the CLI's SignalStop."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class BoardServer:
    """Serve `names` (every board when empty) of a sim definition, each on a new
    pseudo-terminal or on the port `ports[name]` names. Close it when done."""

    def __init__(self, definition: SatelliteDefinition, names: Sequence[str] = (), *,
                 seed: int = 1, ports: dict[str, str] | None = None,
                 speed: float = 1.0, nvm_dir: str | Path | None = None) -> None:
        """`nvm_dir` keeps each board's NVM (boot records, image slots, boot count) in a
        folder of its own there, across runs; without it, NVM lives in memory."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed:g}")
        ports = dict(ports or {})
        specs = [definition.named(n) for n in names] if names else list(definition.boards)
        unknown = set(ports) - {s.name for s in specs}
        if unknown:
            raise DefinitionError(definition.path, "boards",
                                  f"--on names {', '.join(sorted(unknown))}, which is not "
                                  "served")
        self.world = build_world(definition, seed=seed)
        self.world.nvm_dir = Path(nvm_dir) if nvm_dir is not None else None
        self.speed = speed
        self._lock = threading.Lock()  # the world is stepped by one thread at a time
        self.endpoints: dict[str, PtyBoard | PortBoard] = {}
        self.emulators: dict[str, object] = {}
        try:
            for spec in specs:
                if spec.emulator is None:
                    raise DefinitionError(definition.path, f"boards.{spec.name}",
                                          "is a real board, not emulated: nothing to serve")
                factory = resolve(spec.emulator, definition.path, f"boards.{spec.name}.emulator")
                emulator = factory(spec, self.world)
                self.emulators[spec.name] = emulator
                receive = self._locked(emulator.receive)
                self.endpoints[spec.name] = (
                    PortBoard(spec.name, receive, ports[spec.name], spec.baudrate)
                    if spec.name in ports else PtyBoard(spec.name, receive))
        except BaseException:
            self.close()
            raise

    def _locked(self, receive: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
        def locked(data: bytes) -> bytes:
            with self._lock:
                return receive(data)
        return locked

    @property
    def paths(self) -> dict[str, str]:
        return {name: endpoint.path for name, endpoint in self.endpoints.items()}

    def stats(self) -> dict[str, dict[str, int]]:
        """What each board's protocol server counted: served, duplicates, refused..."""
        with self._lock:
            return {name: dict(e.server.counters)  # type: ignore[attr-defined]
                    for name, e in self.emulators.items()}

    def run(self, seconds: float | None = None, stop: Stop | None = None) -> float:
        """Keep the world up with the wall clock until `seconds` have passed or `stop`
        is set. Returns the wall seconds served."""
        stop = stop or threading.Event()
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            if stop.is_set() or (seconds is not None and elapsed >= seconds):
                return elapsed
            with self._lock:
                self.world.clock.sleep_until(elapsed * self.speed)
            stop.wait(TICK_S)

    def close(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.close()
