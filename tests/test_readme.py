"""The README's commands, as written: every `./dev` and `skyrack` line of its shell
blocks parses with the real command line (its verbs and options exist, its values
are of the right kind), every file a command names is in the repository or made by
an earlier line, and the commands that need no satellite run and succeed. (The two
of its first section are CI's own: `skyrack sim` and the test suite.)"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from skyrack.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SKYRACK = str(Path(sys.executable).parent / "skyrack")
# What the README's placeholders stand for.
PLACEHOLDERS = {"$K": "/tmp/keys.json", "$(date -u +%H:%M)": "10:00"}
# Files the README has its reader make, and what from.
USER_MADE = {"boards/flatsat.toml": "boards/flatsat-example.toml"}


def shell_lines() -> list[tuple[int, str]]:
    """(line number, command) of every line of the README's ```sh blocks, with
    continuation lines joined."""
    out, block, pending = [], False, ""
    for number, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        if line.startswith("```"):
            block = line.strip() == "```sh"
            continue
        if not block:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((number, pending + line))
        pending = ""
    return out


def words(command: str) -> list[str]:
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    parts = shlex.split(command, comments=True)
    for n, part in enumerate(parts):  # the command, without what the shell does with it
        if part in ("&", "|", ">", ">>", "2>", "&&", ";"):
            return [str(Path(p).expanduser()) if p.startswith("~") else p for p in parts[:n]]
    return [str(Path(p).expanduser()) if p.startswith("~") else p for p in parts]


SKYRACK_LINES = [(n, w) for n, line in shell_lines() if (w := words(line))
                 and (w[0] in ("./dev", "skyrack", ".venv/bin/skyrack") and w[1:2] != ["test"])]


def test_the_readme_has_commands_to_check() -> None:
    assert len(SKYRACK_LINES) > 40
    verbs = {w[1] for _, w in SKYRACK_LINES}
    assert {"sim", "ground", "keys", "dictionary", "board", "fly"} <= verbs


@pytest.mark.parametrize("number, argv", SKYRACK_LINES,
                         ids=[f"README:{n}" for n, _ in SKYRACK_LINES])
def test_each_skyrack_command_parses(number: int, argv: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv[1:])
        except SystemExit as e:
            assert e.code == 0, f"README line {number}: {' '.join(argv)}: {err.getvalue()}"


def test_the_files_the_commands_read_are_there() -> None:
    """Every repository path a README command names exists (files the commands
    themselves write, and those under a user's home, are theirs)."""
    missing = []
    for number, line in shell_lines():
        for word in words(line):
            word = USER_MADE.get(word, word)
            if re.fullmatch(r"(examples|boards|bench|tests|docs|\.ci)/[\w./-]+", word) \
                    and not (ROOT / word).exists():
                missing.append(f"README line {number}: {word}")
    assert not missing


def test_the_pytest_commands_name_real_tests() -> None:
    for number, line in shell_lines():
        argv = words(line)
        if argv[:2] == ["./dev", "test"] or argv[:1] == ["pytest"]:
            for word in argv[1:]:
                if word.startswith("tests"):
                    assert (ROOT / word.split("::")[0]).exists(), f"README line {number}"


@pytest.mark.parametrize("verb", ["dictionary", "script"])
def test_the_commands_that_need_no_satellite_run(verb: str) -> None:
    lines = [w for _, w in SKYRACK_LINES if w[1] == verb or w[1:3] == ["ground", verb]
             and "--check" in w]
    assert lines
    for argv in lines:
        out = subprocess.run([SKYRACK, *argv[1:]], capture_output=True, text=True,
                             cwd=ROOT, timeout=120)
        assert out.returncode == 0, f"{' '.join(argv)}: {out.stderr}"
