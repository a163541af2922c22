"""Service 8, function management: [8,1] performs a dictionary command by its
function id, through the dispatcher, as any command is performed."""

from __future__ import annotations

from typing import Any, ClassVar

from flight.dispatcher import Dispatcher, Status
from flight.pus.service import Downlink, Refused, Run, Service, unknown_subtype
from hal.dictionary import ArgumentError, validate_args
from hal.layout import Layouts
from hal.spacepacket import Telecommand


class Functions(Service):
    """Commands of the dictionary, performed on request of the ground."""

    name = "functions"
    service_type: ClassVar = 8

    def __init__(self, downlink: Downlink, layouts: Layouts, dispatcher: Dispatcher) -> None:
        super().__init__(downlink)
        self.layouts = layouts
        self.dispatcher = dispatcher

    def accept(self, tc: Telecommand) -> Run:
        if tc.subtype != 1:
            raise unknown_subtype(tc)
        spec, args = self.layouts.unpack_command(tc.data)
        try:
            checked = validate_args(spec, args)
        except ArgumentError as e:
            raise Refused("bad_arguments", str(e)) from None
        return lambda: self._perform(spec.name, checked)

    def _perform(self, name: str, args: dict[str, Any]) -> None:
        result = self.dispatcher.dispatch(name, args)
        if result.status is not Status.COMPLETED:
            raise Refused("failed", result.reason)
