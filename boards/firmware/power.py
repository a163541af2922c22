"""Power board firmware: battery and solar sensing, switchable load outputs, and the
flight computer's watchdog.

The watchdog: the flight computer must `kick` at least every `WATCHDOG_S`; if it does
not, the board power-cycles the flight computer's output (channel 0), records the boot
cause as "watchdog" and counts the reset. `tick()` is the firmware's timer interrupt.

Protection, in the same interrupt, as a real power board does it in hardware:
- over-current: a channel drawing more than its trip current (a latch-up, a short) is
  switched off at once and its latch-up counter incremented; turning it back on is the
  flight software's decision;
- low-voltage disconnect: below `LVD_V` the battery is near its depth-of-discharge floor,
  and every load but the flight computer is shed; the board reconnects nothing itself.

`trip` fires a channel's over-current protection on command, as the test input of a
dev board's protection circuit does: the channel goes off and counts a latch-up, as if
its load had drawn more than its trip current (a bench's way to a latch-up on a rail).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from boards.firmware.server import Handler, OpError, Platform, within
from hal.boardops import BY_KIND, Channel, Kick, Switch, Switches
from hal.boards import PowerHousekeeping
from hal.values import quick


@quick
@dataclass(frozen=True, slots=True)
class PowerSense:
    batt_v: float
    batt_a: float
    soc_pct: float
    solar_power_w: float
    channel_a: tuple[float, ...]


class PowerPlatform(Platform, Protocol):
    channel_count: int

    def sense(self) -> PowerSense: ...

    def switches(self) -> tuple[bool, ...]: ...

    def set_switch(self, channel: int, on: bool) -> None: ...


FLIGHT_COMPUTER_CHANNEL = 0
WATCHDOG_S = 30.0
LVD_V = 24.5  # 3.06 V a cell: the hardware's depth-of-discharge floor
TRIP_A = (8.0, 4.0, 35.0, 8.0, 8.0, 8.0, 8.0, 8.0)  # per channel: nominal load plus margin


class PowerFirmware:
    kind = "power"
    ops = BY_KIND["power"]

    def __init__(self, platform: PowerPlatform) -> None:
        self.platform = platform
        self.last_kick_s = platform.uptime_s()
        self.fc_boot_cause = "power_on"
        self.watchdog_resets = 0
        self.latchups = [0] * platform.channel_count
        self.lvd_trips = 0

    def handlers(self) -> dict[str, Handler]:
        return {"tlm": self.tlm, "switch": self.switch, "kick": self.kick, "trip": self.trip}

    def kick(self, _: None) -> Kick:
        self.last_kick_s = self.platform.uptime_s()
        return Kick(WATCHDOG_S)

    def tick(self) -> None:
        """The timer interrupt: over-current and low-voltage protection, and the watchdog."""
        sense = self.platform.sense()
        switches = self.platform.switches()
        for channel, current in enumerate(sense.channel_a):
            if switches[channel] and current > TRIP_A[channel]:
                self._trip(channel)
        if sense.batt_v < LVD_V and any(switches[1:]):
            for channel in range(1, self.platform.channel_count):
                self.platform.set_switch(channel, False)
            self.lvd_trips += 1
        now = self.platform.uptime_s()
        if now < self.last_kick_s:  # this board rebooted: its clock restarted
            self.last_kick_s = now
        if not self.platform.switches()[FLIGHT_COMPUTER_CHANNEL]:
            # Nothing to watch while the computer is unpowered (a brownout, or the rail
            # commanded off): the watchdog runs from the moment its rail is on again.
            self.last_kick_s = now
        if now - self.last_kick_s > WATCHDOG_S:
            self.platform.set_switch(FLIGHT_COMPUTER_CHANNEL, False)
            self.platform.set_switch(FLIGHT_COMPUTER_CHANNEL, True)
            self.fc_boot_cause = "watchdog"
            self.watchdog_resets += 1
            self.last_kick_s = now

    def tlm(self, _: None) -> PowerHousekeeping:
        s = self.platform.sense()
        return PowerHousekeeping(
            batt_v=s.batt_v,
            batt_a=s.batt_a,
            soc_pct=s.soc_pct,
            solar_power_w=s.solar_power_w,
            load_power_w=s.batt_v * sum(s.channel_a),
            switches=tuple(self.platform.switches()),
            channel_a=tuple(s.channel_a),
            uptime_s=self.platform.uptime_s(),
            fc_boot_cause=self.fc_boot_cause,
            watchdog_resets=self.watchdog_resets,
            latchups=tuple(self.latchups),
            lvd_trips=self.lvd_trips,
        )

    def _trip(self, channel: int) -> None:
        self.platform.set_switch(channel, False)
        self.latchups[channel] += 1

    def trip(self, request: Channel) -> Switches:
        channel = within("channel", request.channel, 0, self.platform.channel_count - 1)
        if channel == FLIGHT_COMPUTER_CHANNEL:
            raise OpError("channel 0 feeds the flight computer: its protection is not "
                             "tripped on command")
        if not self.platform.switches()[channel]:
            raise OpError(f"channel {channel} is off: nothing to trip")
        self._trip(channel)
        return Switches(tuple(self.platform.switches()))

    def switch(self, request: Switch) -> Switches:
        channel = within("channel", request.channel, 0, self.platform.channel_count - 1)
        self.platform.set_switch(channel, request.on)
        return Switches(tuple(self.platform.switches()))
