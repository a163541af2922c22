"""Every workload a job can name, and the one way to make one from a job's fields.

Apart from flight.compute.workloads (the base and the integer workloads) so that the
transformer modules, which build on that base, can be imported in any order."""

from __future__ import annotations

from typing import Any

from flight.compute.generate import Generation
from flight.compute.transformer import TransformerTraining
from flight.compute.workloads import (
    JobParameterError,
    LinearTraining,
    QuantizedMLP,
    Workload,
)

WORKLOADS: dict[str, type[Workload]] = {
    w.name: w for w in (QuantizedMLP, LinearTraining, TransformerTraining, Generation)}


def make_workload(name: str, seed: int = 0, **params: Any) -> Workload:
    try:
        cls = WORKLOADS[name]
    except KeyError:
        raise JobParameterError(f"unknown workload {name!r} "
                                f"(known: {', '.join(sorted(WORKLOADS))})") from None
    return cls(seed, **params)
