"""The compute manager: ground-commanded jobs on the accelerator, run in steps under the
executive, protected end to end, results stored.

Commands submit, cancel, query and list jobs. One job runs at a time, a few steps a
second (a parameter); each step is checked and, when a check fires, repaired and run
again, rolled back or resumed after a power cycle (flight.compute.runner). Finished
results go to storage as the record `job-<id>.result` (with a CRC32C of the data).

The job table and the next job id are a stored record, written before a job is
announced, so ids never repeat on a satellite and a reboot loses no job: a job that
was running resumes from its last checkpoint (or starts again when it has none). Every
checkpoint names its job (id and a digest of workload, parameters and seed), and a job
never restores one that is not its own.

Scrub and checkpoint intervals follow flight.compute.schedule: the upset rate is
estimated from the corrections made (so scrubs speed up in the SAA by themselves), and
a checkpoint's cost is modelled from the bytes it writes at the storage bandwidth
measured by bench/shield.py, so that runs stay deterministic.
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar

import msgpack
import numpy as np

from flight.accelerator import AcceleratorComponent
from flight.component import (
    Arg,
    CommandFailed,
    Component,
    Counter,
    Event,
    Parameter,
    Telemetry,
    command,
    periodic,
)
from flight.compute.catalog import WORKLOADS, make_workload
from flight.compute.generate import ARCHITECTURE, Generation
from flight.compute.runner import JobFailed, JobRunner, Protection
from flight.compute.schedule import RateEstimate, Rates, scrub_and_checkpoint_s, steps
from flight.compute.workloads import JobParameterError, Workload
from flight.nvm import Records
from flight.shield import CheckpointStore, crc32c
from hal.compute import ComputeDevice
from hal.dictionary import Severity

SECONDS_PER_DAY = 86400.0
KEEP_FINISHED = 64  # finished jobs kept in the table (their results stay in storage)
# One member a workload, named from the workload table (so mypy cannot list them).
WorkloadName = enum.Enum(  # type: ignore[misc]
    "WorkloadName", {name.upper(): name for name in sorted(WORKLOADS)})


@enum.unique
class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class Job:
    id: int
    workload: str
    seed: int
    params: dict[str, int | str]  # a prompt is text
    steps: int
    state: JobState = JobState.QUEUED
    runner: JobRunner | None = None
    digest: int | None = None
    error: str = ""
    faults: list[str] = field(default_factory=list)
    result: np.ndarray | None = None  # since completion in this boot (the record keeps it)

    @property
    def progress_pct(self) -> float:
        done = self.runner.next_step if self.runner else 0
        return 100.0 if self.state is JobState.COMPLETED else 100.0 * done / self.steps

    @property
    def identity(self) -> str:
        """The job's id and a digest of what it computes: the owner its checkpoints name."""
        what = msgpack.packb([self.workload, self.seed, sorted(self.params.items()),
                              self.steps])
        return f"job {self.id} {hashlib.sha256(what).hexdigest()[:16]}"

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "workload": self.workload, "seed": self.seed,
                "params": self.params, "steps": self.steps, "state": self.state.value,
                "digest": self.digest, "error": self.error}


class ComputeManager(Component):
    """Runs accelerator jobs the ground submits."""

    name = "compute"
    telemetry: ClassVar = (
        Telemetry("queued", "int", "Jobs waiting to run"),
        Telemetry("active_job", "int", "Id of the running job; 0 when idle"),
        Telemetry("progress_pct", "float", "Progress of the running job", "%"),
        Counter("completed", "Jobs completed"),
        Counter("failed", "Jobs that could not finish correct"),
        Counter("faults_corrected", "Faults detected and corrected in jobs"),
        Counter("steps_lost", "Steps run again after faults"),
        Telemetry("upset_rate", "float", "Estimated upsets per bit per day", "1/bit/day"),
        Telemetry("scrub_interval_s", "float", "Scrub interval in use", "s"),
        Telemetry("checkpoint_interval_s", "float", "Checkpoint interval in use", "s"),
    )
    events: ClassVar = (
        Event("job_submitted", Severity.INFO, "A job was queued",
              job="int", workload="str", steps="int"),
        Event("job_started", Severity.INFO, "A job started running", job="int"),
        Event("job_completed", Severity.INFO, "A job finished; its result is stored",
              job="int", crc32c="int", faults="int"),
        Event("job_failed", Severity.ERROR, "A job could not be brought to a correct finish",
              job="int", reason="text"),
        Event("job_cancelled", Severity.INFO, "A job was cancelled", job="int"),
        Event("job_status", Severity.INFO, "The state of a job, on request",
              job="int", workload="str", state="str", progress_pct="float", crc32c="int",
              reason="text"),
        Event("fault_corrected", Severity.WARNING, "A check caught a fault in a job",
              job="int", mechanism="str", step="int"),
        Event("job_resumed", Severity.INFO, "A job that was running before a reboot resumed",
              job="int", step="int"),
        Event("checkpoint_refused", Severity.WARNING,
              "A checkpoint was found damaged, or not the job's own, and not used",
              job="int", reason="text"),
    )
    parameters: ClassVar = (
        Parameter("steps_per_tick", "int", 1, "Job steps run each second", None, 1, 100),
        Parameter("upsets_per_bit_day", "float", 1e-8,
                  "Prior upset rate of accelerator memory", None, 0.0, 1.0),
        Parameter("hangs_per_day", "float", 0.05, "Prior rate of accelerator hangs", None,
                  0.0, 1e4),
        Parameter("losses_per_day", "float", 1e-6,
                  "Target rate of stripes lost beyond parity", None, 1e-12, 1.0),
        Parameter("storage_bytes_per_s", "float", 1.2e9,
                  "Checkpoint write bandwidth (bench/shield.py)", "B/s", 1e3, 1e12),
        Parameter("checkpoint_fixed_s", "float", 0.005, "Checkpoint cost beside the bytes "
                  "(fsyncs, commit record)", "s", 0.0, 10.0),
    )

    def __init__(self, device: ComputeDevice | None, records: Records | None,
                 work_dir: str | Path | None,
                 accelerator: AcceleratorComponent | None = None) -> None:
        """`accelerator` owns the board whose power cycle cures a hung device (an
        AcceleratorComponent; None: the device's own reset)."""
        super().__init__()
        self.device = device
        self.records = records or Records(None)
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.power_cycle = accelerator.power_cycle if accelerator is not None else None
        table = self.records.load("compute.jobs", _check_table, None) \
            or {"next_id": self._first_unused_id(), "jobs": []}
        self._next_id = table["next_id"]
        self.jobs: dict[int, Job] = {j.id: j for j in table["jobs"]}
        self.upsets = RateEstimate(prior=self.param("upsets_per_bit_day") / SECONDS_PER_DAY)
        self.hangs = RateEstimate(prior=self.param("hangs_per_day") / SECONDS_PER_DAY,
                                  window_s=86400.0)
        self.intervals_s = (math.inf, math.inf)
        self.allowed = True  # the mode manager's say: no new job steps while False

    def parameter_updated(self, name: str, value: Any) -> None:
        if name == "upsets_per_bit_day":
            self.upsets.prior = value / SECONDS_PER_DAY
        elif name == "hangs_per_day":
            self.hangs.prior = value / SECONDS_PER_DAY

    # -- commands ---------------------------------------------------------------------

    @command
    def submit(self, workload: Annotated[WorkloadName, Arg("Workload to run")],
               seed: Annotated[int, Arg("Seed of the job's data", min=0, max=2**31 - 1)] = 0,
               steps: Annotated[int, Arg("Steps to run; 0 for the workload's default",
                                         min=0, max=100_000)] = 0,
               prompt: Annotated[str, Arg("A generation job's prompt; empty for its "
                                          "default", text=True)] = "",
               model_job: Annotated[int, Arg("A generation job's model: the transformer "
                                             "job whose trained weights it serves (it runs "
                                             "once that job has finished); 0 for a model "
                                             "trained when it starts", min=0,
                                             max=2**31 - 1)] = 0) -> None:
        """Queue a compute job on the accelerator."""
        if self.device is None or self.work_dir is None:
            raise CommandFailed("this satellite has no compute device")
        params: dict[str, Any] = {"steps": steps} if steps else {}
        if prompt:
            params["prompt"] = prompt
        if model_job:
            params.update(self._model_of(workload.value, model_job))
        try:
            probe = make_workload(workload.value, seed, **params)
        except JobParameterError as e:
            raise CommandFailed(str(e)) from None
        job = Job(self._next_id, workload.value, seed, params, probe.steps)
        self._next_id += 1
        self.jobs[job.id] = job
        try:
            self._save_table()  # the id is spent for good before anyone hears of it
        except OSError as e:  # nobody heard of this job: as if it was never submitted
            del self.jobs[job.id]
            self._next_id -= 1
            raise CommandFailed(f"the job table cannot be stored: {e}") from None
        self.emit("job_submitted", job=job.id, workload=job.workload, steps=job.steps)
        self._publish()

    def _model_of(self, workload: str, model_job: int) -> dict[str, int]:
        """A generation job's parameters for serving job `model_job`'s model: its id and
        the architecture it was trained with."""
        if workload != "generate":
            raise CommandFailed(f"model_job is for generate jobs, not {workload}")
        model = self.jobs.get(model_job)
        if model is None:
            raise CommandFailed(f"no job {model_job} to take a model from")
        if model.workload != "transformer":
            raise CommandFailed(f"job {model_job} is a {model.workload} job; a model comes "
                                "from a transformer job")
        if model.state in (JobState.FAILED, JobState.CANCELLED):
            raise CommandFailed(f"job {model_job} is {model.state.value}: it has no model")
        trained = make_workload(model.workload, model.seed, **model.params).params
        return {"model_job": model_job, **{k: trained[k] for k in ARCHITECTURE}}

    @command
    def cancel(self, job: Annotated[int, Arg("Job id", min=1, max=2**31 - 1)]) -> None:
        """Cancel a queued or running job."""
        target = self._job(job)
        if target.state in FINISHED:
            raise CommandFailed(f"job {job} is already {target.state.value}; nothing to cancel")
        self._finish(target, JobState.CANCELLED)
        self.emit("job_cancelled", job=job)

    @command
    def query(self, job: Annotated[int, Arg("Job id", min=1, max=2**31 - 1)]) -> None:
        """Report a job's state, progress and result digest as an event."""
        self._status(self._job(job))

    @command(name="list")
    def list_jobs(self) -> None:
        """Report every job's state as events."""
        for job in self.jobs.values():
            self._status(job)

    # -- running ----------------------------------------------------------------------

    @periodic(1)
    def run(self) -> None:
        if not self.allowed:
            self._publish()
            return
        job = self._active() or self._start_next()
        if job is None:
            return
        runner = job.runner
        assert runner is not None
        try:
            self._schedule(runner)
            upsets = hangs = 0
            for _ in range(self.param("steps_per_tick")):
                if runner.done:
                    break
                seen = len(runner.stats.events)
                runner.run_step()
                for mechanism, step in runner.stats.events[seen:]:
                    self.counters["faults_corrected"] += 1
                    hangs += mechanism == "hang"
                    upsets += mechanism in ("scrub", "abft", "crc")
                    self.emit("fault_corrected", job=job.id, mechanism=mechanism, step=step)
            self._report_refused(job)
            self.upsets.add(upsets, runner.memory_bits, 1.0)
            self.hangs.add(hangs, 1.0, 1.0)
            if runner.done:
                self._complete(job, runner.run())  # final scrub, then the result
        except JobFailed as e:
            job.error = str(e)
            self._finish(job, JobState.FAILED)
            self.emit("job_failed", job=job.id, reason=job.error)
        self._publish()

    def _schedule(self, runner: JobRunner) -> None:
        """Scrub and checkpoint intervals for the rates estimated now, in steps."""
        p = runner.protection
        rates = Rates(self.upsets.rate, self.hangs.rate,
                      self.param("losses_per_day") / SECONDS_PER_DAY,
                      self.param("storage_bytes_per_s"), self.param("checkpoint_fixed_s"))
        scrub_s, ckpt_s = self.intervals_s = scrub_and_checkpoint_s(
            rates, p.block_bytes, p.stripe_blocks, runner.stripes, runner.state_bytes)
        rate = self.param("steps_per_tick")
        runner.protection = replace(p, scrub_every=steps(scrub_s, rate),
                                    checkpoint_every=steps(ckpt_s, rate))

    def _start_next(self) -> Job | None:
        """The job that was running before a reboot (it resumes), else the next queued."""
        job = next((j for j in self.jobs.values() if j.state is JobState.RUNNING), None) \
            or next((j for j in self.jobs.values() if j.state is JobState.QUEUED), None)
        if job is None:
            return None
        assert self.device is not None and self.work_dir is not None
        directory = self.work_dir / f"job-{job.id}"
        resuming = job.state is JobState.RUNNING
        if not resuming:
            shutil.rmtree(directory, ignore_errors=True)  # nothing of this id may be there
        workload = make_workload(job.workload, job.seed, **job.params)
        refused = self._serve(workload)
        if refused:  # its model job failed, or left no model: nothing for it to run
            job.error = refused
            self._finish(job, JobState.FAILED)
            self.emit("job_failed", job=job.id, reason=refused)
            return None
        job.runner = JobRunner(workload, self.device,
                               CheckpointStore(directory, owner=job.identity), Protection(),
                               power_cycle=self.power_cycle)
        if resuming:
            job.runner.resume()
        self._report_refused(job)
        if resuming:
            self.emit("job_resumed", job=job.id, step=job.runner.next_step)
        else:
            job.state = JobState.RUNNING
            self._save_table()
            self.emit("job_started", job=job.id)
        return job

    def _serve(self, workload: Workload) -> str:
        """Hand a generation job the weights of its model job; why not, when it cannot."""
        model_job = workload.params.get("model_job", 0)
        if not model_job or not isinstance(workload, Generation):
            return ""
        model = self.jobs.get(model_job)  # None: finished long ago, its result kept
        if model is not None and model.state is not JobState.COMPLETED:
            return f"its model, job {model_job}, is {model.state.value}"
        result = self.result(model_job)
        if result is None:
            return f"its model, job {model_job}, left no readable result"
        try:
            workload.serve(result)
        except JobParameterError as e:
            return str(e)
        return ""

    def _complete(self, job: Job, result: np.ndarray) -> None:
        job.digest = crc32c(result)
        job.result = result
        self.records.save(f"job-{job.id}.result", {
            "job": job.id, "workload": job.workload, "seed": job.seed, "steps": job.steps,
            "dtype": result.dtype.str, "shape": list(result.shape),
            "crc32c": job.digest, "data": result.tobytes(),
        })
        assert job.runner is not None
        self.counters["steps_lost"] += job.runner.stats.steps_lost
        self._finish(job, JobState.COMPLETED)
        self.emit("job_completed", job=job.id, crc32c=job.digest,
                  faults=len(job.runner.stats.events))

    def result(self, job_id: int) -> np.ndarray | None:
        """A completed job's result (None when there is none, or its record does not
        read back: the record's own checks say so in storage health)."""
        job = self.jobs.get(job_id)
        if job is not None and job.result is not None:
            return job.result

        def check(body: Any) -> np.ndarray:
            array = np.frombuffer(body["data"], np.dtype(body["dtype"]))
            return array.reshape(body["shape"]).copy()

        return self.records.load(f"job-{job_id}.result", check, None)

    def _finish(self, job: Job, state: JobState) -> None:
        job.state = state
        if state is JobState.COMPLETED:
            self.counters["completed"] += 1
        elif state is JobState.FAILED:
            self.counters["failed"] += 1
        finished = [j.id for j in self.jobs.values() if j.state in FINISHED]
        for old in finished[:-KEEP_FINISHED]:
            del self.jobs[old]
        self._save_table()
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir / f"job-{job.id}", ignore_errors=True)
        if job.runner is not None and self.device is not None:
            for region in list(self.device.regions()):
                self.device.free(region)
        self._publish()

    def _active(self) -> Job | None:
        return next((j for j in self.jobs.values()
                     if j.state is JobState.RUNNING and j.runner is not None), None)

    def _first_unused_id(self) -> int:
        """With no job table (a new satellite, or both copies lost): past every id that
        left a trace, a result or a checkpoint folder, so that no id is used twice."""
        names = self.records.names()
        if self.work_dir is not None and self.work_dir.is_dir():
            names += [p.name for p in self.work_dir.iterdir()]
        used = [int(m.group(1)) for n in names if (m := re.match(r"job-(\d+)", n))]
        return max(used, default=0) + 1

    def _report_refused(self, job: Job) -> None:
        assert job.runner is not None
        for reason in job.runner.take_refused():
            self.emit("checkpoint_refused", job=job.id, reason=reason)

    def _save_table(self) -> None:
        self.records.save("compute.jobs", {"next_id": self._next_id,
                                           "jobs": [j.to_record() for j in self.jobs.values()]})

    def _job(self, job_id: int) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise CommandFailed(f"no job {job_id}") from None

    def _status(self, job: Job) -> None:
        args: dict[str, Any] = {"job": job.id, "workload": job.workload, "state": job.state.value,
                                "progress_pct": round(job.progress_pct, 1)}
        if job.digest is not None:
            args["crc32c"] = job.digest
        if job.error:
            args["reason"] = job.error
        self.emit("job_status", **args)

    def _publish(self) -> None:
        """The queue's state, the rate estimate and the intervals it sets, each when it
        changes (an idle manager has nothing new to say each second), and the counts."""
        active = self._active()
        status = self.publish_status
        status("queued", sum(j.state is JobState.QUEUED for j in self.jobs.values()))
        status("active_job", active.id if active else 0)
        status("progress_pct", active.progress_pct if active else 0.0)
        self.report_counters()  # those that changed
        status("upset_rate", self.upsets.rate * SECONDS_PER_DAY)
        status("scrub_interval_s", min(self.intervals_s[0], 1e9))
        status("checkpoint_interval_s", min(self.intervals_s[1], 1e9))


def _check_table(body: Any) -> dict[str, Any]:
    """The stored job table, every field checked (flight.nvm)."""
    next_id = body["next_id"]
    if type(next_id) is not int or not 1 <= next_id < 2**31:
        raise ValueError(f"next job id {next_id!r}")
    jobs = []
    for doc in body["jobs"]:
        job = Job(doc["id"], doc["workload"], doc["seed"], dict(doc["params"]), doc["steps"],
                  JobState(doc["state"]), digest=doc["digest"], error=doc["error"])
        if not (type(job.id) is int and 1 <= job.id < next_id and job.workload in WORKLOADS
                and type(job.seed) is int and type(job.steps) is int and job.steps >= 0
                and all(type(k) is str and type(v) in (int, str)
                        for k, v in job.params.items())
                and (job.digest is None or type(job.digest) is int)
                and type(job.error) is str):
            raise ValueError(f"job {doc.get('id')!r} is malformed")
        if job.state not in FINISHED:  # it will run: its parameters must still be good
            make_workload(job.workload, job.seed, **job.params)  # JobParameterError
        jobs.append(job)
    return {"next_id": next_id, "jobs": jobs}
