import shutil

import numpy as np
import pytest

from drivers.compute import NumpyDevice
from drivers.storage import DirectoryStorage
from flight.bus import EVENT
from flight.compute.catalog import make_workload
from flight.compute.runner import JobRunner, Protection
from flight.compute.schedule import RateEstimate
from flight.dispatcher import Status
from flight.nvm import Records
from flight.shield import crc32c
from flight.software import FlightSoftware
from hal.boards import AcceleratorState
from sim.clock import VirtualClock
from tests.flight.fakes import FakeAccelerator, FakePower, FakeThermal


def flight(base, hangs_per_day: float | None = None) -> FlightSoftware:
    """The flight software on storage in `base`, in COMPUTE mode, events recorded; booted
    again on the same `base`, it is the same computer after a power cut."""
    power = FakePower()
    sw = FlightSoftware(VirtualClock(), power=power, thermal=FakeThermal(),
                        accelerator=FakeAccelerator(), rails={"accelerator": 2},
                        compute=NumpyDevice(), storage=DirectoryStorage(base / "nv"),
                        work_dir=base / "jobs")
    sw.events = []
    sw.bus.subscribe(EVENT, lambda t, e: sw.events.append(e))
    # Jobs run in COMPUTE mode; a battery the fake power board's numbers cannot trip.
    sw.component("mode").set_param("battery_wh", 1e6)
    assert sw.dispatcher.dispatch("mode.set", {"mode": "compute"}).status is Status.COMPLETED
    if hangs_per_day is not None:  # a satellite that expects hangs checkpoints often
        sw.component("compute").hangs = RateEstimate(prior=hangs_per_day / 86400.0)
    return sw


@pytest.fixture
def fsw(tmp_path):
    return flight(tmp_path)


def send(fsw, command: str, **args):
    return fsw.dispatcher.dispatch(command, args)


def reference(workload: str, seed: int, **params) -> np.ndarray:
    return JobRunner(make_workload(workload, seed, **params), NumpyDevice(), None,
                     Protection(enabled=False)).run()


def test_a_submitted_job_runs_under_the_executive_and_stores_its_result(fsw, tmp_path) -> None:
    assert send(fsw, "compute.submit", workload="mlp", seed=4, steps=5).status is Status.COMPLETED
    fsw.run_until(10.0)
    manager = fsw.component("compute")
    job = manager.jobs[1]
    assert job.state.value == "completed"
    stored = Records(DirectoryStorage(tmp_path / "nv")).load("job-1.result", dict, None)
    data = np.frombuffer(stored["data"], dtype=stored["dtype"]).reshape(stored["shape"])
    assert data.tobytes() == reference("mlp", 4, steps=5).tobytes()
    assert stored["crc32c"] == crc32c(data) == job.digest
    names = [e.name for e in fsw.events]
    assert names.index("compute.job_started") < names.index("compute.job_completed")
    assert not (tmp_path / "jobs" / "job-1").exists()  # checkpoints cleaned up


def test_jobs_run_one_after_another_at_the_step_rate(fsw) -> None:
    send(fsw, "compute.submit", workload="train", seed=1, steps=6)
    send(fsw, "compute.submit", workload="mlp", seed=2, steps=3)
    fsw.run_until(3.0)
    jobs = fsw.component("compute").jobs
    assert jobs[1].state.value == "running" and jobs[2].state.value == "queued"
    fsw.run_until(12.0)
    assert [j.state.value for j in jobs.values()] == ["completed", "completed"]


@pytest.mark.parametrize("command,args,status,reason", [
    ("compute.submit", {"workload": "resnet"}, Status.REJECTED,
     "must be one of generate, mlp, train, transformer"),
    ("compute.submit", {"workload": "mlp", "steps": 200_000}, Status.REJECTED,
     "steps = 200000 is above the maximum 100000"),
    ("compute.submit", {"workload": "mlp", "seed": -1}, Status.REJECTED, "below the minimum"),
    ("compute.cancel", {"job": 9}, Status.FAILED, "no job 9"),
    ("compute.query", {"job": 0}, Status.REJECTED, "below the minimum 1"),
])
def test_bad_requests_get_a_clear_reason(fsw, command, args, status, reason) -> None:
    result = send(fsw, command, **args)
    assert result.status is status and reason in result.reason


def test_cancelling_a_finished_job_is_refused(fsw) -> None:
    send(fsw, "compute.submit", workload="mlp", steps=2)
    fsw.run_until(5.0)
    result = send(fsw, "compute.cancel", job=1)
    assert result.status is Status.FAILED
    assert result.reason == "job 1 is already completed; nothing to cancel"


def test_cancel_query_and_list(fsw) -> None:
    send(fsw, "compute.submit", workload="train", steps=50)
    fsw.run_until(3.0)
    assert send(fsw, "compute.cancel", job=1).status is Status.COMPLETED
    send(fsw, "compute.query", job=1)
    send(fsw, "compute.list")
    status = [e for e in fsw.events if e.name == "compute.job_status"]
    assert status[0].args["state"] == "cancelled" and len(status) == 2
    assert 0 < status[0].args["progress_pct"] < 100


def test_a_hung_accelerator_is_power_cycled_through_its_rail(fsw) -> None:
    power = fsw.component("power").board
    accelerator = fsw.component("accelerator").board
    send(fsw, "compute.submit", workload="train", seed=3, steps=12)
    fsw.run_until(9.5)
    fsw.component("compute").device.hung = True
    calls_before = list(power.calls)
    # At the prior hang rate Young/Daly puts no checkpoint in a 12-step job: it restarts.
    fsw.run_until(40.0)
    job = fsw.component("compute").jobs[1]
    assert job.state.value == "completed"
    assert job.digest == crc32c(reference("train", 3, steps=12))
    assert power.calls[len(calls_before):].count("switch") == 2  # off, then on
    assert accelerator.state is AcceleratorState.ON
    assert any(e.name == "compute.fault_corrected" and e.args["mechanism"] == "hang"
               for e in fsw.events)


def test_without_a_compute_device_submit_says_so(tmp_path) -> None:
    sw = FlightSoftware(VirtualClock(), power=FakePower(), thermal=FakeThermal(),
                        accelerator=FakeAccelerator())
    result = sw.dispatcher.dispatch("compute.submit", {"workload": "mlp"})
    assert result.status is Status.FAILED and "no compute device" in result.reason


def test_job_ids_never_repeat_across_reboots(tmp_path) -> None:
    sw = flight(tmp_path)
    send(sw, "compute.submit", workload="mlp", steps=2)
    send(sw, "compute.submit", workload="mlp", steps=2)
    sw.run_until(10.0)
    again = flight(tmp_path)  # the computer reboots
    assert [j.state.value for j in again.component("compute").jobs.values()] == \
        ["completed", "completed"]
    send(again, "compute.submit", workload="mlp", steps=2)
    assert list(again.component("compute").jobs) == [1, 2, 3]


def test_a_running_job_resumes_after_a_reboot_from_its_own_checkpoint(tmp_path) -> None:
    sw = flight(tmp_path, hangs_per_day=1e4)
    send(sw, "compute.submit", workload="train", seed=5, steps=30)
    sw.run_until(12.0)
    done = sw.component("compute").jobs[1].runner.next_step
    assert 5 < done < 30
    again = flight(tmp_path, hangs_per_day=1e4)  # power cut: the job was running
    again.run_until(1.0)
    resumed = [e.args for e in again.events if e.name == "compute.job_resumed"]
    assert resumed == [{"job": 1, "step": done}]
    again.run_until(30.0)
    job = again.component("compute").jobs[1]
    assert job.state.value == "completed"
    assert job.digest == crc32c(reference("train", 5, steps=30))


@pytest.mark.parametrize("args", [
    {"workload": "transformer", "seed": 3, "steps": 24},
    {"workload": "generate", "seed": 3, "steps": 12, "prompt": "def run(self):"},
])
def test_a_transformer_job_rebooted_midway_ends_as_a_run_without_the_reboot(tmp_path,
                                                                            args) -> None:
    sw = flight(tmp_path, hangs_per_day=1e4)
    assert send(sw, "compute.submit", **args).status is Status.COMPLETED
    sw.run_until(9.0)
    done = sw.component("compute").jobs[1].runner.next_step
    assert 2 < done < args["steps"]
    again = flight(tmp_path, hangs_per_day=1e4)  # power cut mid-job
    again.run_until(1.0)
    assert [e.args["step"] for e in again.events if e.name == "compute.job_resumed"][0] > 0
    again.run_until(args["steps"] + 5.0)
    manager = again.component("compute")
    assert manager.jobs[1].state.value == "completed"
    params = {k: v for k, v in args.items() if k not in ("workload", "seed")}
    expected = reference(args["workload"], 3, **params)
    assert manager.result(1).tobytes() == expected.tobytes()
    assert manager.jobs[1].digest == crc32c(expected)


def test_a_prompt_for_a_workload_that_takes_none_is_refused(fsw) -> None:
    result = send(fsw, "compute.submit", workload="mlp", prompt="hello")
    assert result.status is Status.FAILED and "unknown parameter 'prompt'" in result.reason


def test_a_job_never_restores_a_checkpoint_that_is_not_its_own(tmp_path) -> None:
    """Another job's checkpoints under this job's id (what a reused id left behind):
    refused with an event, and the job starts again and finishes right."""
    other = flight(tmp_path / "other", hangs_per_day=1e4)
    send(other, "compute.submit", workload="train", seed=6, steps=30)
    other.run_until(12.0)
    sw = flight(tmp_path, hangs_per_day=1e4)
    send(sw, "compute.submit", workload="train", seed=5, steps=30)
    sw.run_until(3.0)
    shutil.rmtree(tmp_path / "jobs" / "job-1")
    shutil.copytree(tmp_path / "other" / "jobs" / "job-1", tmp_path / "jobs" / "job-1")
    again = flight(tmp_path, hangs_per_day=1e4)
    again.run_until(1.0)
    refused = [e.args for e in again.events if e.name == "compute.checkpoint_refused"]
    assert len(refused) == 2 and all("not 'job 1 " in r["reason"] for r in refused)
    assert [e.args["step"] for e in again.events if e.name == "compute.job_resumed"] == [0]
    again.run_until(40.0)
    job = again.component("compute").jobs[1]
    assert job.state.value == "completed"
    assert job.digest == crc32c(reference("train", 5, steps=30))


def test_a_damaged_checkpoint_is_reported_by_file_and_the_older_one_used(tmp_path) -> None:
    sw = flight(tmp_path, hangs_per_day=1e4)
    send(sw, "compute.submit", workload="train", seed=5, steps=30)
    sw.run_until(12.0)
    folder = tmp_path / "jobs" / "job-1"
    newest = max(folder.glob("slot-*.commit"), key=lambda p: p.stat().st_mtime_ns)
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    newest.write_bytes(bytes(raw))
    again = flight(tmp_path, hangs_per_day=1e4)  # a reboot: the job resumes
    again.run_until(1.0)
    refused = [e.args["reason"] for e in again.events if e.name == "compute.checkpoint_refused"]
    assert refused == [f"slot {newest.name[5].upper()}: {newest.name} fails its CRC"]
    again.run_until(40.0)
    job = again.component("compute").jobs[1]
    assert job.state.value == "completed"
    assert job.digest == crc32c(reference("train", 5, steps=30))


def test_a_submit_whose_job_table_cannot_be_stored_fails_and_spends_no_id(tmp_path) -> None:
    sw = flight(tmp_path)
    storage = sw.records.storage
    real_write = storage.write

    def full(name: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    storage.write = full
    result = send(sw, "compute.submit", workload="mlp", steps=2)
    assert result.status is Status.FAILED
    assert "the job table cannot be stored" in result.reason and "No space" in result.reason
    assert sw.component("compute").jobs == {}
    storage.write = real_write
    send(sw, "compute.submit", workload="mlp", steps=2)
    assert list(sw.component("compute").jobs) == [1]


@pytest.mark.crash
def test_transformer_jobs_killed_at_any_moment_end_as_runs_never_killed(tmp_path) -> None:
    """The flight software training the transformer and generating from a prompt,
    killed with SIGKILL at random moments (half of them at a storage write), booted
    again on the same storage each time: nothing stored is damaged, the job table
    (a prompt in it) reads back, and the jobs finish with the fault-free results, the
    last generating from the model the first trained."""
    from tests.crash import Child, kill_trials, trial_count

    jobs = ({"workload": "transformer", "seed": 3, "steps": 40},
            {"workload": "generate", "seed": 3, "steps": 16, "prompt": "def run(self"},
            {"workload": "generate", "seed": 3, "steps": 8, "prompt": "def ", "model_job": 1})
    served = {"layers": 2, "heads": 2, "width": 64, "context": 32, "corpus_kb": 64}
    tables = [{k: v for k, v in args.items() if k not in ("workload", "seed")}
              for args in jobs]
    tables[2].update(served)

    def child(c: Child) -> None:
        c.step_at_storage_writes()
        sw = flight(tmp_path, hangs_per_day=1e4)
        if not sw.component("compute").jobs:
            for args in jobs:
                send(sw, "compute.submit", **args)
        sw.run_until(sw.clock.now_s() + 30.0)

    def check(trial) -> None:
        sw = flight(tmp_path, hangs_per_day=1e4)
        assert sw.system.problems == [], f"trial {trial.index}: {sw.system.problems}"
        table = sw.component("compute").jobs
        assert all(j.params == tables[j.id - 1] for j in table.values())

    kill_trials(child, check, trials=trial_count(12), seed=5, max_delay_s=1.5, max_steps=40)
    sw = flight(tmp_path, hangs_per_day=1e4)
    if not sw.component("compute").jobs:  # every trial died before the table was kept
        for args in jobs:
            send(sw, "compute.submit", **args)
    sw.run_until(100.0)
    manager = sw.component("compute")
    expected = [reference(args["workload"], 3, **params)
                for args, params in zip(jobs[:2], tables, strict=False)]
    # The served model is the one a host run of the same training makes.
    expected.append(reference("generate", 3, steps=8, prompt="def ", context=32,
                              train_steps=40))
    for job_id in (1, 2, 3):
        assert manager.jobs[job_id].state.value == "completed", job_id
        assert manager.result(job_id).tobytes() == expected[job_id - 1].tobytes(), job_id


def test_a_generation_job_serves_the_model_its_transformer_job_trained(tmp_path) -> None:
    """Queued behind the transformer job, the generation job starts once it has finished,
    serves its final weights (through a reboot midway: they come back from the stored
    result) and generates what a model trained on the host the same way generates."""
    sw = flight(tmp_path, hangs_per_day=1e4)
    assert send(sw, "compute.submit", workload="transformer", seed=3, steps=12).status \
        is Status.COMPLETED
    assert send(sw, "compute.submit", workload="generate", model_job=1, steps=8,
                prompt="def run").status is Status.COMPLETED
    job = sw.component("compute").jobs[2]
    assert job.params == {"steps": 8, "prompt": "def run", "model_job": 1, "layers": 2,
                          "heads": 2, "width": 64, "context": 32, "corpus_kb": 64}
    sw.run_until(17.0)
    assert 1 < sw.component("compute").jobs[2].runner.next_step < 8
    again = flight(tmp_path, hangs_per_day=1e4)  # power cut mid-generation
    again.run_until(12.0)
    manager = again.component("compute")
    assert [j.state.value for j in manager.jobs.values()] == ["completed", "completed"]
    assert any(e.name == "compute.job_resumed" for e in again.events)
    hosted = reference("generate", 3, steps=8, prompt="def run", context=32, train_steps=12)
    assert manager.result(2).tobytes() == hosted.tobytes()


@pytest.mark.parametrize("first,args,reason", [
    ({"workload": "transformer"}, {"workload": "mlp", "model_job": 1},
     "model_job is for generate jobs, not mlp"),
    ({"workload": "transformer"}, {"workload": "generate", "model_job": 9},
     "no job 9 to take a model from"),
    ({"workload": "mlp"}, {"workload": "generate", "model_job": 1},
     "job 1 is a mlp job; a model comes from a transformer job"),
    ({"workload": "transformer"}, {"workload": "generate", "model_job": 1, "steps": 30,
                                   "prompt": "def run(self"},
     "a 12-byte prompt and 30 tokens do not fit a context of 32"),
])
def test_a_generation_job_with_a_model_it_cannot_serve_is_refused(fsw, first, args,
                                                                 reason) -> None:
    send(fsw, "compute.submit", **first)
    result = send(fsw, "compute.submit", **args)
    assert result.status is Status.FAILED and reason in result.reason
    assert len(fsw.component("compute").jobs) == 1


def test_a_generation_job_whose_model_job_was_cancelled_fails_with_the_reason(fsw) -> None:
    send(fsw, "compute.submit", workload="transformer", steps=50)
    send(fsw, "compute.submit", workload="generate", model_job=1, steps=4)
    assert send(fsw, "compute.cancel", job=1).status is Status.COMPLETED
    result = send(fsw, "compute.submit", workload="generate", model_job=1)
    assert result.status is Status.FAILED and "job 1 is cancelled: it has no model" in \
        result.reason
    fsw.run_until(3.0)
    job = fsw.component("compute").jobs[2]
    assert job.state.value == "failed" and job.error == "its model, job 1, is cancelled"
    failed = [e for e in fsw.events if e.name == "compute.job_failed"]
    assert failed[0].args == {"job": 2, "reason": "its model, job 1, is cancelled"}
