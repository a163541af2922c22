"""Events travel in fixed layouts their components declare: every argument an emitter
passes is declared (checked over the source, so that no rarely taken path can emit
an argument the ground cannot decode), and the flight software refuses one that is
not."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from flight import topology
from flight.component import Component, Event
from hal.dictionary import Severity


def _emits(cls: type) -> list[tuple[ast.Call, ast.AST]]:
    """Every self.emit(...) call in `cls` and the component classes it derives from,
    with the class's syntax tree."""
    calls = []
    for klass in cls.__mro__:
        if klass is Component or not issubclass(klass, Component):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "emit":
                calls.append((node, tree))
    return calls


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def _candidates(call: ast.Call, tree: ast.AST, events: dict[str, set[str]]) -> list[str]:
    """The events a call may emit: its literal name, the names an f-string's constant
    prefix allows, or the strings assigned to the variable that holds the name
    (else any event)."""
    first = call.args[0]
    if isinstance(first, ast.Constant):
        return [first.value]
    if isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
        return [e for e in events if e.startswith(first.values[0].value)]
    if isinstance(first, ast.Name):
        assigned = [s for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    for target in node.targets
                    if isinstance(target, ast.Name) and target.id == first.id
                    for s in _strings(node.value) if s in events]
        if assigned:
            return assigned
    return [e for e, args in events.items()
            if {k.arg for k in call.keywords if k.arg} <= args]


@pytest.mark.parametrize("cls", topology.kinds(), ids=lambda c: c.__name__)
def test_every_argument_an_emitter_passes_is_declared(cls) -> None:
    events = {e.name: {a.name for a in e.args} for e in cls.declared("events")}
    for call, tree in _emits(cls):
        where = cls.__name__
        names = {k.arg for k in call.keywords if k.arg is not None}
        candidates = _candidates(call, tree, events)
        assert candidates, f"{where}: line {call.lineno} emits an undeclared event"
        for event in candidates:
            assert event in events, f"{where}: line {call.lineno}: no event {event!r}"
            assert names <= events[event], (
                f"{where}: line {call.lineno}: {event} declares no {sorted(names - events[event])}")
        for splat in (k for k in call.keywords if k.arg is None):  # **args: built here
            assert isinstance(splat.value, ast.Name), f"{where}: line {call.lineno}"


class _Chatty(Component):
    name = "chatty"
    events = (Event("said", Severity.INFO, "Something was said", what="str", times="int"),)


def test_an_undeclared_argument_is_refused_and_a_missing_one_goes_unsampled() -> None:
    from flight.bus import EVENT, Bus
    from sim.clock import VirtualClock

    chatty, bus, seen = _Chatty(), Bus(), []
    chatty.bind(bus, VirtualClock())
    bus.subscribe(EVENT, lambda topic, record: seen.append(record))
    with pytest.raises(KeyError, match="event 'said' declares no argument 'loud'"):
        chatty.emit("said", what="hi", loud=True)
    chatty.emit("said", what="hi")
    assert [(r.name, r.args) for r in seen] == [("chatty.said", {"what": "hi"})]
