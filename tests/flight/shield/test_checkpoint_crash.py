"""Checkpoint saves killed with SIGKILL at random moments, each save with new content:
restore must give the newest save that returned, or the one being written if it got
to its end; never nothing once a save has returned, never wrong data."""

from __future__ import annotations

import numpy as np
import pytest

from flight.shield import CheckpointError, CheckpointStore
from tests.crash import Child, Trial, kill_trials, tally, trial_count

BLOCK = 4096
BLOCKS = 48
OWNER = "job 1 0123456789abcdef"


def content(k: int) -> np.ndarray:
    """What save number `k` holds: a fixed base with a few blocks of its own, so that
    consecutive saves differ in some blocks and agree in the rest (incremental saves)."""
    base = np.arange(BLOCKS * BLOCK // 4, dtype=np.uint32)
    rng = np.random.default_rng(k)
    for block in rng.choice(BLOCKS, size=int(rng.integers(1, 9)), replace=False):
        start = block * BLOCK // 4
        base[start:start + BLOCK // 4] = rng.integers(0, 2**32, BLOCK // 4, dtype=np.uint32)
    return base


@pytest.mark.crash
def test_no_save_that_returned_is_ever_lost_or_restored_wrong(tmp_path) -> None:
    state = {"next_k": 0, "last_returned": None, "returned": 0, "got_in_flight": 0,
             "got_last_returned": 0}

    def writer(child: Child) -> None:
        store = CheckpointStore(tmp_path, owner=OWNER, crash_hook=child.step)
        k = state["next_k"]  # the fork's copy, as the parent left it
        for _ in range(12):
            store.save({"state": content(k), "small": np.array([k], dtype=np.int64)},
                       {"k": k})
            child.report(str(k))
            k += 1

    def check(trial: Trial) -> None:
        returned = [int(x) for x in trial.reports]
        state["returned"] += len(returned)
        if returned:
            state["last_returned"] = returned[-1]
        in_flight = (returned[-1] + 1) if returned else state["next_k"]
        state["next_k"] = in_flight + 1
        try:
            got = CheckpointStore(tmp_path, owner=OWNER).restore()
        except CheckpointError as e:
            assert state["last_returned"] is None, f"trial {trial.index}: {e}"
            return
        k = got.metadata["k"]
        allowed = {in_flight} | ({state["last_returned"]} - {None})
        assert k in allowed, (f"trial {trial.index} ({trial.how}): restored save {k}, "
                              f"expected one of {sorted(allowed)}")
        assert np.array_equal(got.arrays["state"], content(k))
        assert got.arrays["small"].tolist() == [k]
        if k == in_flight:
            state["last_returned"] = k  # it completed before the kill
        state["got_in_flight" if k == in_flight else "got_last_returned"] += 1

    trials = kill_trials(writer, check, trials=trial_count(150), seed=12,
                         max_delay_s=0.03, max_steps=60)
    assert sum(t.how == "step" for t in trials) > len(trials) // 4
    assert state["last_returned"] is not None and state["last_returned"] > len(trials) // 4
    tally("checkpoint save/restore", trials, saves_returned=state["returned"],
          restored_the_save_in_flight=state["got_in_flight"],
          restored_the_last_returned=state["got_last_returned"], lost=0, wrong_data=0)
