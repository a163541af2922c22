"""Power board driver: housekeeping and load switches over the board protocol."""

from __future__ import annotations

from drivers.board import BoardDriver
from hal.boardops import Channel, Switch
from hal.boards import PowerHousekeeping


class PowerDriver(BoardDriver):
    kind = "power"
    channel_count = 8

    def housekeeping(self) -> PowerHousekeeping:
        return self.call("tlm")

    def kick_watchdog(self) -> float:
        return float(self.call("kick").watchdog_s)

    def set_switch(self, channel: int, on: bool) -> None:
        if not 0 <= channel < self.channel_count:
            raise ValueError(f"{self.name}: channel {channel} out of range "
                             f"0..{self.channel_count - 1}")
        # Setting a switch to a state (not toggling it) is idempotent, so it may be retried.
        self.call("switch", Switch(channel, bool(on)))

    def trip(self, channel: int) -> None:
        """Fire channel `channel`'s over-current protection, as a latch-up on its load
        would (the board's test input; a bench's fault injection). BoardFault when the
        channel is off or feeds the flight computer."""
        if not 0 <= channel < self.channel_count:
            raise ValueError(f"{self.name}: channel {channel} out of range "
                             f"0..{self.channel_count - 1}")
        # Declared not idempotent (a trip counts a latch-up): a retry is answered from the
        # board's last reply, never run twice.
        self.call("trip", Channel(channel))
