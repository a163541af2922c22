"""Serving the transformer: greedy autoregressive generation from a prompt, with a KV
cache, int8 weights and exact integer GEMMs.

The model served is one flight.compute.transformer trained: with `model_job`, the final
parameters of that finished transformer job, which the compute manager hands over
(`serve`) from its stored result; without, `train_steps` steps of the same architecture,
seed and corpus run on the host when the job starts (computed once per process and
cached). Either is quantized to int8 per output channel (scale max|w| / 127). Every
GEMM multiplies int8-valued operands: activations are quantized per row the same way,
attention weights are folded with the value scales and quantized per row, so each
product is an integer GEMM with integer accumulation (|sum| <= 127^2 k, far inside
float64's exact range and int32's), checked exactly by ABFT (flight.compute.abft).
Layer norm, softmax and GELU run in float32, with the checks of
flight.compute.transformer.

Step 0 runs the prompt through the model (prefill) and picks the first token; each
later step runs the token before it at the next position. Keys and values of every
position are kept quantized in the KV cache, a state region: rows a step reads and
does not write are spot-checked against their CRCs. The tokens produced, one a step,
are the job's result: they must equal a fault-free run's exactly.

A step's every effect is its state update, so it holds all its checks (the products',
the activations', the spot checks and its own) to its end (DEFERS_CHECKS,
abft.Deferred): run between two memory-bound GEMMs a check is a cold call, held they
run together, and any that fails runs the step again before anything of it commits.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from flight.compute.abft import APPENDED, RightSums, sum_weights, with_sums
from flight.compute.transformer import (
    F32,
    HostContext,
    TransformerTraining,
    check_heads,
    gelu,
    layernorm,
    softmax_masked,
    views,
)
from flight.compute.workloads import JobParameterError, StepContext, Updates, Workload

QMAX = 127.0
# What a served model's transformer job fixes for the generation job (its layout).
ARCHITECTURE = ("layers", "heads", "width", "context", "corpus_kb")


@functools.lru_cache(maxsize=4)
def trained_weights(seed: int, layers: int, heads: int, width: int, context: int,
                    train_steps: int, corpus_kb: int) -> bytes:
    """The float32 parameters after `train_steps` steps of TransformerTraining, run on
    the host without protection."""
    job = TransformerTraining(seed, steps=max(train_steps, 1), layers=layers, heads=heads,
                              width=width, context=context, corpus_kb=corpus_kb,
                              batch=4)
    job.checking = False
    state = {name: np.zeros(shape, F32) for name, shape in job.state_shapes().items()}
    job.init_state(state)
    host = HostContext(job.golden())
    for i in range(train_steps):
        for name, (index, values) in job.step(i, host, host.golden, state).items():
            state[name][index] = values
    return state["w"].tobytes()


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 values (as float64) and float64 scales, one a row: x ~ q * scale."""
    top = np.abs(x).max(axis=-1, keepdims=True).astype(np.float64)
    scale = np.where(top > 0, top / QMAX, 1.0)
    with np.errstate(invalid="ignore"):  # an inf or NaN hit goes on to fail a check
        return np.clip(np.rint(x / scale), -QMAX, QMAX), scale


class Generation(Workload):
    """Greedy generation from a prompt by the int8 transformer, one token a step."""

    name = "generate"
    description = "int8 transformer inference with a KV cache: a prompt in, tokens out"
    PARAMS = {
        "steps": (16, 1, 4096),  # tokens to generate
        "context": (64, 4, 1024), "layers": (2, 1, 24), "heads": (2, 1, 32),
        "width": (64, 8, 2048), "train_steps": (200, 0, 10_000), "corpus_kb": (64, 1, 4096),
        "model_job": (0, 0, 2**31 - 1),  # the transformer job whose weights it serves
    }
    TEXT = {"prompt": ("def ", 1024)}
    STATE_DTYPES = {"cache": np.int8}  # keys and values are int8: one byte each
    DEFERS_CHECKS = True  # a step's every effect is its state update
    EMBEDDINGS = ("wte", "wpe")  # read a row at a time, so kept apart from the rest

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(seed, **params)
        p = self.params
        check_heads(self.name, p["width"], p["heads"])
        self.prompt = np.frombuffer(self.text["prompt"].encode(), np.uint8).astype(np.intp)
        if self.prompt.size + p["steps"] - 1 > p["context"]:
            raise JobParameterError(
                f"{self.name}: a {self.prompt.size}-byte prompt and {p['steps']} tokens do not "
                f"fit a context of {p['context']}")
        self.model = TransformerTraining(seed, layers=p["layers"], heads=p["heads"],
                                         width=p["width"], context=p["context"],
                                         corpus_kb=p["corpus_kb"], steps=1)
        # Every matrix's column scales in one region, in layout order: one CRC-checked
        # read a step instead of one a product.
        self.scale_at: dict[str, tuple[int, int]] = {}
        offset = 0
        for q in self.model.layout:
            if q.decay:
                self.scale_at[q.name] = (offset, offset + q.shape[-1])
                offset += q.shape[-1]
        self._scales = np.zeros(0)
        self.weights: np.ndarray | None = None  # a model job's parameters (serve)

    def serve(self, result: np.ndarray) -> None:
        """Serve the parameters a transformer job of this architecture finished with: its
        result, the loss of every step and then the parameters."""
        size = self.model.size
        if result.dtype != F32 or result.ndim != 1 or result.size <= size:
            raise JobParameterError(
                f"{self.name}: job {self.params['model_job']}'s result ({result.size} "
                f"{result.dtype} values) does not hold the {size} float32 parameters of "
                f"this model (layers {self.params['layers']}, width {self.params['width']}, "
                f"context {self.params['context']})")
        self.weights = result[-size:].copy()

    def golden(self) -> dict[str, np.ndarray]:
        """The int8 matrices (protected, each with its two checksum columns), their column
        scales (one vector, `scale_at`), and the float32 rest (embeddings, layer norms,
        biases) as one vector."""
        p = self.params
        if p["model_job"]:
            if self.weights is None:
                raise JobParameterError(f"{self.name}: the weights of job {p['model_job']} "
                                        "were not given")
            flat = self.weights
        else:
            flat = np.frombuffer(trained_weights(self.seed, p["layers"], p["heads"], p["width"],
                                                 p["context"], p["train_steps"],
                                                 p["corpus_kb"]), F32)
        w = views(flat, self.model.layout)
        out: dict[str, np.ndarray] = {}
        rest, scales = [], []
        for q in self.model.layout:
            if q.decay:
                values, scale = quantize_rows(w[q.name].T)  # per output channel
                # Protected, each matrix carries its row checksums as two more columns:
                # the product then makes its own wanted checksums (abft.AppendedSums).
                matrix = np.ascontiguousarray(values.T)
                out[f"q.{q.name}"] = with_sums(matrix) if self.checking else matrix
                scales.append(scale[:, 0])
            elif q.name in self.EMBEDDINGS:
                out[q.name] = w[q.name].copy()
            else:
                rest.append(w[q.name].reshape(-1))
        out["float"] = np.concatenate(rest)
        out["scales"] = np.concatenate(scales)
        return out

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        p = self.params
        return {"cache": (p["context"], p["layers"], 2, p["width"]),
                "scales": (p["context"], p["layers"], 2, p["heads"]),
                # The cache's row checksums as the attention products take them, kept as
                # rows are added (O(width) a token, not a read of the whole cache): for
                # QK^T each key entry's sum over positions and its sum weighted by
                # position + 1; for attention x V each value row's sum and its sum
                # weighted 1..head width, a head at a time.
                "ksums": (p["layers"], p["width"], 2),
                "vsums": (p["context"], p["layers"], p["heads"], 2),
                "out": (self.steps,)}

    def prepare(self, golden: dict[str, np.ndarray]) -> None:
        self.float_layout = [q for q in self.model.layout
                             if not q.decay and q.name not in self.EMBEDDINGS]

    def step(self, i: int, ctx: StepContext, golden: dict[str, np.ndarray],
             state: dict[str, np.ndarray]) -> Updates:
        p = self.params
        prompt = self.prompt
        if i == 0:
            tokens, start = prompt, 0
        else:
            last = ctx.state_rows("out", i - 1, i)
            tokens, start = last.astype(np.intp), prompt.size + i - 1
        n = tokens.size
        flat = ctx.golden_rows("float", 0, golden["float"].size)
        # The scales are no GEMM operand, so no ABFT sees them: their blocks are checked,
        # and the step works from a copy taken then (what strikes the region later in
        # the step, at a boundary's wait, cannot reach the products).
        self._scales = ctx.golden_rows("scales", 0, golden["scales"].size).copy()
        fw: dict[str, np.ndarray] = {}
        offset = 0
        for q in self.float_layout:
            fw[q.name] = flat[offset:offset + q.size].reshape(q.shape)
            offset += q.size
        past = ctx.state_rows("cache", 0, start)
        past_scales = ctx.state_rows("scales", 0, start)
        past_vsums = ctx.state_rows("vsums", 0, start)
        ksums = ctx.state_rows("ksums", 0, p["layers"]).copy()  # written whole below
        new_vsums = np.zeros((n, p["layers"], p["heads"], 2))
        new_cache = np.zeros((n, p["layers"], 2, p["width"]), np.int8)
        new_scales = np.zeros((n, p["layers"], 2, p["heads"]))
        # Only the embedding rows the step reads are checked, not the tables.
        wte = np.stack([ctx.golden_rows("wte", t, t + 1)[0] for t in tokens.tolist()])
        x = (wte + ctx.golden_rows("wpe", start, start + n)).astype(F32)
        check = ctx.later if self.checking else False  # held to the step's end (DEFERS_CHECKS)
        for layer in range(p["layers"]):
            h = f"h{layer}"
            x = ctx.boundary(f"resid{layer}", x)
            a_in, _ = layernorm(x, fw[f"{h}.ln1.g"], fw[f"{h}.ln1.b"], check)
            qkv = self._qmm(ctx, golden, a_in, f"{h}.qkv.w") + fw[f"{h}.qkv.b"]
            y = self._attend(ctx, qkv, layer, start, past, past_scales, new_cache, new_scales,
                             ksums, past_vsums, new_vsums)
            x = x + self._qmm(ctx, golden, y, f"{h}.proj.w") + fw[f"{h}.proj.b"]
            m_in, _ = layernorm(x, fw[f"{h}.ln2.g"], fw[f"{h}.ln2.b"], check)
            f = gelu(self._qmm(ctx, golden, m_in, f"{h}.fc.w") + fw[f"{h}.fc.b"], check)
            x = x + self._qmm(ctx, golden, f, f"{h}.out.w") + fw[f"{h}.out.b"]
        hf, _ = layernorm(x[-1:], fw["lnf.g"], fw["lnf.b"], check)
        logits = self._qmm(ctx, golden, hf, "head.w")[0]
        token = float(np.argmax(logits))
        return {"cache": (slice(start, start + n), new_cache),
                "scales": (slice(start, start + n), new_scales),
                "ksums": (slice(None), ksums),
                "vsums": (slice(start, start + n), new_vsums),
                "out": (slice(i, i + 1), np.array([token]))}

    def _qmm(self, ctx: StepContext, golden: dict[str, np.ndarray], x: np.ndarray,
             name: str) -> np.ndarray:
        """x @ W with int8 x (per row) and int8 W (per column): an exact integer GEMM,
        then scaled back to float32."""
        xq, xs = quantize_rows(x)
        c = ctx.gemm(xq, golden[f"q.{name}"], right=APPENDED if self.checking else None,
                     what=name)
        start, stop = self.scale_at[name]
        return (c * xs * self._scales[start:stop]).astype(F32)

    def _attend(self, ctx: StepContext, qkv: np.ndarray, layer: int, start: int,
                past: np.ndarray, past_scales: np.ndarray, new_cache: np.ndarray,
                new_scales: np.ndarray, ksums: np.ndarray, past_vsums: np.ndarray,
                new_vsums: np.ndarray) -> np.ndarray:
        p = self.params
        n, width, heads = qkv.shape[0], p["width"], p["heads"]
        hd = width // heads
        q, k, v = (qkv[:, j * width:(j + 1) * width].reshape(n, heads, hd) for j in range(3))
        kq, ks = quantize_rows(k)
        vq, vs = quantize_rows(v)
        with np.errstate(invalid="ignore"):  # a NaN (a hit) fails this step's QK^T check
            new_cache[:, layer, 0] = kq.reshape(n, width)
            new_cache[:, layer, 1] = vq.reshape(n, width)
        new_scales[:, layer, 0] = ks[..., 0]
        new_scales[:, layer, 1] = vs[..., 0]
        keys = np.concatenate([past[:, layer, 0].reshape(-1, heads, hd), kq])  # (T, H, hd)
        values = np.concatenate([past[:, layer, 1].reshape(-1, heads, hd), vq])
        key_scales = np.concatenate([past_scales[:, layer, 0], ks[..., 0]])  # (T, H)
        value_scales = np.concatenate([past_scales[:, layer, 1], vs[..., 0]])
        total = keys.shape[0]
        # Query row r sits at position start + r and sees positions 0 .. start + r.
        mask = np.arange(total)[None, :] <= (start + np.arange(n))[:, None]
        # Every head at once (heads lead: H x n x T scores), two batched GEMMs a layer.
        right_k = right_v = None
        if self.checking:  # the cache's checksums, brought up to date by the new rows
            # One product each (integers, so exact in any order): the new keys' plain
            # and position-weighted sums, the new values' plain and weighted row sums.
            # (weights 1..n moved to start + 1 .. start + n: the rows' positions)
            ksums[layer] += kq.reshape(n, width).T @ (sum_weights(n) + (0.0, start))
            new_vsums[:, layer] = vq @ sum_weights(hd)
            right_k = RightSums(ksums[layer].reshape(heads, hd, 2))
            right_v = RightSums(np.ascontiguousarray(np.concatenate(
                [past_vsums[:, layer], new_vsums[:, layer]]).transpose(1, 0, 2)))
        qq, qs = quantize_rows(q.transpose(1, 0, 2))
        scores = ctx.gemm(qq, np.ascontiguousarray(keys.transpose(1, 2, 0)), right=right_k,
                          what="QK^T")
        scores = (scores * qs * key_scales.T[:, None, :] / math.sqrt(hd)).astype(F32)
        probs = softmax_masked(scores, mask, ctx.later if self.checking else False)
        # The value scales fold into the weights, so that V stays int8.
        wq, wscale = quantize_rows(probs * value_scales.T[:, None, :])
        mixed = ctx.gemm(wq, np.ascontiguousarray(values.transpose(1, 0, 2)), right=right_v,
                         what="PV")
        return (mixed * wscale).astype(F32).transpose(1, 0, 2).reshape(n, width)

    def result(self, state: dict[str, np.ndarray], outputs: list[np.ndarray]) -> np.ndarray:
        return state["out"].copy()
