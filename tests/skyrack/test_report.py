"""The mission report's references: each job against a fault-free run of itself, from
the inputs it had."""

from __future__ import annotations

import numpy as np

from flight.compute.catalog import make_workload
from flight.compute.manager import Job
from skyrack.mission import _fault_free, _job_reference

TRANSFORMER = {"steps": 3, "corpus_kb": 4}


class Manager:
    """What _job_reference asks of the compute manager: a finished job's result."""

    def __init__(self, results: dict[int, np.ndarray]) -> None:
        self.results = results

    def result(self, job_id: int) -> np.ndarray | None:
        return self.results.get(job_id)


def test_a_served_generation_is_checked_against_the_weights_it_was_given() -> None:
    """Were the training job's result off (a benign deviation, or corruption the training
    job answers for), the generation that served it is judged on its own arithmetic."""
    trained = _fault_free(make_workload("transformer", 3, **TRANSFORMER))
    nudged = trained.copy()
    noise = np.random.default_rng(1).standard_normal(nudged.size - TRANSFORMER["steps"])
    nudged[TRANSFORMER["steps"]:] += noise.astype(np.float32)  # the parameters, not losses
    params = {"model_job": 1, "steps": 4, "prompt": "def ", "layers": 2, "heads": 2,
              "width": 64, "context": 32, "corpus_kb": 4}
    job = Job(2, "generate", 0, params, 4)
    served = make_workload("generate", 0, **params)
    served.serve(nudged)
    expected = _fault_free(served)
    unnudged = make_workload("generate", 0, **params)
    unnudged.serve(trained)
    assert _fault_free(unnudged).tobytes() != expected.tobytes()  # the nudge shows
    reference = _job_reference(Manager({1: nudged}), job, make_workload("generate", 0, **params))
    assert reference is not None and reference.tobytes() == expected.tobytes()
    gone = _job_reference(Manager({}), job, make_workload("generate", 0, **params))
    assert gone is None  # its model's result is gone
