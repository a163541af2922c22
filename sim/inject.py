"""Faults on demand in the simulated satellite, one call each, as tests and scenarios
ask for them: upsets in the accelerator's memory, a latched or dead board, garbage on
a board's line, a brownout, a latched-up load, a drained battery, a failed array, and
a space link that carries nothing for a while (DroppableLink, the flight end of the
link it cuts).

Each acts on the world or an emulated board the way the fault itself would; none
touches the flight software.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hal.errors import InputError
from hal.packetlink import PacketLink
from sim.world import World


class DroppableLink:
    """The flight end of a space link that `Inject.link_drop` can cut for a while:
    packets either way are counted and lost until then."""

    def __init__(self, inner: PacketLink, now: Callable[[], float]) -> None:
        self.inner = inner
        self.now = now
        self.down_until_s = -1.0
        self.dropped = 0

    def _down(self) -> bool:
        return self.now() < self.down_until_s

    def drop(self, seconds: float) -> None:
        """Nothing either way for the next `seconds`."""
        if not 0 <= seconds < float("inf"):
            raise InputError(f"a link drop of {seconds!r} s: expected a finite number >= 0")
        self.down_until_s = self.now() + seconds

    def send(self, packet: bytes) -> None:
        if self._down():
            self.dropped += 1
        else:
            self.inner.send(packet)

    def receive(self) -> list[bytes]:
        packets = self.inner.receive()
        if self._down():
            self.dropped += len(packets)
            return []
        return packets

    def close(self) -> None:
        self.inner.close()


class Inject:
    """Faults for one simulated satellite: its world, its emulated boards by name, and
    (for link drops) the DroppableLink its flight software talks through."""

    def __init__(self, world: World, emulators: Mapping[str, Any],
                 link: DroppableLink | None = None) -> None:
        self.world = world
        self.emulators = emulators
        self.link = link
        self._noise = 0  # line_garbage calls so far: each its own bytes, the same every run

    def _board(self, name: str) -> Any:
        if name not in self.emulators:
            raise InputError(f"no emulated board {name!r} (boards: "
                             f"{', '.join(self.emulators)})")
        return self.emulators[name]

    def bit_flips(self, count: int = 1) -> int:
        """`count` upsets in the accelerator's memory now; returns how many landed (none
        while no job holds memory)."""
        compute = self.world.compute
        return 0 if compute is None else self.world.radiation.strike(compute, count)

    def product_upsets(self, count: int = 1) -> None:
        """A logic upset in each of the accelerator's next `count` products: a flipped
        bit in the output of each (what ABFT is for)."""
        if not 1 <= count <= 10**6:
            raise InputError(f"{count} product upsets: expected 1..1000000")
        compute = self.world.compute
        if compute is None:
            raise InputError("this satellite has no compute device")
        compute.armed_products += count

    def silent_board(self, name: str) -> None:
        """A latch-up in board `name`: it stops answering until its power is cycled."""
        self._board(name).latched = True

    def dead_board(self, name: str) -> None:
        """Board `name` fails for good: no power cycle brings it back."""
        self._board(name).failed = True

    def line_garbage(self, name: str, nbytes: int = 16) -> None:
        """`nbytes` of noise on board `name`'s line, ahead of what it says next (no 0x00
        among them: they end as one rejected fragment at its next frame)."""
        if not 1 <= nbytes <= 65536:
            raise InputError(f"{nbytes} bytes of garbage: expected 1..65536")
        self._noise += 1
        rng = np.random.default_rng([self._noise, nbytes])
        self._board(name).noise += rng.integers(1, 256, nbytes, dtype=np.uint8).tobytes()

    def brownout(self, name: str, seconds: float = 1.0) -> None:
        """Board `name`'s supply drops for `seconds`: it loses power and boots afresh."""
        channel = self._board(name).platform.channel
        if channel is None:
            raise InputError(f"board {name!r} has no switched supply to brown out")
        world, until = self.world, self.world.t_s + seconds
        world.set_switch(channel, False)

        def restore() -> None:
            if world.t_s >= until:
                world.set_switch(channel, True)
                world.timers.remove(restore)
        world.timers.append(restore)

    def load_latchup(self, channel: int) -> None:
        """A single-event latch-up in the load on power channel `channel`: it draws more
        than its trip current until its power is cut."""
        self.world.latched_loads[channel] = True

    def drain_battery(self, soc: float) -> None:
        """The battery's state of charge falls to `soc` (0..1) at once."""
        if not 0.0 <= soc <= 1.0:
            raise InputError(f"state of charge {soc} is outside 0..1")
        self.world.battery.soc = soc

    def array_failure(self) -> None:
        """The solar array stops producing: the battery carries every load."""
        self.world.array.area_m2 = 0.0

    def link_drop(self, seconds: float) -> None:
        """The space link carries nothing either way for `seconds` of on-board time."""
        if self.link is None:
            raise InputError("this satellite's space link cannot be dropped: it was not "
                             "built on a DroppableLink")
        self.link.drop(seconds)
