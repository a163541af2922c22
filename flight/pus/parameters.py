"""Service 20, on-board parameters: report [20,1] -> [20,2], set [20,3]. A value set
is stored before it is in force, and stored values are set again at boot, so what the
ground set survives reboots; each set reaches its component's parameter_updated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from flight.component import Component, Telemetry, periodic
from flight.nvm import Records
from flight.pus.service import (
    Downlink,
    Refused,
    Run,
    Service,
    count,
    count_list,
    unknown_subtype,
)
from hal import layout
from hal.dictionary import ArgumentError, ParameterSpec, check_value
from hal.layout import Layouts, name_id
from hal.pus import N
from hal.spacepacket import Telecommand

RECORD = "link.params"


class Parameters(Service):
    """Every component's parameters, read and set from the ground."""

    name = "params"
    service_type: ClassVar = 20
    telemetry: ClassVar = (
        Telemetry("stored", "int", "Parameters set from the ground and kept across reboots"),
    )

    def __init__(self, downlink: Downlink, layouts: Layouts,
                 components: Mapping[str, Component], records: Records | None = None) -> None:
        super().__init__(downlink)
        self.layouts = layouts
        self.components = components  # filled as the topology builds them
        self.records = records or Records(None)
        self._stored = 0

    def start(self) -> None:
        """Set the stored values, now that every component exists."""
        stored = self._load()
        self._stored = len(stored)
        for name, value in stored.items():
            owner, local = self._owner(name)
            if owner is None:
                continue  # a stored parameter of a component this build no longer has
            try:
                owner.set_param(local, value)
            except ArgumentError:
                continue  # a stored value this build refuses: keep the default

    def accept(self, tc: Telecommand) -> Run:
        if tc.subtype == 1:
            specs = [self._spec(i) for (i,) in count_list(tc.data, N, "TC[20,1]")]
            return lambda: self._report(specs, tc.source_id)
        if tc.subtype == 3:
            values = self._parse_values(tc.data)
            return lambda: self._set(values)
        raise unknown_subtype(tc)

    @periodic(1)
    def housekeeping(self) -> None:
        self.publish_status("stored", self._stored)

    def _load(self) -> dict[str, Any]:
        nothing: dict[str, Any] = {}
        return self.records.load(RECORD, _check_params, nothing)

    def _owner(self, name: str) -> tuple[Component | None, str]:
        component, _, local = name.partition(".")
        return self.components.get(component), local

    def _spec(self, param_id: int) -> ParameterSpec:
        spec = self.layouts.parameters.get(param_id)
        if spec is None:
            raise Refused("bad_arguments", f"no parameter 0x{param_id:04x}")
        return spec

    def _parse_values(self, data: bytes) -> list[tuple[ParameterSpec, Any]]:
        n = count(data, "TC[20,3]")
        out, offset = [], 2
        for _ in range(n):
            if len(data) < offset + 2:
                raise Refused("layout", "TC[20,3]: truncated")
            spec = self._spec(N.unpack_from(data, offset)[0])
            size = layout.field_bytes(spec)
            (value,) = layout.unpack([spec], data[offset + 2:offset + 2 + size], spec.name)
            try:
                check_value(spec, value, spec.name)
            except ArgumentError as e:
                raise Refused("bad_arguments", str(e)) from None
            out.append((spec, value))
            offset += 2 + size
        if offset != len(data):
            raise Refused("layout", f"TC[20,3]: {len(data) - offset} octets after {n} values")
        return out

    def _report(self, specs: list[ParameterSpec], to: int) -> None:
        out = bytearray(N.pack(len(specs)))
        for spec in specs:
            owner, local = self._owner(spec.name)
            assert owner is not None, f"{spec.name} is in the dictionary, not on board"
            out += N.pack(name_id(spec.name)) + layout.pack([spec], [owner.param(local)])
        self.send(2, bytes(out), to)

    def _set(self, values: list[tuple[ParameterSpec, Any]]) -> None:
        """Stored first (OSError: nothing changed), then in force."""
        stored = self._load()
        stored.update({spec.name: value for spec, value in values})
        self.records.save(RECORD, stored)
        self._stored = len(stored)
        for spec, value in values:
            owner, local = self._owner(spec.name)
            assert owner is not None, f"{spec.name} is in the dictionary, not on board"
            owner.set_param(local, value)


def _check_params(body: Any) -> dict[str, Any]:
    """What the stored record must hold (flight.nvm: a body that fails is a damaged
    copy)."""
    if not all(type(k) is str and type(v) in (int, float, bool, str)
               for k, v in body.items()):
        raise ValueError("a parameter that is not name = number, flag or text")
    return dict(body)
