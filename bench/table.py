"""How every benchmark reports: a table of metrics with their targets, and JSON."""

from __future__ import annotations

import json
from typing import Any


def report(results: dict[str, Any], targets: dict[str, tuple[str, float]] | None = None,
           json_path: str | None = None) -> None:
    """Print `results` as a table, marking each target (">=" or "<=", bound) met or
    missed, and write them as JSON to `json_path` when given."""
    targets = targets or {}
    width = max(len(k) for k in results)
    print(f"{'metric':{width}} {'value':>10}  target")
    for key, value in results.items():
        shown = f"{value:10.3f}" if isinstance(value, float) else f"{value!s:>10}"
        target = ""
        if key in targets:
            op, bound = targets[key]
            met = value >= bound if op == ">=" else value <= bound
            target = f"{op} {bound:g}  {'met' if met else 'MISSED'}"
        print(f"{key:{width}} {shown}  {target}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
