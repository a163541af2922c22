"""A decoder-only, byte-level transformer of the nanoGPT class, trained in float32 on
the numpy data plane with every GEMM checked.

The model: token and position embeddings, `layers` blocks of pre-norm causal
multi-head self-attention and a GELU MLP (4x wide) with residuals, a final layer norm
and an untied output head; cross-entropy over the next byte; AdamW (decoupled weight
decay on the matrices, none on biases, gains and embeddings) with the gradient clipped
to a global norm of 1. Forward and backward are written out here, so that each GEMM
goes through the step context (flight.compute.abft: the float32 bound) and nothing
is left to a framework's choice of kernels or reduction order.

Parameters, both Adam moments and the loss history are the job's state: flat float32
vectors in shielded regions, checkpointed, updated whole by each step. The corpus,
the golden data, is bytes the flight software carries (flight.compute.corpus).

Non-GEMM operations carry cheap checks, each one pass over what it checks, raising
InvariantBroken (a rerun) when broken:
- softmax: every row of attention weights in [0, 1] summing to 1 within its rounding;
- layer norm: every normalised row has mean 0 and mean square 1 within its rounding;
- GELU: outputs between the function's minimum (-0.17) and the largest input;
- the loss: finite and not negative (each term is a log-sum-exp minus one of its own
  terms);
- the update, in the pass that makes it: every parameter finite and moved by no more
  than Adam's step can move it (lr times `adamw_bound(t)`, plus its decay), each
  moment finite and within its recurrence's bounds (an exponent or sign flip of a
  parameter larger than about lr is seen).
They see an operation that went wrong grossly; a small slip inside one is not caught
(the fault model strikes memory and GEMMs, which the shield and ABFT hold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from flight.compute.abft import Check, ComputeFault, Deferred, FloatRightSums, verify
from flight.compute.corpus import corpus
from flight.compute.workloads import JobParameterError, StepContext, Updates, Workload
from flight.shield import adamw_step, gelu_check, layernorm_check, softmax_check

F32 = np.float32
LN_EPS = 1e-5
BETA1, BETA2, ADAM_EPS = 0.9, 0.95, 1e-8
GELU_C = math.sqrt(2.0 / math.pi)
GELU_MIN = -0.1701  # the tanh form's minimum is -0.170041 at x = -0.752


class InvariantBroken(ComputeFault):
    mechanism = "invariant"


def check_heads(workload: str, width: int, heads: int) -> None:
    if width % heads:
        raise JobParameterError(f"{workload}: width {width} is not a multiple of heads {heads}")


class HostContext:
    """A step context that only computes, in plain numpy and in any dtype: for a job
    run off the device with no protection (making the model a generation serves)."""

    def __init__(self, golden: dict[str, np.ndarray]) -> None:
        self.golden = golden
        self.later = Deferred()  # nothing is checked here, so nothing is held

    def gemm(self, a: np.ndarray, b: np.ndarray, **_: Any) -> np.ndarray:
        return np.matmul(a, b)

    def boundary(self, name: str, values: np.ndarray) -> np.ndarray:
        return values

    def golden_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        return self.golden[name][start:stop]

    def state_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError("a host context holds no state")

    def emit(self, values: np.ndarray) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    shape: tuple[int, ...]
    offset: int
    decay: bool  # a matrix of a projection: weight decay applies

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def layout(vocab: int, context: int, layers: int, width: int) -> list[Param]:
    """Every parameter's place in the flat vector, in a fixed order."""
    shapes: list[tuple[str, tuple[int, ...], bool]] = [
        ("wte", (vocab, width), False), ("wpe", (context, width), False)]
    for n in range(layers):
        shapes += [
            (f"h{n}.ln1.g", (width,), False), (f"h{n}.ln1.b", (width,), False),
            (f"h{n}.qkv.w", (width, 3 * width), True), (f"h{n}.qkv.b", (3 * width,), False),
            (f"h{n}.proj.w", (width, width), True), (f"h{n}.proj.b", (width,), False),
            (f"h{n}.ln2.g", (width,), False), (f"h{n}.ln2.b", (width,), False),
            (f"h{n}.fc.w", (width, 4 * width), True), (f"h{n}.fc.b", (4 * width,), False),
            (f"h{n}.out.w", (4 * width, width), True), (f"h{n}.out.b", (width,), False)]
    shapes += [("lnf.g", (width,), False), ("lnf.b", (width,), False),
               ("head.w", (width, vocab), True)]
    out, offset = [], 0
    for name, shape, decay in shapes:
        out.append(Param(name, shape, offset, decay))
        offset += math.prod(shape)
    return out


def views(flat: np.ndarray, params: list[Param]) -> dict[str, np.ndarray]:
    return {p.name: flat[p.offset:p.offset + p.size].reshape(p.shape) for p in params}


class TransformerTraining(Workload):
    """nanoGPT-class byte-level language model training, one minibatch a step."""

    name = "transformer"
    description = "decoder-only byte-level transformer trained with AdamW, float32"
    STATE_DTYPE = F32
    VOCAB = 256
    PARAMS = {
        "steps": (8, 1, 100_000), "batch": (4, 1, 256), "context": (32, 4, 1024),
        "layers": (2, 1, 24), "heads": (2, 1, 32), "width": (64, 8, 2048),
        "lr_e6": (3000, 1, 100_000),  # learning rate, millionths
        "weight_decay_e3": (100, 0, 1000),  # thousandths
        "corpus_kb": (64, 1, 4096),
    }

    def __init__(self, seed: int = 0, **params: int) -> None:
        super().__init__(seed, **params)
        p = self.params
        check_heads(self.name, p["width"], p["heads"])
        self.layout = layout(self.VOCAB, p["context"], p["layers"], p["width"])
        self.size = sum(q.size for q in self.layout)
        self.decay_mask = np.zeros(self.size, F32)
        for q in self.layout:
            if q.decay:
                self.decay_mask[q.offset:q.offset + q.size] = 1.0
        self.sums: dict[str, FloatRightSums] = {}
        self._updated: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- the job's data -------------------------------------------------------------

    def golden(self) -> dict[str, np.ndarray]:
        text = corpus(self.params["corpus_kb"] * 1024)
        if len(text) < self.params["context"] + 2:
            raise JobParameterError(f"{self.name}: the corpus ({len(text)} bytes) is shorter "
                                    f"than the context ({self.params['context']}) + 2")
        return {"tokens": np.frombuffer(text, np.uint8).copy()}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"w": (self.size,), "m": (self.size,), "v": (self.size,),
                "loss": (self.steps,)}

    def init_state(self, state: dict[str, np.ndarray]) -> None:
        """Normal(0, 0.02) weights, the residual projections scaled by 1/sqrt(2 layers)
        (as GPT-2), zero biases, unit gains."""
        rng = self.rng(0)
        w = views(state["w"], self.layout)
        residual = 0.02 / math.sqrt(2 * self.params["layers"])
        for q in self.layout:
            leaf = q.name.rsplit(".", 1)[-1]
            if leaf == "g":
                w[q.name][...] = 1.0
            elif leaf == "b":
                w[q.name][...] = 0.0
            else:
                std = residual if q.name.endswith(("proj.w", "out.w")) else 0.02
                w[q.name][...] = rng.normal(0.0, std, q.shape).astype(F32)

    def prepare(self, golden: dict[str, np.ndarray]) -> None:
        pass

    def state_committed(self, state: dict[str, np.ndarray]) -> None:
        """Checksums of every weight matrix as committed, for the forward (W) and the
        backward (W^T) GEMMs, so that a weight hit in memory after this shows in the
        products (none in an unprotected job, which checks nothing)."""
        self.sums = {}
        if not self.checking:
            return
        w = views(state["w"], self.layout)
        for q in self.layout:
            if q.decay:
                self.sums[q.name] = FloatRightSums.of(w[q.name])
                self.sums[q.name + "^T"] = FloatRightSums.of(w[q.name].T)

    # -- one step --------------------------------------------------------------------

    def batch(self, i: int, ctx: StepContext, golden: dict[str, np.ndarray]) -> np.ndarray:
        """Step i's sequences, (batch, context + 1) token ids, through the shield's
        spot check of the corpus blocks they come from."""
        p = self.params
        n = golden["tokens"].size - p["context"] - 1
        starts = self.rng(1, i).integers(0, n, p["batch"])
        return np.stack([ctx.golden_rows("tokens", int(s), int(s) + p["context"] + 1)
                         for s in starts]).astype(np.intp)

    def step(self, i: int, ctx: StepContext, golden: dict[str, np.ndarray],
             state: dict[str, np.ndarray]) -> Updates:
        tokens = self.batch(i, ctx, golden)
        w = views(state["w"], self.layout)
        loss, grads = Model(self, ctx, w).loss_and_grads(tokens[:, :-1], tokens[:, 1:])
        if self._updated is None:  # where each step's new values go, until they commit
            self._updated = (np.empty(self.size, F32), np.empty(self.size, F32),
                             np.empty(self.size, F32))
        new_w, new_m, new_v = adamw(state["w"], state["m"], state["v"], grads, i + 1,
                                    self.params["lr_e6"] * 1e-6,
                                    self.params["weight_decay_e3"] * 1e-3, self.decay_mask,
                                    self.checking, out=self._updated)
        return {"w": (slice(None), new_w), "m": (slice(None), new_m),
                "v": (slice(None), new_v), "loss": (slice(i, i + 1), np.array([loss], F32))}

    def result(self, state: dict[str, np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
        """The loss of every step, then the final parameters."""
        return np.concatenate([state["loss"], state["w"]])


class Model:
    """One forward and backward pass over a batch, with the step's checked GEMMs."""

    def __init__(self, job: TransformerTraining, ctx: StepContext,
                 w: dict[str, np.ndarray]) -> None:
        self.job, self.ctx, self.w = job, ctx, w
        self.heads = job.params["heads"]
        self.check = job.checking

    def mm(self, a: np.ndarray, b: np.ndarray, what: str, weight: str | None = None) -> np.ndarray:
        right = self.job.sums[weight] if weight is not None and self.check else None
        return self.ctx.gemm(a, b, right=right, what=what)

    def loss_and_grads(self, idx: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        job, w = self.job, self.w
        batch, context = idx.shape
        width = job.params["width"]
        n = batch * context
        x = (w["wte"][idx] + w["wpe"][:context]).reshape(n, width)
        caches = []
        for layer in range(job.params["layers"]):
            x = self.ctx.boundary(f"resid{layer}", x)
            x, cache = self.block(layer, x, batch, context)
            caches.append(cache)
        hf, lnf = layernorm(x, w["lnf.g"], w["lnf.b"], self.check)
        logits = self.mm(hf, w["head.w"], "head", "head.w")
        loss, dlogits = cross_entropy(logits, targets.reshape(-1), self.check)

        g = np.zeros(job.size, w["wte"].dtype)
        grads = views(g, job.layout)
        grads["head.w"][...] = self.mm(hf.T, dlogits, "head dW")
        dx = layernorm_backward(self.mm(dlogits, w["head.w"].T, "head dX", "head.w^T"), lnf,
                                grads["lnf.g"], grads["lnf.b"])
        for layer in reversed(range(job.params["layers"])):
            dx = self.block_backward(layer, dx, caches[layer], grads, batch, context)
        dx = dx.reshape(batch, context, width)
        np.add.at(grads["wte"], idx, dx)
        grads["wpe"][:context] = dx.sum(axis=0)
        return loss, g

    def block(self, layer: int, x: np.ndarray, batch: int, context: int) -> tuple[np.ndarray, Any]:
        w, h = self.w, f"h{layer}"
        n, width = x.shape
        heads, hd = self.heads, width // self.heads
        a_in, ln1 = layernorm(x, w[f"{h}.ln1.g"], w[f"{h}.ln1.b"], self.check)
        qkv = self.mm(a_in, w[f"{h}.qkv.w"], f"{h} qkv", f"{h}.qkv.w") + w[f"{h}.qkv.b"]
        q, k, v = (qkv[:, j * width:(j + 1) * width].reshape(batch, context, heads, hd)
                   .transpose(0, 2, 1, 3) for j in range(3))
        q = np.ascontiguousarray(q * F32(1.0 / math.sqrt(hd)))
        k, v = np.ascontiguousarray(k), np.ascontiguousarray(v)
        scores = self.mm(q, k.transpose(0, 1, 3, 2), f"{h} QK^T")
        probs = softmax_causal(scores, self.check)
        y = self.mm(probs, v, f"{h} attention x V")
        y = y.transpose(0, 2, 1, 3).reshape(n, width)
        x = x + self.mm(y, w[f"{h}.proj.w"], f"{h} proj", f"{h}.proj.w") + w[f"{h}.proj.b"]
        m_in, ln2 = layernorm(x, w[f"{h}.ln2.g"], w[f"{h}.ln2.b"], self.check)
        f = self.mm(m_in, w[f"{h}.fc.w"], f"{h} fc", f"{h}.fc.w") + w[f"{h}.fc.b"]
        gf = gelu(f, self.check)
        x = x + self.mm(gf, w[f"{h}.out.w"], f"{h} out", f"{h}.out.w") + w[f"{h}.out.b"]
        return x, (a_in, ln1, q, k, v, probs, y, m_in, ln2, f, gf)

    def block_backward(self, layer: int, dx: np.ndarray, cache: Any,
                       grads: dict[str, np.ndarray], batch: int, context: int) -> np.ndarray:
        w, h = self.w, f"h{layer}"
        a_in, ln1, q, k, v, probs, y, m_in, ln2, f, gf = cache
        n, width = dx.shape
        heads, hd = self.heads, width // self.heads
        # MLP
        grads[f"{h}.out.b"][...] = dx.sum(axis=0)
        grads[f"{h}.out.w"][...] = self.mm(gf.T, dx, f"{h} out dW")
        df = self.mm(dx, w[f"{h}.out.w"].T, f"{h} out dX", f"{h}.out.w^T") * gelu_grad(f)
        grads[f"{h}.fc.b"][...] = df.sum(axis=0)
        grads[f"{h}.fc.w"][...] = self.mm(m_in.T, df, f"{h} fc dW")
        dx = dx + layernorm_backward(self.mm(df, w[f"{h}.fc.w"].T, f"{h} fc dX",
                                             f"{h}.fc.w^T"),
                                     ln2, grads[f"{h}.ln2.g"], grads[f"{h}.ln2.b"])
        # attention
        grads[f"{h}.proj.b"][...] = dx.sum(axis=0)
        grads[f"{h}.proj.w"][...] = self.mm(y.T, dx, f"{h} proj dW")
        dy = self.mm(dx, w[f"{h}.proj.w"].T, f"{h} proj dX", f"{h}.proj.w^T")
        dy = np.ascontiguousarray(dy.reshape(batch, context, heads, hd).transpose(0, 2, 1, 3))
        dprobs = self.mm(dy, v.transpose(0, 1, 3, 2), f"{h} dP")
        dv = self.mm(probs.transpose(0, 1, 3, 2), dy, f"{h} dV")
        dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))
        dq = self.mm(dscores, k, f"{h} dQ") * F32(1.0 / math.sqrt(hd))
        dk = self.mm(dscores.transpose(0, 1, 3, 2), q, f"{h} dK")
        dqkv = np.concatenate([d.transpose(0, 2, 1, 3).reshape(n, width)
                               for d in (dq, dk, dv)], axis=1)
        grads[f"{h}.qkv.b"][...] = dqkv.sum(axis=0)
        grads[f"{h}.qkv.w"][...] = self.mm(a_in.T, dqkv, f"{h} qkv dW")
        return dx + layernorm_backward(self.mm(dqkv, w[f"{h}.qkv.w"].T, f"{h} qkv dX",
                                               f"{h}.qkv.w^T"),
                                       ln1, grads[f"{h}.ln1.g"], grads[f"{h}.ln1.b"])


# -- the non-GEMM operations, each with its check --------------------------------------

def layernorm(x: np.ndarray, g: np.ndarray, b: np.ndarray,
              check: Check = True) -> tuple[np.ndarray, Any]:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    rstd = F32(1.0) / np.sqrt(var + F32(LN_EPS))
    xhat = xc * rstd
    verify(check, _check_layernorm, xhat, mu, rstd, var)
    return xhat * g + b, (xhat, rstd, g)


def _check_layernorm(xhat: np.ndarray, mu: np.ndarray, rstd: np.ndarray,
                     var: np.ndarray) -> None:
    """Each normalised row has mean 0 and mean square var / (var + eps), to within the
    rounding of the subtraction of a mean |mu| rstd standard deviations away (gamma =
    4 cols 2^-24; one kernel pass, shield.h)."""
    if layernorm_check(xhat, mu, rstd, var, LN_EPS) >= 0:
        raise InvariantBroken("layer norm: a normalised row's mean or variance is off")


def layernorm_backward(dy: np.ndarray, cache: Any, dg: np.ndarray, db: np.ndarray) -> np.ndarray:
    xhat, rstd, g = cache
    dg[...] = (dy * xhat).sum(axis=0)
    db[...] = dy.sum(axis=0)
    dxhat = dy * g
    return rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                   - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))


def softmax_causal(scores: np.ndarray, check: Check = True) -> np.ndarray:
    """Softmax over the last axis with position i seeing positions 0..i."""
    return softmax_masked(scores, np.tri(scores.shape[-1], dtype=bool), check)


def softmax_masked(scores: np.ndarray, mask: np.ndarray, check: Check = True) -> np.ndarray:
    """Softmax over the last axis, over the entries `mask` lets each row see (every row
    sees at least one)."""
    masked = np.where(mask, scores, F32(-np.inf))
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    probs = e / e.sum(axis=-1, keepdims=True)
    verify(check, _check_softmax, probs)
    return probs


def _check_softmax(probs: np.ndarray) -> None:
    if softmax_check(probs, 4 * probs.shape[-1] * 2.0 ** -24) >= 0:  # NaN fails
        raise InvariantBroken("softmax: attention weights do not sum to 1")


def gelu(x: np.ndarray, check: Check = True) -> np.ndarray:
    y = F32(0.5) * x * (F32(1.0) + np.tanh(F32(GELU_C) * (x + F32(0.044715) * x * x * x)))
    verify(check, _check_gelu, x, y)
    return y


def _check_gelu(x: np.ndarray, y: np.ndarray) -> None:
    if not gelu_check(x, y, GELU_MIN):  # NaN fails
        low, high = float(y.min()), float(y.max())
        raise InvariantBroken(f"GELU: outputs in [{low}, {high}], outside its range")


def gelu_grad(x: np.ndarray) -> np.ndarray:
    inner = F32(GELU_C) * (x + F32(0.044715) * x * x * x)
    t = np.tanh(inner)
    return (F32(0.5) * (F32(1.0) + t)
            + F32(0.5) * x * (F32(1.0) - t * t) * F32(GELU_C)
            * (F32(1.0) + F32(3 * 0.044715) * x * x))


def cross_entropy(logits: np.ndarray, targets: np.ndarray,
                  check: bool = True) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    n = logits.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):  # NaN is for the check below
        shifted = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=-1, keepdims=True)
        terms = np.log(total)[:, 0] - shifted[np.arange(n), targets]
    loss = float(terms.mean(dtype=np.float64))
    if check and not (math.isfinite(loss) and terms.min() >= -1e-5):
        raise InvariantBroken(f"loss: {loss!r} is not a finite cross-entropy")
    grad = e / total
    grad[np.arange(n), targets] -= F32(1.0)
    return loss, grad * F32(1.0 / n)


def adamw(w: np.ndarray, m: np.ndarray, v: np.ndarray, g: np.ndarray, t: int, lr: float,
          weight_decay: float, decay_mask: np.ndarray, check: bool = True,
          out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One AdamW step (t counts from 1), the gradient first clipped to norm 1, into new
    arrays (`out` when given; the state stays as it was until the step commits), in one
    pass of the shield kernel (sk_adamw): for each parameter, in float32 and in this
    order, g s (s = 1 / |g| when |g| > 1), m' = m b1 + (1 - b1) g s, v' = v b2 +
    (g s)^2 (1 - b2), w' = w - ((m' lr / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps)
    + (mask lr wd) w). Checked in the same pass (`adamw_bound`): w' finite and moved by
    no more than Adam's step and its decay can move it, m' and v' within their
    recurrences' bounds."""
    norm = math.sqrt(float(np.dot(g, g)))
    if not math.isfinite(norm):
        raise InvariantBroken("update: the gradient is not finite")
    constants = np.array([1.0 / norm if norm > 1.0 else 1.0, BETA1, 1 - BETA1, BETA2,
                          1 - BETA2, 1.0 / (1 - BETA2 ** t), ADAM_EPS, lr / (1 - BETA1 ** t),
                          lr * weight_decay, lr * adamw_bound(t) * (1 + 2.0 ** -10)], F32)
    new = out or (np.empty_like(w), np.empty_like(m), np.empty_like(v))
    bad = adamw_step(w, m, v, g, decay_mask, constants, new, check)
    if bad >= 0:
        raise InvariantBroken(f"update: parameter {bad}'s new value or moments are not what "
                              "the step can make of them")
    return new


def adamw_bound(t: int) -> float:
    """The most Adam's bias-corrected step |m^ / (sqrt(v^) + eps)| can be at step t, for
    any gradients: by Cauchy-Schwarz over the moments' sums, |m_t| <= (1 - b1)
    sqrt(sum_j<t r^j) sqrt(v_t / (1 - b2)) with r = b1^2 / b2 < 1, so the step is at
    most (1 - b1) / sqrt(1 - b2) sqrt((1 - r^t) / (1 - r)) sqrt(1 - b2^t) / (1 - b1^t)
    (1 at t = 1, where the step is lr sign(g); 1.165 in the limit)."""
    r = BETA1 ** 2 / BETA2
    return ((1 - BETA1) / math.sqrt(1 - BETA2) * math.sqrt((1 - r ** t) / (1 - r))
            * math.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t))
