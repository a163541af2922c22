"""One error family: every error class of ours derives from SkyrackError, so the CLI
reports any of them in one line by catching that one (skyrack.cli.main)."""

import importlib
import inspect
import pathlib

from hal.errors import SkyrackError

ROOT = pathlib.Path(__file__).parents[1]
PACKAGES = ("hal", "flight", "drivers", "boards", "ground", "sim", "skyrack")
# Raised and caught inside one module, never seen by a caller: not errors to report.
CONTROL_FLOW = {"flight.shield.checkpoint.PowerCut"}


def test_every_error_class_derives_from_skyrack_error() -> None:
    strays = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if name.endswith("__main__") or "_build" in name:
                continue
            module = importlib.import_module(name.removesuffix(".__init__"))
            for cls in vars(module).values():
                if (inspect.isclass(cls) and issubclass(cls, Exception)
                        and cls.__module__ == module.__name__
                        and not cls.__name__.startswith("_")
                        and f"{cls.__module__}.{cls.__name__}" not in CONTROL_FLOW
                        and not issubclass(cls, SkyrackError)):
                    strays.append(f"{cls.__module__}.{cls.__name__}")
    assert strays == []
