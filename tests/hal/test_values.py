"""hal.values.quick: the same values, the same signature errors, still frozen."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from hal.values import quick


def _value(decorate):
    @dataclass(frozen=True, slots=True)
    class Value:
        a: int
        b: str = "x"
        c: tuple[int, ...] = field(default_factory=tuple)

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a < 0")

    return decorate(Value)


def _twins():
    """The same declaration, as the dataclass makes it and made quick."""
    return _value(lambda cls: cls), _value(quick)


@pytest.mark.parametrize("args,kwargs", [((1,), {}), ((1, "y"), {}), ((1, "y", [2]), {}),
                                         ((), {"a": 3, "c": [4]}), ((5,), {"b": "z"})])
def test_a_quick_dataclass_is_built_as_the_dataclass_would_be(args, kwargs) -> None:
    plain, fast = _twins()
    a, b = plain(*args, **kwargs), fast(*args, **kwargs)
    assert dataclasses.astuple(a) == dataclasses.astuple(b)
    assert repr(b) == repr(a) and type(b).__init__ is not type(a).__init__
    assert fast(*args, **kwargs) == b and hash(fast(1)) == hash(fast(1))


def test_each_default_factory_is_called_for_each_value_and_post_init_still_runs() -> None:
    made = []

    @quick
    @dataclass(frozen=True, slots=True)
    class Holder:
        c: list[int] = field(default_factory=lambda: made.append(1) or [])

    assert Holder().c is not Holder().c and len(made) == 2
    assert Holder([3]).c == [3] and len(made) == 2
    _, fast = _twins()
    with pytest.raises(ValueError, match="a < 0"):
        fast(-1)


@pytest.mark.parametrize("call", [lambda k: k(), lambda k: k(1, "y", (), 4),
                                  lambda k: k(1, d=2), lambda k: k(1, a=1)])
def test_a_bad_call_fails_as_it_would_on_the_dataclass(call) -> None:
    for cls in _twins():
        with pytest.raises(TypeError):
            call(cls)


def test_a_quick_dataclass_stays_frozen_and_is_only_for_frozen_slotted_ones() -> None:
    _, fast = _twins()
    value = fast(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 2  # type: ignore[misc]
    assert dataclasses.replace(value, a=7) == fast(7)

    @dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError, match="frozen=True, slots=True"):
        quick(NoSlots)
