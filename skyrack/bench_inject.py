"""Faults on a bench of boards, through the same calls as the sim's (sim.inject.Inject):
a board latched or dead is one whose replies the fault proxy on its line holds back
(skyrack.proxy), a brownout is its rail switched off for a while by the power board, a
memory upset is a bit flipped in the compute device's memory between two of its
operations (sim.faults.UpsetsOnDemand), a latch-up on a rail is its over-current
protection fired through the power board (its `trip`), and a link drop cuts the space
link as in the sim. What a bench cannot do (a battery drained at once, a failed array:
the power physics are the hardware's own) raises NotHere with the reason, for the
pytest plugin to skip the test saying so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from boards.definition import SatelliteDefinition
from hal.errors import InputError, SkyrackError
from sim.faults import UpsetsOnDemand
from sim.inject import DroppableLink
from skyrack.proxy import FaultProxy


class NotHere(SkyrackError):
    """A fault this home of the tests cannot make; the message says why."""


POWER_PHYSICS = "needs the sim's power physics (a bench's power system is the hardware's own)"


class BenchInject:
    """Faults for a satellite flying against real boards (or boards served on ports):
    `proxies` by board name (those with a fault proxy on their line), its drivers, the
    compute device wrapped for upsets (None: the bench has none), and the DroppableLink
    its flight software talks to the ground through."""

    def __init__(self, definition: SatelliteDefinition, drivers: Mapping[str, Any],
                 proxies: Mapping[str, FaultProxy], upsets: UpsetsOnDemand | None,
                 link: DroppableLink | None) -> None:
        self.definition = definition
        self.drivers = drivers
        self.proxies = proxies
        self.upsets = upsets
        self.link = link
        self._timers: list[threading.Timer] = []

    def _proxy(self, name: str) -> FaultProxy:
        self.definition.named(name)  # an unknown board: DefinitionError naming the known
        if name not in self.proxies:
            raise NotHere(f"board {name!r} has no fault proxy on its line (run pytest with "
                          "--proxy)")
        return self.proxies[name]

    def bit_flips(self, count: int = 1) -> int:
        """`count` upsets in the compute device's memory, just before its next product;
        returns how many landed (none while no job holds memory or runs)."""
        if self.upsets is None:
            raise NotHere("this bench has no compute device to strike")
        return self.upsets.strike(count)

    def product_upsets(self, count: int = 1) -> None:
        """A flipped bit in the output of each of the compute device's next `count`
        products."""
        if self.upsets is None:
            raise NotHere("this bench has no compute device to strike")
        if not 1 <= count <= 10**6:
            raise InputError(f"{count} product upsets: expected 1..1000000")
        self.upsets.strike_products(count)

    def silent_board(self, name: str) -> None:
        """Board `name` latches: its replies are held back until they show it restarted
        (its power was cycled)."""
        self._proxy(name).silence("to_host", until_restart=True)

    def dead_board(self, name: str) -> None:
        """Board `name` fails for good: nothing it says reaches the flight computer."""
        self._proxy(name).silence("to_host")

    def line_garbage(self, name: str, nbytes: int = 16) -> None:
        """`nbytes` of noise on board `name`'s line towards the flight computer, now."""
        self._proxy(name).garbage("to_host", nbytes)

    def brownout(self, name: str, seconds: float = 1.0) -> None:
        """Board `name`'s rail is switched off by the power board for `seconds`, then on."""
        channel = self.definition.named(name).power_channel
        if channel is None:
            raise InputError(f"board {name!r} has no switched supply to brown out")
        if not 0 < seconds < 3600:
            raise InputError(f"a brownout of {seconds!r} s: expected 0 < seconds < 3600")
        power = self.drivers["power"]
        power.set_switch(channel, False)
        timer = threading.Timer(seconds, power.set_switch, args=(channel, True))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def load_latchup(self, channel: int) -> None:
        """A latch-up on the load of power channel `channel`: its over-current protection
        fired through the power board's `trip` (the channel goes off and counts a
        latch-up, as when a load draws more than its trip current)."""
        self.drivers["power"].trip(channel)

    def drain_battery(self, soc: float) -> None:
        raise NotHere(f"draining the battery at once {POWER_PHYSICS}")

    def array_failure(self) -> None:
        raise NotHere(f"a failed solar array {POWER_PHYSICS}")

    def link_drop(self, seconds: float) -> None:
        """The space link carries nothing either way for `seconds`."""
        if self.link is None:
            raise InputError("this satellite's space link cannot be dropped: it was not "
                             "built on a DroppableLink")
        self.link.drop(seconds)

    def close(self) -> None:
        """Run the pending ends of brownouts now (a rail is not left off after a test)."""
        for timer in self._timers:
            if timer.is_alive():
                timer.cancel()
                try:
                    timer.function(*timer.args)
                except SkyrackError:
                    pass  # the board is gone: nothing left to switch back on
        self._timers.clear()


class Skipping:
    """Either home's faults, with a call this home cannot make turned into a skip of the
    test that asked for it (`skip(reason)`), never a silent no-op."""

    def __init__(self, inner: Any, skip: Callable[[str], Any]) -> None:
        self._inner = inner
        self._skip = skip

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except NotHere as e:
                return self._skip(f"{name}: {e}")
        return call
