"""A kill -9 harness: a writer runs in a forked child and is killed at a seeded random
moment, either by the parent after a random delay (anywhere, even inside a system
call) or by itself at a random step of its own (exactly between two writes). Then the
parent reopens what it wrote and checks an invariant.

Each test runs a modest number of trials; SKYRACK_CRASH_TRIALS sets how many (the
figures in RELIABILITY.md come from thousands), and SKYRACK_CRASH_REPORT names a file
that each harness appends its tally to, as a JSON line.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field


def trial_count(default: int) -> int:
    return int(os.environ.get("SKYRACK_CRASH_TRIALS", default))


def tally(harness: str, trials: list[Trial], **outcomes: int) -> None:
    """Append a harness's tally to SKYRACK_CRASH_REPORT, when it is set."""
    path = os.environ.get("SKYRACK_CRASH_REPORT")
    if not path:
        return
    how = collections.Counter(t.how for t in trials)
    line = {"harness": harness, "trials": len(trials), "killed_by_timer": how["timer"],
            "killed_at_a_step": how["step"],
            "ran_to_the_end": sum(t.finished for t in trials)} if trials else {}
    with open(path, "a") as f:
        f.write(json.dumps({"harness": harness, **line, **outcomes}) + "\n")


class Child:
    """What the writer sees: a seeded rng, `report()` to tell the parent what it has
    done (a line through a pipe, so it survives the kill), and `step()` to call between
    writes (it kills the process at the trial's chosen step)."""

    def __init__(self, fd: int, rng: random.Random, kill_at: int | None) -> None:
        self.rng = rng
        self._fd = fd
        self._kill_at = kill_at
        self.steps = 0

    def report(self, line: str) -> None:
        os.write(self._fd, (line + "\n").encode())

    def step(self, name: str = "") -> None:
        self.steps += 1
        if self._kill_at is not None and self.steps >= self._kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def step_at_storage_writes(self) -> None:
        """A step before every write to on-board storage (drivers.storage), in this child
        only: a kill at a step lands between two stored records."""
        from drivers.storage import DirectoryStorage

        write = DirectoryStorage.write

        def cut(storage: DirectoryStorage, name: str, data: bytes) -> None:
            self.step()
            write(storage, name, data)

        DirectoryStorage.write = cut  # type: ignore[method-assign]


@dataclass
class Trial:
    index: int
    how: str  # "timer" or "step"
    reports: list[str] = field(default_factory=list)
    finished: bool = False  # the child ran to its end before any kill


def kill_trials(child: Callable[[Child], None], check: Callable[[Trial], None], *,
                trials: int, seed: int, max_delay_s: float, max_steps: int) -> list[Trial]:
    """Run `trials` children; after each is dead, `check(trial)` (which asserts)."""
    done = []
    for index in range(trials):
        rng = random.Random(f"{seed}:{index}")
        how = rng.choice(("timer", "step"))
        kill_at = rng.randint(1, max_steps) if how == "step" else None
        delay_s = rng.uniform(0.0, max_delay_s)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the test runner
            os.close(read_fd)
            code = 0
            try:
                child(Child(write_fd, random.Random(rng.random()), kill_at))
                os.write(write_fd, b"!finished\n")
            except BaseException:
                os.write(write_fd, ("!error " + traceback.format_exc().replace("\n", " | ")
                                    + "\n").encode())
                code = 1
            os._exit(code)
        os.close(write_fd)
        if how == "timer":
            time.sleep(delay_s)
            os.kill(pid, signal.SIGKILL)
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        os.waitpid(pid, 0)
        lines = b"".join(chunks).decode().splitlines()
        errors = [line for line in lines if line.startswith("!error")]
        assert not errors, f"trial {index}: the writer failed: {errors[0]}"
        trial = Trial(index, how, [x for x in lines if not x.startswith("!")],
                      "!finished" in lines)
        check(trial)
        done.append(trial)
    return done
