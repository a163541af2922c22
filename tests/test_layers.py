"""The layer rule of DESIGN.md, read from every module's imports.

Each package may import only the packages listed for it. The composition root,
`skyrack` (the CLI and the assembly), is the one exception: it wires every layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = "skyrack"
ALLOWED = {
    "hal": {"hal"},
    "flight": {"flight", "hal"},
    "drivers": {"drivers", "hal"},
    "boards": {"boards", "hal"},
    "ground": {"ground", "hal"},
    "sim": {"sim", "hal", "boards"},
}
OURS = set(ALLOWED) | {COMPOSITION_ROOT}


def imported_packages(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) for every import of ours in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top = package if node.level else (node.module or "").split(".")[0]
            found.append((node.lineno, top))
    return [(line, top) for line, top in found if top in OURS]


def violations(root: Path) -> list[str]:
    out = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, top in imported_packages(path, package):
                if top not in allowed:
                    out.append(f"{path.relative_to(root)}:{line} imports {top} "
                               f"({package} may import only {', '.join(sorted(allowed))})")
    return out


def test_every_package_keeps_to_its_layer() -> None:
    assert violations(ROOT) == []


def test_every_package_is_checked() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == OURS


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    for package in ALLOWED:
        (tmp_path / package).mkdir()
    (tmp_path / "flight" / "bad.py").write_text("from sim.world import World\nimport hal\n")
    (tmp_path / "flight" / "worse.py").write_text("import drivers.power as p\n")
    (tmp_path / "drivers" / "bad.py").write_text("def f():\n    import sim\n")
    (tmp_path / "hal" / "bad.py").write_text("from boards import definition\nfrom . import x\n")
    (tmp_path / "flight" / "ok.py").write_text("from hal.boards import PowerBoard\nimport numpy\n")
    assert violations(tmp_path) == [
        "hal/bad.py:1 imports boards (hal may import only hal)",
        "flight/bad.py:1 imports sim (flight may import only flight, hal)",
        "flight/worse.py:1 imports drivers (flight may import only flight, hal)",
        "drivers/bad.py:2 imports sim (drivers may import only drivers, hal)",
    ]
