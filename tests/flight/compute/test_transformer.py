"""The transformer workload: its gradients are the derivatives of its loss, it learns,
it runs bit for bit the same protected and unprotected, the float32 GEMM bound never
fires on a fault-free product and catches what lies outside it, and its checks send
a hit step round again."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.compute import NumpyDevice
from flight.compute.abft import (
    CHECK_BLOCK,
    AbftMismatch,
    FloatRightSums,
    _bound_terms,
    checked_float_gemm,
    float_gemm_bound,
)
from flight.compute.catalog import make_workload
from flight.compute.runner import JobRunner, Protection
from flight.compute.transformer import (
    GELU_MIN,
    LN_EPS,
    HostContext,
    InvariantBroken,
    Model,
    TransformerTraining,
    adamw,
    adamw_bound,
    cross_entropy,
    gelu,
    layernorm,
    softmax_causal,
    views,
)
from flight.compute.workloads import JobParameterError
from flight.shield import (
    CheckpointStore,
    ShieldError,
    float_block_check,
    float_block_sums,
    gelu_check,
    layernorm_check,
    softmax_check,
)
from sim.faults import FaultInjector, Injection

TINY = {"steps": 6, "batch": 2, "context": 8, "layers": 2, "heads": 2, "width": 16,
        "corpus_kb": 4}


def _loss(job, flat, tokens):
    w = views(flat, job.layout)
    return Model(job, HostContext(job.golden()), w).loss_and_grads(tokens[:, :-1],
                                                                  tokens[:, 1:])


def test_gradients_are_the_derivatives_of_the_loss() -> None:
    """In float64, central differences along random directions and single parameters
    of every kind agree with the backward pass to 1e-6."""
    job = TransformerTraining(3, **TINY)
    job.checking = False  # float64, through a context that only computes
    state = {name: np.zeros(shape, np.float64) for name, shape in job.state_shapes().items()}
    job.init_state(state)
    flat = state["w"]
    flat += np.random.default_rng(1).normal(0, 0.05, flat.shape)  # biases, gains off 0/1
    ctx = HostContext(job.golden())
    tokens = job.batch(0, ctx, ctx.golden)
    _, grad = _loss(job, flat, tokens)
    rng = np.random.default_rng(2)
    h = 1e-5
    directions = [rng.standard_normal(flat.size) for _ in range(4)]
    for p in job.layout:  # one coordinate of every parameter
        d = np.zeros(flat.size)
        d[p.offset + int(rng.integers(0, p.size))] = 1.0
        directions.append(d)
    for d in directions:
        up, _ = _loss(job, flat + h * d, tokens)
        down, _ = _loss(job, flat - h * d, tokens)
        numeric = (up - down) / (2 * h)
        analytic = float(grad @ d)
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)


def _run(enabled: bool, tmp_path, params=TINY, injection=None, seed=1):
    device = NumpyDevice()
    between = None
    protection = Protection(enabled=enabled, scrub_every=2, checkpoint_every=2,
                            block_bytes=2048, stripe_blocks=8)
    directory = tmp_path / f"store-{enabled}-{injection}"
    if injection is not None:
        device = FaultInjector(device, injection, checkpoint_dir=directory,
                               block_bytes=2048, stripe_blocks=8)
        between = device.between
    runner = JobRunner(make_workload("transformer", seed, **params), device,
                       CheckpointStore(directory) if enabled else None, protection,
                       between=between)
    return runner.run(), runner.stats


def test_training_lowers_the_loss_and_runs_bit_for_bit_the_same(tmp_path) -> None:
    params = {**TINY, "steps": 40, "width": 32, "lr_e6": 10_000}
    protected, stats = _run(True, tmp_path, params)
    again, _ = _run(True, tmp_path / "again", params)
    plain, _ = _run(False, tmp_path, params)
    assert protected.tobytes() == again.tobytes() == plain.tobytes()
    assert not stats.events  # no check fired on a fault-free run
    losses = protected[:40]
    assert losses[0] == pytest.approx(np.log(256), abs=0.1)  # uniform over bytes at first
    assert losses[-5:].mean() < losses[:5].mean() - 1.0


@pytest.mark.parametrize("kind,bits", [("gemm", None), ("state", None), ("weight", None),
                                       ("activation", None), ("hang", None)])
def test_a_struck_job_ends_as_the_fault_free_one_or_within_the_bound(tmp_path, kind,
                                                                      bits) -> None:
    golden, _ = _run(False, tmp_path)
    for index in range(6):
        injection = Injection(kind, index % TINY["steps"], 1000 + index)
        result, stats = _run(True, tmp_path / f"{kind}{index}", injection=injection)
        if result.tobytes() != golden.tobytes():
            # An undetected flip below the bound: small, never a different run.
            assert kind in ("gemm", "state"), (kind, index, stats.events)
            assert np.max(np.abs(result - golden)) < 1e-2, (kind, index)


def test_the_float_gemm_bound_holds_for_fault_free_products() -> None:
    """Shapes from 1 to 300, scales over twelve decades, offsets that make the sums
    cancel, batched products: the deviation of every block stays inside its bound
    (by a wide margin, since the bound is the worst case), and the check passes."""
    rng = np.random.default_rng(7)
    device = NumpyDevice()
    worst = 0.0
    for _ in range(200):
        batch = tuple(int(x) for x in rng.integers(1, 3, int(rng.integers(0, 3))))
        m, k, n = (int(x) for x in rng.integers(1, 300, 3))
        scale = 10.0 ** rng.uniform(-6, 6)
        a = (rng.standard_normal((*batch, m, k)) * scale).astype(np.float32)
        b = (rng.standard_normal((*batch, k, n)) + rng.uniform(-3, 3)).astype(np.float32)
        c = checked_float_gemm(device, a, b)
        d, bound = float_gemm_bound(a, b, c)
        worst = max(worst, float((d / bound).max()))
    assert worst < 0.5


def test_the_kernel_pass_fails_exactly_the_blocks_knocked_off_their_sums() -> None:
    """sk_float_block_check against what it is for: fault-free products of any shape
    (short last blocks, batches) pass, and each block given a change far beyond its
    bound, a NaN or an infinity fails, one count a block."""
    rng = np.random.default_rng(12)
    for _ in range(60):
        batch = tuple(int(x) for x in rng.integers(1, 3, int(rng.integers(0, 2))))
        m, k, n = (int(x) for x in rng.integers(1, 200, 3))
        a = rng.standard_normal((*batch, m, k)).astype(np.float32)
        b = rng.standard_normal((*batch, k, n)).astype(np.float32)
        right = FloatRightSums.of(b)
        sums = np.matmul(a, right.sums)
        c = a @ b
        assert float_block_check(c, sums, 64, 1e-3, 1e-4) == 0
        hits = {(int(rng.integers(c.size // n)), int(rng.integers(n)))
                for _ in range(int(rng.integers(1, 4)))}
        struck = c.reshape(-1, n).copy()
        for row, col in hits:
            struck[row, col] = rng.choice([np.nan, np.inf, 1e6])
        blocks = {(row, col // 64) for row, col in hits}
        assert float_block_check(struck.reshape(c.shape), sums, 64, 1e-3, 1e-4) == len(blocks)
    with pytest.raises(ShieldError, match="do not pair"):
        float_block_check(c, sums[..., :-1], 64, 1e-5, 1e-6)


def test_the_kernel_sums_of_b_are_the_block_sums_in_any_order() -> None:
    """float_block_sums (B and X^T layouts, batches, short blocks) against float64 sums:
    within the float32 rounding of a 64-term sum."""
    rng = np.random.default_rng(13)
    for _ in range(40):
        lead = tuple(int(x) for x in rng.integers(1, 3, int(rng.integers(0, 3))))
        k, n = (int(x) for x in rng.integers(1, 200, 2))
        x = (rng.standard_normal((*lead, k, n)) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32)
        for b in (x, np.swapaxes(x, -1, -2)):
            got = float_block_sums(b, 64)
            nb = -(-b.shape[-1] // 64)
            pad = np.zeros((*b.shape[:-1], nb * 64), np.float64)
            pad[..., :b.shape[-1]] = b
            blocks = pad.reshape(*b.shape[:-1], nb, 64)
            want, scale = blocks.sum(-1), np.abs(blocks).sum(-1)
            assert got.shape == want.shape
            assert np.all(np.abs(got - want) <= 64 * 2.0 ** -24 * scale + 1e-30)
    assert float_block_sums(np.zeros((4, 8), np.float32)[:, ::2], 64) is None  # another layout


def test_a_change_beyond_the_bound_is_caught_and_one_within_it_is_not() -> None:
    rng = np.random.default_rng(8)
    a = rng.standard_normal((64, 96)).astype(np.float32)
    b = rng.standard_normal((96, 130)).astype(np.float32)
    right = FloatRightSums.of(b)
    c = a @ b
    d, bound = float_gemm_bound(a, b, c, right)

    class Off(NumpyDevice):
        delta = 0.0

        def gemm(self, a, b, out=None):
            out = super().gemm(a, b, out)
            out[5, 70] += np.float32(self.delta)
            return out

    device = Off()
    device.delta = 2 * float(bound[5, 1])  # row 5, block 1 (columns 64..127)
    with pytest.raises(AbftMismatch, match="rounding bound"):
        checked_float_gemm(device, a, b, right=right)
    device.delta = float(bound[5, 1] - d[5, 1]) / 4
    checked_float_gemm(device, a, b, right=right)  # inside the bound: passes
    # A weight hit after its sums were taken shows, though the product is of the hit B.
    hit = b.copy()
    hit[3, 100] *= np.float32(2.0 ** 8)
    with pytest.raises(AbftMismatch):
        checked_float_gemm(NumpyDevice(), a, hit, right=right)
    with pytest.raises(AbftMismatch):  # and an inf or a NaN in the product
        inf = Off()
        inf.delta = np.inf
        checked_float_gemm(inf, a, b, right=right)


def test_a_hit_cannot_raise_its_own_bound_by_more_than_the_stated_factor() -> None:
    """The kernel's cleared bound reads |C|, so a hit d raises it by at most (fp + fq)|d|
    (abft.py): every change of an entry by more than (bound + deviation) / (1 - fp - fq)
    is caught, in either direction, whether the sums cancel or not."""
    rng = np.random.default_rng(21)
    for trial in range(40):
        m, k, n = (int(x) for x in rng.integers(2, 400, 3))
        a = (rng.standard_normal((m, k)) + (trial % 3 - 1) * 2).astype(np.float32)
        b = (rng.standard_normal((k, n)) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32)
        c = a @ b
        d, bound = float_gemm_bound(a, b, c)
        fp, fq, _ = _bound_terms(k, min(CHECK_BLOCK, n))
        row, col = int(rng.integers(m)), int(rng.integers(n))
        j = col // CHECK_BLOCK
        size = (bound[row, j] + d[row, j]) / (1 - fp - fq) * 1.001
        for sign in (1.0, -1.0):
            struck = c.copy()
            struck[row, col] = np.float32(float(c[row, col]) + sign * size)
            if float(struck[row, col]) - float(c[row, col]) == 0:
                continue  # below the entry's own rounding: nothing was changed

            class Hit(NumpyDevice):
                def gemm(self, a, b, out=None, struck=struck):
                    return struck.copy()

            with pytest.raises(AbftMismatch):
                checked_float_gemm(Hit(), a, b)


def test_the_non_gemm_checks_fire_on_broken_operations() -> None:
    x = np.random.default_rng(9).standard_normal((4, 8, 8)).astype(np.float32)
    softmax_causal(x)
    with pytest.raises(InvariantBroken, match="softmax"):
        softmax_causal(np.where(x > 1, np.float32(np.nan), x))
    y = np.random.default_rng(9).standard_normal((16, 32)).astype(np.float32) * 50 + 1000
    out, _ = layernorm(y, np.ones(32, np.float32), np.zeros(32, np.float32))
    assert abs(float(out.mean())) < 1e-3  # a far-off mean is no false alarm
    with pytest.raises(InvariantBroken, match="GELU"):
        gelu(np.array([1.0, np.nan], np.float32))
    with pytest.raises(InvariantBroken, match="loss"):
        cross_entropy(np.array([[np.inf, 0.0]], np.float32), np.array([1]))


def _numpy_adamw(w, m, v, g, t, lr, wd, mask):
    """AdamW as numpy computes it in float32, one operation a pass: the kernel's reference."""
    from flight.compute.transformer import ADAM_EPS, BETA1, BETA2
    f = np.float32
    norm = math.sqrt(float(np.dot(g, g)))
    if norm > 1.0:
        g = g * f(1.0 / norm)
    new_m = m * f(BETA1) + f(1 - BETA1) * g
    new_v = v * f(BETA2) + (g * g) * f(1 - BETA2)
    den = np.sqrt(new_v * f(1.0 / (1 - BETA2 ** t))) + f(ADAM_EPS)
    step = (new_m * f(lr / (1 - BETA1 ** t))) / den + (mask * f(lr * wd)) * w
    return w - step, new_m, new_v


def test_the_update_is_the_numpy_formula_bit_for_bit_and_its_check_holds_on_real_steps() -> None:
    rng = np.random.default_rng(21)
    n = 10_007  # not a multiple of any vector width
    mask = (rng.random(n) < 0.7).astype(np.float32)
    w = rng.normal(0, 0.05, n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for t in range(1, 40):
        scale = 10.0 ** rng.uniform(-6, 1)  # tiny gradients and ones the clip scales down
        g = rng.normal(0, scale, n).astype(np.float32)
        g[rng.integers(n, size=5)] = 0.0
        want = _numpy_adamw(w, m, v, g, t, 3e-3, 0.1, mask)
        got = adamw(w, m, v, g.copy(), t, 3e-3, 0.1, mask)  # checked: never fires here
        for a, b in zip(want, got, strict=True):
            assert a.tobytes() == b.tobytes()
        assert np.abs(got[0] - w - (-(mask * np.float32(3e-4)) * w)).max() \
            <= 3e-3 * adamw_bound(t) * 1.001
        w, m, v = (x.copy() for x in got)
    assert adamw_bound(1) == pytest.approx(1.0) and adamw_bound(10_000) == pytest.approx(
        1.1650, abs=1e-4)


@pytest.mark.parametrize("hit", ["m", "v", "w"])
def test_the_update_check_sees_moments_and_parameters_no_step_can_make(hit) -> None:
    """A moment whose exponent flipped (m far beyond what sqrt(v) allows, v below zero)
    or a parameter gone infinite: the update's own pass says which parameter."""
    n = 64
    w = np.full(n, 0.05, np.float32)
    m = np.full(n, 1e-4, np.float32)
    v = np.full(n, 1e-8, np.float32)
    g = np.full(n, 1e-4, np.float32)
    adamw(w, m, v, g.copy(), 9, 3e-3, 0.1, np.ones(n, np.float32))  # consistent: passes
    {"m": m, "v": v, "w": w}[hit][37] = {"m": 2.0 ** 20, "v": -1e-8, "w": np.inf}[hit]
    with pytest.raises(InvariantBroken, match="parameter 37"):
        adamw(w, m, v, g.copy(), 9, 3e-3, 0.1, np.ones(n, np.float32))
    with pytest.raises(ShieldError, match="none overlapping"):
        adamw(w, m, v, g.copy(), 9, 3e-3, 0.1, np.ones(n, np.float32), out=(w, m, v))


def _normalised(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """A layer norm's xhat and its per-row mu, rstd and var, as layernorm computes them."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    rstd = np.float32(1.0) / np.sqrt(var + np.float32(LN_EPS))
    return xc * rstd, mu, rstd, var


@pytest.mark.parametrize("shape,offset", [((1, 384), 0.0), ((64, 384), 0.0),
                                          ((2, 8, 129), 1000.0), ((5, 3), -7.0)])
def test_the_layer_norm_kernel_passes_true_rows_and_names_the_first_broken_one(
        shape, offset) -> None:
    rng = np.random.default_rng(shape[-1])
    x = (rng.standard_normal(shape) * 3 + offset).astype(np.float32)
    xhat, mu, rstd, var = _normalised(x)
    assert layernorm_check(xhat, mu, rstd, var, LN_EPS) == -1
    rows = xhat.size // shape[-1]
    for row in {0, rows // 2, rows - 1}:
        for bad in (np.float32(np.nan), np.float32(2.0), np.float32(-2.0)):
            hit = xhat.reshape(rows, -1).copy()
            hit[row, -1] += bad  # a value off by more than any rounding
            assert layernorm_check(hit.reshape(shape), mu, rstd, var, LN_EPS) == row
        scaled = xhat.reshape(rows, -1).copy()
        scaled[row] *= np.float32(1.01)  # a variance 2 % off, the mean still 0
        assert layernorm_check(scaled.reshape(shape), mu, rstd, var, LN_EPS) == row


def test_the_softmax_and_gelu_kernels_fail_exactly_what_breaks_them() -> None:
    rng = np.random.default_rng(4)
    scores = rng.standard_normal((3, 17, 17)).astype(np.float32)
    probs = softmax_causal(scores, check=False)
    tol = 4 * 17 * 2.0 ** -24
    assert softmax_check(probs, tol) == -1
    for value, row in ((1.5, 5), (-1e-6, 20), (np.nan, 50)):
        hit = probs.reshape(-1, 17).copy()
        hit[row, 0] = value
        assert softmax_check(hit, tol) == row
    for col, value in ((16, np.nan), (16, -1e-6), (9, 1.5)):  # the tail and the lanes
        hit = probs.reshape(-1, 17).copy()
        hit[3, col] = value
        assert softmax_check(hit, tol) == 3
    shifted = probs.reshape(-1, 17).copy()
    shifted[7] *= np.float32(1.001)  # every entry in [0, 1], the row sums to 1.001
    assert softmax_check(shifted, tol) == 7
    x = rng.standard_normal(1000).astype(np.float32) * 4
    y = gelu(x, check=False)
    assert gelu_check(x, y, GELU_MIN)
    for at, value in ((3, GELU_MIN - 0.01), (999, float(x.max()) + 0.01), (0, np.nan),
                      (998, np.nan), (500, np.inf)):
        hit = y.copy()
        hit[at] = value
        assert not gelu_check(x, hit, GELU_MIN)
    assert not gelu_check(np.where(x > 3, np.float32(np.nan), x), y, GELU_MIN)
    for at in (17, 999):  # an infinite input, in the lanes and in the tail
        assert not gelu_check(np.where(np.arange(1000) == at, np.float32(np.inf), x), y,
                              GELU_MIN)


def test_parameters_out_of_range_are_refused_with_the_reason() -> None:
    with pytest.raises(JobParameterError, match="multiple of heads"):
        make_workload("transformer", 0, width=30, heads=4)
    with pytest.raises(JobParameterError, match="context"):
        make_workload("transformer", 0, context=2)
