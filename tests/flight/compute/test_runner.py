import numpy as np
import pytest

from drivers.compute import NumpyDevice
from flight.compute.abft import (
    APPENDED,
    APPENDED_ROWS,
    FUSED_MAX,
    AbftMismatch,
    Deferred,
    RightSums,
    checked_gemm,
    with_column_sums,
    with_sums,
)
from flight.compute.catalog import make_workload
from flight.compute.runner import JobFailed, JobRunner, Protection
from flight.compute.workloads import JobParameterError, Workload
from flight.shield import CheckpointStore
from hal.compute import DeviceHang

SMALL = {"mlp": {"steps": 6, "batch": 16, "inputs": 64, "hidden": 64, "outputs": 16},
         "train": {"steps": 12, "batch": 16, "features": 32, "outputs": 4, "batches": 4}}


def job(tmp_path, name: str, protection: Protection | None = None, between=None, **kw):
    protection = protection or Protection()
    device = kw.pop("device", NumpyDevice())
    runner = JobRunner(make_workload(name, 5, **SMALL[name]), device,
                       CheckpointStore(tmp_path) if protection.enabled else None, protection,
                       between=between)
    return runner


@pytest.fixture(params=sorted(SMALL))
def name(request) -> str:
    return request.param


def golden(tmp_path, name: str) -> bytes:
    return job(tmp_path / "g", name, Protection(enabled=False)).run().tobytes()


def test_protected_and_plain_runs_agree_bit_for_bit(tmp_path, name) -> None:
    runner = job(tmp_path, name, Protection(checkpoint_every=4))
    assert runner.run().tobytes() == golden(tmp_path, name)
    assert runner.stats.events == []
    # Inference is stateless (outputs leave the device per batch); training checkpoints
    # after steps 4 and 8 of 12 (none at the end: the result is handed over instead).
    assert runner.stats.checkpoints == (0 if name == "mlp" else 2)


def test_the_training_job_learns(tmp_path) -> None:
    w = make_workload("train", 5, steps=120, **{k: v for k, v in SMALL["train"].items()
                                                if k != "steps"})
    runner = JobRunner(w, NumpyDevice(), None, Protection(enabled=False))
    g = w.golden()  # unprotected: the batches without their checksum borders
    x = g["x"].reshape(-1, g["x"].shape[-1])
    before = np.abs(g["y"]).mean()
    weights = runner.run()
    after = np.abs(np.floor(x @ weights / 2**16) - g["y"]).mean()
    assert after < before / 3


def test_a_weight_hit_between_scrubs_is_caught_by_abft_and_repaired(tmp_path) -> None:
    device = NumpyDevice()
    fired = []

    def hit(phase: str) -> None:
        if phase == "step 1" and not fired:  # scrubs run at steps 0 and 4
            fired.append(1)
            device.region("golden.w1").reshape(-1).view(np.uint8)[4000] ^= 0x40

    runner = job(tmp_path, "mlp", between=hit, device=device)
    assert runner.run().tobytes() == golden(tmp_path, "mlp")
    assert [m for m, _ in runner.stats.events][:2] == ["abft", "scrub"]


@pytest.mark.parametrize("phase", ["step 2", "residual"])
def test_a_training_weight_hit_is_caught_before_the_step_writes_it(tmp_path, phase) -> None:
    """The training products carry column checksums only: a weight hit, before the
    step reads it or while it runs, is found by the weight's CRCs before the step's
    write, the step runs again on repaired weights, and the result is the fault-free
    one."""
    device = NumpyDevice()
    fired: list[int] = []

    def hit(at: str) -> None:
        if at == phase and not fired:
            fired.append(runner.step_in_progress)
            device.region("state.w").reshape(-1).view(np.uint8)[333] ^= 0x10

    runner = job(tmp_path, "train", Protection(scrub_every=100), between=hit, device=device)
    assert runner.run().tobytes() == golden(tmp_path, "train")
    assert fired and runner.stats.steps_lost == 1
    assert runner.stats.events[0] == ("scrub", fired[0])


def test_an_activation_hit_while_it_waits_is_caught_by_its_crc(tmp_path) -> None:
    device = NumpyDevice()
    state = {"fired": False}

    def hit(phase: str) -> None:
        if phase == "h" and not state["fired"]:
            state["fired"] = True
            device.region("act.h")[0, 0] += 1.0

    runner = job(tmp_path, "mlp", between=hit, device=device)
    assert runner.run().tobytes() == golden(tmp_path, "mlp")
    assert runner.stats.events[0][0] == "crc" and runner.stats.steps_lost == 1


class RowWriter(Workload):
    """Writes one 256-byte row of state per step: two rows share a 512-byte block."""

    name = "rows"
    description = "test workload"
    PARAMS = {"steps": (8, 1, 64)}

    def golden(self):
        return {"w": self.rng(0).integers(-9, 10, (4, 32)).astype(np.float64)}

    def state_shapes(self):
        return {"acc": (self.steps, 32)}

    def prepare(self, golden):
        self.sums = RightSums.of(golden["w"])

    def step(self, i, ctx, golden, state):
        x = np.full((1, 4), float(i + 1))
        return {"acc": (i, ctx.gemm(x, golden["w"], right=self.sums)[0])}

    def result(self, state, outputs):
        return state["acc"].copy()


def test_a_hit_in_committed_state_beside_a_write_is_repaired_not_blessed(tmp_path) -> None:
    """Row 0 is hit while step 1 writes row 1 of the same block."""
    device = NumpyDevice()
    fired = []

    def hit(phase: str) -> None:
        if phase == "step 1" and not fired:
            fired.append(1)
            device.region("state.acc").reshape(-1).view(np.uint8)[100] ^= 0x08

    clean = JobRunner(RowWriter(1), NumpyDevice(), None, Protection(enabled=False)).run()
    runner = JobRunner(RowWriter(1), device, CheckpointStore(tmp_path),
                       Protection(block_bytes=512, scrub_every=100), between=hit)
    assert runner.run().tobytes() == clean.tobytes()
    assert runner.stats.events[0][0] == "scrub"


def test_a_hang_power_cycles_and_resumes_from_the_checkpoint(tmp_path) -> None:
    device = NumpyDevice()
    cycles = []

    def hang(phase: str) -> None:
        if phase == "step 10" and not cycles:
            device.hung = True

    runner = JobRunner(make_workload("train", 5, **SMALL["train"]), device,
                       CheckpointStore(tmp_path), Protection(checkpoint_every=4),
                       between=hang, power_cycle=lambda: cycles.append(1))
    assert runner.run().tobytes() == golden(tmp_path, "train")
    assert cycles == [1] and runner.stats.rollbacks == 1
    assert runner.stats.steps_lost == 2  # steps 8 and 9 again


def test_without_protection_a_weight_hit_is_silent_corruption(tmp_path) -> None:
    device = NumpyDevice()

    def hit(phase: str) -> None:
        if phase == "step 0":  # unprotected: every step runs once
            device.region("golden.w2")[3, 3] += 64.0

    plain = job(tmp_path, "mlp", Protection(enabled=False), between=hit, device=device)
    assert plain.run().tobytes() != golden(tmp_path, "mlp")  # what the shield is for


class Corrupting(NumpyDevice):
    """A device whose products come back with `corrupt(c)` done to them."""

    def __init__(self, corrupt) -> None:
        super().__init__()
        self.corrupt = corrupt

    def gemm(self, x, y, out=None):
        c = super().gemm(x, y, out)
        self.corrupt(c)
        return c


@pytest.mark.parametrize("m,n", [(8, 8), (300, 300)])  # one kernel call; BLAS sums
def test_abft_catches_a_low_mantissa_flip_and_a_cancelling_pair(m, n) -> None:
    assert (m * n <= FUSED_MAX) == (m == 8)
    rng = np.random.default_rng(0)
    a = rng.integers(-127, 128, (m, 16)).astype(np.float64)
    b = rng.integers(-127, 128, (16, n)).astype(np.float64)
    sums = RightSums.of(b)

    def low_bit(c):
        c.view(np.uint64)[2, 2] ^= np.uint64(1)

    def pair(c):
        c[1, 0] += 4.0
        c[1, 5] -= 4.0

    for corrupt in (low_bit, pair):
        with pytest.raises(AbftMismatch):
            checked_gemm(Corrupting(corrupt), a, b, right=sums)
    assert np.array_equal(checked_gemm(NumpyDevice(), a, b, right=sums), a @ b)
    # A batch of products (attention's heads) is checked member by member.
    heads_a = rng.integers(-127, 128, (6, 3, 16)).astype(np.float64)
    heads_b = rng.integers(-127, 128, (6, 16, 9)).astype(np.float64)

    def one_head(c):
        c.view(np.uint64)[4, 1, 7] ^= np.uint64(1 << 40)

    with pytest.raises(AbftMismatch):
        checked_gemm(Corrupting(one_head), heads_a, heads_b)
    assert np.array_equal(checked_gemm(NumpyDevice(), heads_a, heads_b), heads_a @ heads_b)


def test_a_step_that_fails_every_attempt_gives_up_with_what_its_check_said(tmp_path) -> None:
    def low_bit(c):
        c.reshape(-1).view(np.uint64)[0] ^= np.uint64(1)

    runner = JobRunner(make_workload("mlp", 5, **SMALL["mlp"]), Corrupting(low_bit),
                       CheckpointStore(tmp_path), Protection())
    with pytest.raises(JobFailed, match=r"step 0 failed its checks 4 times \(the last: step 0 "
                                        r"layer 1: 1 non-integer results"):
        runner.run()


def test_appended_column_checksums_catch_product_and_operand_hits() -> None:
    """A golden left operand with its column sums as two more rows: the GEMM makes the
    wanted sums, one scan of the product compares them, for A and for A^T's layout."""
    rng = np.random.default_rng(3)
    a = rng.integers(-15, 16, (40, 24)).astype(np.float64)
    b = rng.integers(-999, 1000, (24, 12)).astype(np.float64)
    bordered = with_column_sums(with_sums(a))  # both borders, as the training set has
    c = checked_gemm(NumpyDevice(), bordered[:, :24], b, left=APPENDED_ROWS)
    assert c.shape == (40, 12) and np.array_equal(c, a @ b)
    r = rng.integers(-99, 100, (40, 5)).astype(np.float64)
    assert np.array_equal(checked_gemm(NumpyDevice(), bordered[:40].T, r, left=APPENDED_ROWS),
                          a.T @ r)

    def low_bit(c):
        c.view(np.uint64)[7, 3] ^= np.uint64(1)

    def pair(c):  # +d and -d in one column: the weighted sum sees it
        c[2, 4] += 8.0
        c[9, 4] -= 8.0

    def wanted(c):  # the product's own checksum row
        c[-1, 0] += 1.0

    for corrupt in (low_bit, pair, wanted):
        with pytest.raises(AbftMismatch, match="non-integer|column checksums"):
            checked_gemm(Corrupting(corrupt), bordered[:, :24], b, left=APPENDED_ROWS)
    for where in ((11, 6), (-1, 3)):  # the operand hit after its border was taken; the border
        hit = bordered.copy()
        hit[where] += 2.0 ** 10
        with pytest.raises(AbftMismatch, match="column checksums disagree"):
            checked_gemm(NumpyDevice(), hit[:, :24], b, left=APPENDED_ROWS)
    with pytest.raises(ValueError, match="2-D products without row checksums"):
        checked_gemm(NumpyDevice(), bordered[:, :24], b, left=APPENDED_ROWS,
                     right=RightSums.of(b))


def test_a_training_set_hit_between_scrubs_is_caught_by_abft_and_repaired(tmp_path) -> None:
    device = NumpyDevice()
    fired = []

    def hit(phase: str) -> None:
        if phase == "step 1" and not fired:  # batch 1, row 3, column 5: its exponent's top
            fired.append(1)                   # bit (0 -> 2, an integer k -> about 0)
            device.region("golden.x")[1, 3, 5:6].view(np.uint8)[7] ^= 0x40

    runner = job(tmp_path, "train", Protection(scrub_every=100), between=hit, device=device)
    assert runner.run().tobytes() == golden(tmp_path, "train")
    assert [m for m, _ in runner.stats.events][:2] == ["abft", "scrub"]


@pytest.mark.parametrize("call,reason", [
    (lambda: make_workload("resnet"),
     "unknown workload 'resnet' \\(known: generate, mlp, train, transformer\\)"),
    (lambda: make_workload("mlp", steps=0), "mlp: steps = 0 is outside 1..100000"),
    (lambda: make_workload("train", lr_shift=3), "lr_shift = 3 is outside 10..40"),
    (lambda: make_workload("mlp", layers=3), "unknown parameter 'layers'"),
])
def test_bad_job_parameters_are_refused_with_the_reason(call, reason) -> None:
    with pytest.raises(JobParameterError, match=reason):
        call()


def test_a_state_hit_too_small_for_abft_reruns_the_step_instead_of_spreading(tmp_path) -> None:
    """A flip in W's lowest mantissa bit vanishes in the forward GEMM's rounding (ABFT is
    right to pass it) but rides the update W - step into the new weights; the pre-write
    check must send the step round again, not write updates computed from the hit."""
    device = NumpyDevice()
    fired = []

    def hit(phase: str) -> None:
        if phase == "step 5" and not fired:
            fired.append(1)
            device.region("state.w").reshape(-1).view(np.uint64)[7] ^= np.uint64(1)

    runner = job(tmp_path, "train", Protection(scrub_every=100), between=hit, device=device)
    assert runner.run().tobytes() == golden(tmp_path, "train")
    assert runner.stats.events[0] == ("scrub", 5) and runner.stats.steps_lost == 1


class Held(Workload):
    """Holds its checks to the end of each step, and turns its product into an integer
    on the way, as any later arithmetic might: a NaN there raises ValueError."""

    name = "held"
    description = "test workload"
    PARAMS = {"steps": (4, 1, 64)}
    DEFERS_CHECKS = True

    def golden(self):
        w = self.rng(0).integers(-9, 10, (4, 8)).astype(np.float64)
        return {"w": with_sums(w) if self.checking else w}

    def state_shapes(self):
        return {"acc": (self.steps, 8)}

    def prepare(self, golden):
        pass

    def step(self, i, ctx, golden, state):
        x = np.full((1, 4), float(i + 1))
        c = ctx.gemm(x, golden["w"], right=APPENDED if self.checking else None)
        int(c.sum())  # ValueError on a NaN, long before the held check runs
        return {"acc": (i, c[0])}

    def result(self, state, outputs):
        return state["acc"].copy()


class NanOnce(NumpyDevice):
    def __init__(self) -> None:
        super().__init__()
        self.hits = 0

    def gemm(self, x, y, out=None):
        c = super().gemm(x, y, out)
        if self.hits == 0 and c.shape[-1] == 10:
            self.hits += 1
            c.view(np.uint64)[0, 3] |= np.uint64(0x7FF8 << 48)  # a NaN
        return c


def test_a_held_check_outranks_the_error_its_fault_caused_later_in_the_step(tmp_path) -> None:
    """The step trips over the NaN before its held ABFT check runs: the check's fault is
    what counts (an ABFT detection, the step run again), not a crash."""
    clean = JobRunner(Held(1), NumpyDevice(), None, Protection(enabled=False)).run()
    runner = JobRunner(Held(1), NanOnce(), CheckpointStore(tmp_path), Protection())
    assert runner.run().tobytes() == clean.tobytes()
    assert runner.stats.events == [("abft", 0)]


def test_an_error_no_held_check_explains_is_raised_as_it_is(tmp_path) -> None:
    class Broken(Held):
        def step(self, i, ctx, golden, state):
            super().step(i, ctx, golden, state)
            raise KeyError("a bug, not a hit")

    runner = JobRunner(Broken(1), NumpyDevice(), CheckpointStore(tmp_path), Protection())
    with pytest.raises(KeyError, match="a bug"):
        runner.run()


def test_deferred_checks_run_in_order_once_and_the_first_failure_raises() -> None:
    later, ran = Deferred(), []

    def check(name, fails=False):
        ran.append(name)
        if fails:
            raise AbftMismatch(name)

    for name, fails in (("a", False), ("b", True), ("c", True)):
        later.add(check, name, fails)
    with pytest.raises(AbftMismatch, match="b"):
        later.run()
    assert ran == ["a", "b"]
    later.run()  # nothing is held after a run, failed or not
    assert ran == ["a", "b"]


def test_a_hang_after_a_held_check_would_fail_is_still_a_hang(tmp_path) -> None:
    """A NaN in the step's first product, then the device hangs on its second: the hang
    goes to the power cycle (only that brings the device back), not to a rerun."""

    class TwoProducts(Held):
        def step(self, i, ctx, golden, state):
            ctx.gemm(np.ones((1, 4)), golden["w"], right=APPENDED)
            return super().step(i, ctx, golden, state)

    class NanThenHang(NanOnce):
        def gemm(self, x, y, out=None):
            if self.hits == 1:
                self.hits += 1
                raise DeviceHang("test: device not responding")
            return super().gemm(x, y, out)

    clean = JobRunner(Held(1), NumpyDevice(), None, Protection(enabled=False)).run()
    runner = JobRunner(TwoProducts(1), NanThenHang(), CheckpointStore(tmp_path), Protection())
    assert runner.run().tobytes() == clean.tobytes()
    assert runner.stats.events[0][0] == "hang" and runner.stats.power_cycles == 1
