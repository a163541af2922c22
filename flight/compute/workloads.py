"""Deterministic workloads with outputs that can be checked bit for bit.

A workload declares its golden data (loaded once, read-only: weights, a training set),
its state (what evolves and is checkpointed) and a step. A step reads through the
context (checked GEMMs, CRC-checked activations, spot-checked golden rows) and returns
its state updates instead of writing them, so a step that fails a check leaves state
untouched and can be run again. What a step produces for the outside (a batch's
inference output) it emits: outputs leave the device when the step commits, as they
would be streamed to storage, so they are never part of checkpointed state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

import numpy as np

from flight.compute.abft import (
    APPENDED_ROWS,
    AppendedRows,
    AppendedSums,
    Deferred,
    FloatRightSums,
    RightSums,
    with_column_sums,
    with_sums,
)
from hal.errors import SkyrackError

Updates = dict[str, tuple[Any, np.ndarray]]  # state name -> (index, new values)


class JobParameterError(SkyrackError, ValueError):
    """A job parameter is unknown or out of range; the message says which."""


class StepContext(Protocol):

    def gemm(self, a: np.ndarray, b: np.ndarray, *,
             right: RightSums | AppendedSums | FloatRightSums | None = None,
             left: AppendedRows | None = None, what: str = "gemm") -> np.ndarray:
        """a @ b, checked: exactly for integer-valued float64, to the rounding bound for
        float32 (flight.compute.abft). With APPENDED, b carries its row checksums as its
        last two columns and a @ b without them comes back; with APPENDED_ROWS, a carries
        its column checksums as its last two rows, likewise. Unprotected, a @ b as it is."""
        ...

    @property
    def later(self) -> Deferred:
        """Checks held back to the end of this step (flight.compute.abft.Deferred): they
        run, and a failure reruns the step, before anything of it commits. For a
        workload that DEFERS_CHECKS the context holds its own there too (integer GEMMs,
        activations, spot-checked rows)."""
        ...

    def boundary(self, name: str, values: np.ndarray) -> np.ndarray:
        """Park `values` in device memory as activation `name`, CRC-checked when read."""
        ...

    def golden_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of golden region `name`, their blocks spot-checked."""
        ...

    def state_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of state `name` that the step reads and does not write
        (a KV cache), their blocks spot-checked."""
        ...

    def emit(self, values: np.ndarray) -> None:
        """This step's output; it leaves the device if and when the step commits."""
        ...


class Workload(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    # parameter -> (default, minimum, maximum); all integers
    PARAMS: ClassVar[dict[str, tuple[int, int, int]]]
    # text parameter -> (default, most UTF-8 octets): a prompt
    TEXT: ClassVar[dict[str, tuple[str, int]]] = {}
    STATE_DTYPE: ClassVar[type] = np.float64  # what the state regions hold
    STATE_DTYPES: ClassVar[dict[str, type]] = {}  # a region that holds something else
    checking = True  # whether the job is protected (the runner says): checks of its own too
    # A step that acts on nothing outside itself before it commits may have its checks
    # held to its end (flight.compute.abft.Deferred), the context's and its own.
    DEFERS_CHECKS: ClassVar[bool] = False

    def state_dtype(self, name: str) -> type:
        return self.STATE_DTYPES.get(name, self.STATE_DTYPE)

    def __init__(self, seed: int = 0, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.PARAMS) - set(self.TEXT))
        if unknown:
            raise JobParameterError(f"{self.name}: unknown parameter {unknown[0]!r} "
                                    f"(expected {', '.join([*self.PARAMS, *self.TEXT])})")
        self.seed = seed
        self.params: dict[str, int] = {}
        for key, (default, lo, hi) in self.PARAMS.items():
            value = params.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise JobParameterError(f"{self.name}: {key} = {value!r} is outside {lo}..{hi}")
            self.params[key] = value
        self.text: dict[str, str] = {}
        for key, (default_text, most) in self.TEXT.items():
            text = params.get(key, default_text)
            if not isinstance(text, str) or not text or len(text.encode()) > most:
                raise JobParameterError(f"{self.name}: {key} must be text of 1..{most} UTF-8 "
                                        f"octets, got {text!r}"[:200])
            self.text[key] = text

    @property
    def steps(self) -> int:
        return self.params["steps"]

    def rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    @abstractmethod
    def golden(self) -> dict[str, np.ndarray]:
        """Read-only data, regenerated identically on every call (the model file)."""

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The evolving state; none for a workload whose steps are independent."""
        return {}

    def init_state(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027 - optional hook
        """Fill freshly zeroed state (step 0)."""

    @abstractmethod
    def prepare(self, golden: dict[str, np.ndarray]) -> None:
        """Take checksums of the golden data as loaded."""

    def state_committed(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027 - optional
        """State was just updated and committed (checksums of evolving operands)."""

    @abstractmethod
    def step(self, i: int, ctx: StepContext, golden: dict[str, np.ndarray],
             state: dict[str, np.ndarray]) -> Updates:
        """Step i's state updates. State may be read only where the step also writes it:
        those blocks are checked before the updates land, and the step rerun if hit."""

    @abstractmethod
    def result(self, state: dict[str, np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
        """The job's result, from its final state and the outputs of its steps in order."""


class QuantizedMLP(Workload):
    """Int8 MLP inference over batches: x -> relu(x W1) >> shift, clipped to int8 -> W2."""

    name = "mlp"
    description = "quantized MLP inference, one batch a step"
    PARAMS = {
        "steps": (16, 1, 100_000), "batch": (32, 1, 1024), "inputs": (128, 1, 4096),
        "hidden": (128, 1, 4096), "outputs": (32, 1, 4096), "shift": (7, 0, 30),
    }

    def golden(self) -> dict[str, np.ndarray]:
        p, rng = self.params, self.rng(0)
        return {
            "w1": rng.integers(-127, 128, (p["inputs"], p["hidden"])).astype(np.float64),
            "w2": rng.integers(-127, 128, (p["hidden"], p["outputs"])).astype(np.float64),
        }

    def prepare(self, golden: dict[str, np.ndarray]) -> None:
        self.sums = {name: RightSums.of(w) for name, w in golden.items()}

    def step(self, i: int, ctx: StepContext, golden: dict[str, np.ndarray],
             state: dict[str, np.ndarray]) -> Updates:
        p = self.params
        x = self.rng(1, i).integers(-127, 128, (p["batch"], p["inputs"])).astype(np.float64)
        x = ctx.boundary("x", x)
        h = ctx.gemm(x, golden["w1"], right=self.sums["w1"], what="layer 1")
        h = np.clip(np.floor(np.maximum(h, 0.0) / 2.0 ** p["shift"]), 0.0, 127.0)
        h = ctx.boundary("h", h)
        ctx.emit(ctx.gemm(h, golden["w2"], right=self.sums["w2"], what="layer 2"))
        return {}

    def result(self, state: dict[str, np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(outputs)


class LinearTraining(Workload):
    """Least-squares training of a linear model in Q16 fixed point, one minibatch a step.

    W <- W - floor(X_b^T (floor(X_b W / 2^16) - Y_b) * 2^(16 - lr_shift)); every value
    is an integer, so the run is exact and the same on every backend.
    """

    name = "train"
    description = "fixed-point linear regression by minibatch gradient descent"
    PARAMS = {
        "steps": (32, 1, 100_000), "batch": (32, 1, 8192), "features": (64, 1, 1024),
        "outputs": (8, 1, 4096), "batches": (8, 1, 1024), "lr_shift": (17, 10, 40),
    }
    FRAC_BITS = 16

    def golden(self) -> dict[str, np.ndarray]:
        """The training set, x as one (batch x features) matrix a batch. Protected, each
        carries its checksums as a border: [[X, X e, X w], [e^T X], [w^T X]] (b + 2 x
        f + 2), so that the forward product makes its own wanted column sums from the two
        rows below and the gradient's from the two columns beside (abft.AppendedRows)."""
        p, rng = self.params, self.rng(0)
        rows = p["batch"] * p["batches"]
        x = rng.integers(-15, 16, (rows, p["features"])).astype(np.float64)
        truth = rng.integers(-8, 9, (p["features"], p["outputs"])).astype(np.float64)
        noise = rng.integers(-2, 3, (rows, p["outputs"])).astype(np.float64)
        y = x @ truth + noise
        batches = x.reshape(p["batches"], p["batch"], p["features"])
        if self.checking:
            batches = np.stack([with_column_sums(with_sums(xb)) for xb in batches])
        return {"x": batches, "y": y}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"w": (self.params["features"], self.params["outputs"])}

    def prepare(self, golden: dict[str, np.ndarray]) -> None:
        pass  # the batches carry their checksums

    def step(self, i: int, ctx: StepContext, golden: dict[str, np.ndarray],
             state: dict[str, np.ndarray]) -> Updates:
        b, f, k = self.params["batch"], self.params["features"], i % self.params["batches"]
        xk = golden["x"][k]  # protected, with its border: rows b, b + 1 and columns f, f + 1
        yb = ctx.golden_rows("y", k * b, (k + 1) * b)
        left = APPENDED_ROWS if self.checking else None
        # The batch's column checksums vouch for both products and for X; W is vouched
        # for by its CRCs, checked before the step's write of it (a hit W fails that
        # check and the step runs again), and the residual by its boundary's CRC.
        pred = ctx.gemm(xk[:, :f], state["w"], left=left, what="forward")
        r = ctx.boundary("residual", np.floor(pred / 2.0 ** self.FRAC_BITS) - yb)
        grad = ctx.gemm(xk[:b].T, r, left=left, what="gradient")
        step = np.floor(grad * 2.0 ** (self.FRAC_BITS - self.params["lr_shift"]))
        return {"w": (slice(None), state["w"] - step)}

    def result(self, state: dict[str, np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
        return state["w"].copy()
