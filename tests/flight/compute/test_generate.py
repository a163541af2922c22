"""Generation by the int8 transformer: the KV cache gives the tokens a full recompute
gives, protection changes nothing, quantization stays within half a step, faults in
the cache and the GEMMs leave the tokens exact, and bad prompts are refused."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.compute import NumpyDevice
from flight.compute.catalog import make_workload
from flight.compute.generate import quantize_rows
from flight.compute.runner import JobRunner, Protection
from flight.compute.workloads import JobParameterError
from flight.shield import CheckpointStore
from sim.faults import FaultInjector, Injection

SMALL = {"steps": 10, "context": 32, "layers": 2, "heads": 2, "width": 32,
         "train_steps": 30, "corpus_kb": 8}


def _run(tmp_path, enabled=True, injection=None, **params):
    device = NumpyDevice()
    between = None
    directory = tmp_path / f"store-{enabled}-{injection}-{len(params.get('prompt', ''))}"
    if injection is not None:
        device = FaultInjector(device, injection, checkpoint_dir=directory,
                               block_bytes=2048, stripe_blocks=8)
        between = device.between
    protection = Protection(enabled=enabled, scrub_every=2, checkpoint_every=2,
                            block_bytes=2048, stripe_blocks=8)
    runner = JobRunner(make_workload("generate", 5, **{**SMALL, **params}), device,
                       CheckpointStore(directory) if enabled else None, protection,
                       between=between)
    return runner.run(), runner.stats


def test_the_kv_cache_gives_what_a_full_recompute_gives(tmp_path) -> None:
    prompt = "def run"
    tokens, _ = _run(tmp_path, prompt=prompt)
    assert tokens.dtype == np.float64 and np.all((0 <= tokens) & (tokens < 256))
    text = bytes(tokens.astype(np.uint8))
    for k in range(4):  # the prompt and k generated tokens, prefilled in one step
        longer = (prompt.encode() + text[:k]).decode("latin-1")
        again, _ = _run(tmp_path / str(k), steps=1, prompt=longer)
        assert again[0] == tokens[k], k


def test_protected_and_unprotected_generate_the_same_tokens(tmp_path) -> None:
    protected, stats = _run(tmp_path)
    plain, _ = _run(tmp_path, enabled=False)
    assert protected.tobytes() == plain.tobytes()
    assert not stats.events


def test_quantization_is_within_half_a_step_per_entry() -> None:
    x = np.random.default_rng(4).standard_normal((50, 70)).astype(np.float32) * 3
    q, scale = quantize_rows(x)
    assert np.all(np.abs(q) <= 127) and np.array_equal(q, np.rint(q))
    assert np.all(np.abs(x - q * scale) <= scale / 2 + 1e-12)
    zero, unit = quantize_rows(np.zeros((2, 3), np.float32))
    assert not zero.any() and np.all(unit == 1.0)


@pytest.mark.parametrize("kind", ["state", "gemm", "weight", "activation", "hang"])
def test_faults_leave_the_tokens_exact(tmp_path, kind) -> None:
    golden, _ = _run(tmp_path, enabled=False)
    caught = 0
    for index in range(5):
        injection = Injection(kind, index * 2, 77 + index)
        tokens, stats = _run(tmp_path / f"{kind}{index}", injection=injection)
        assert tokens.tobytes() == golden.tobytes(), (kind, index, stats.events)
        caught += bool(stats.events)
    assert caught >= 3  # most strikes are found, not masked


def test_bad_prompts_are_refused_with_the_reason() -> None:
    with pytest.raises(JobParameterError, match="do not fit a context of 32"):
        make_workload("generate", 0, **{**SMALL, "prompt": "x" * 30})
    with pytest.raises(JobParameterError, match="prompt must be text"):
        make_workload("generate", 0, **{**SMALL, "prompt": ""})
    with pytest.raises(JobParameterError, match="prompt must be text"):
        make_workload("generate", 0, **{**SMALL, "prompt": 5})
    with pytest.raises(JobParameterError, match="unknown parameter 'temperature'"):
        make_workload("generate", 0, temperature=1)


@pytest.mark.parametrize("region,at,phase", [
    ("scales", 0.0, "step 3"), ("scales", 0.5, "step 3"), ("scales", 0.999, "step 3"),
    # After the step read them, before it uses the head's: the sign of the scale of the
    # token the step would choose (it would choose another).
    ("scales", "winner", "resid1"),
    ("float", 0.5, "step 3"), ("q.h1.qkv.w", 0.5, "step 3"),
    ("q.h0.fc.w", "checksum", "step 3")])  # a matrix's own row checksum column
def test_a_hit_in_any_part_of_the_model_is_found_and_the_tokens_stay_exact(
        tmp_path, region, at, phase) -> None:
    """Scales are no GEMM operand, so ABFT cannot see them: their blocks are checked
    (a flipped scale once went straight into the tokens), a matrix's first, middle or
    last (the head's), and one hit while the step waits on an activation."""
    golden, _ = _run(tmp_path, enabled=False)
    device = NumpyDevice()
    fired = []

    seen = []

    def between(step_phase: str) -> None:
        seen.append(step_phase)
        if step_phase == phase and "step 3" in seen and not fired:
            values = device.region(f"golden.{region}").reshape(-1)
            if at == "winner":
                index = runner.workload.scale_at["head.w"][0] + int(golden[3])
                bit = 63
            elif at == "checksum":
                rows, cols = device.region(f"golden.{region}").shape
                index, bit = rows // 2 * cols + cols - 2, 51
            else:
                index = int(values.size * at)
                bit = 51 if values.itemsize == 8 else 22  # the top mantissa bit
            middle = values[index:index + 1]
            bits = middle.view(np.uint64 if values.itemsize == 8 else np.uint32)
            bits ^= bits.dtype.type(1 << bit)
            fired.append(phase)

    runner = JobRunner(make_workload("generate", 5, **SMALL), device,
                       CheckpointStore(tmp_path / "store"),
                       Protection(scrub_every=8, checkpoint_every=2, block_bytes=2048,
                                  stripe_blocks=8), between=between)
    tokens = runner.run()
    assert fired
    # Found in the step it struck: a generation step's checks are held to its end, so
    # a hit after the step read the scales is found before that step commits, too.
    found = [step for _, step in runner.stats.events]
    assert 3 in found, runner.stats.events
    assert tokens.tobytes() == golden.tobytes()


@pytest.mark.parametrize("name", ["cache", "ksums", "vsums"])
def test_a_hit_in_the_cache_block_a_step_writes_is_repaired_before_the_write(
        tmp_path, name) -> None:
    """A row of the KV cache (and of its checksums, which the attention products check
    against) is written in one kernel call when its block and parity check out
    (ShieldedRegion.write); a block hit since its commit takes the long way: repaired,
    and the step runs again on what was committed."""
    golden, _ = _run(tmp_path, enabled=False)
    device = NumpyDevice()
    fired = []
    runner = JobRunner(make_workload("generate", 5, **SMALL), device,
                       CheckpointStore(tmp_path / "store"),
                       Protection(scrub_every=64, checkpoint_every=64, block_bytes=2048,
                                  stripe_blocks=8))
    apply = runner._apply

    def hit_then_apply(updates) -> None:
        # After the step's held-back checks passed, before its write: only the write's
        # own check of the blocks it writes can see this.
        if runner.step_in_progress == 3 and not fired:
            region = device.region(f"state.{name}")
            region.reshape(-1).view(np.uint8)[region[0].nbytes + 5] ^= 0x10  # in row 1
            fired.append(3)
        apply(updates)

    runner._apply = hit_then_apply
    tokens = runner.run()
    assert fired and runner.stats.events == [("scrub", 3)]  # found at the write, repaired
    assert tokens.tobytes() == golden.tobytes()


def test_a_served_model_must_be_a_transformer_result_of_the_same_architecture() -> None:
    job = make_workload("generate", 5, **{**SMALL, "model_job": 3})
    with pytest.raises(JobParameterError, match="the weights of job 3 were not given"):
        job.golden()
    for wrong in (np.zeros(job.model.size, np.float32),  # no losses before them
                  np.zeros(job.model.size + 5, np.float64)):
        with pytest.raises(JobParameterError, match=f"do.. not hold the {job.model.size} "
                           "float32 parameters of this model"):
            job.serve(wrong)
    result = np.arange(job.model.size + 5, dtype=np.float32)
    job.serve(result)
    assert np.array_equal(job.weights, result[5:])
