"""A simulated mission: fly a satellite for a while, run its operations plan, and
report what the world did and what the flight software saw."""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from drivers.compute import NumpyDevice
from flight.bus import ALL, COMMAND, EVENT, EventRecord, Sample
from flight.compute.catalog import make_workload
from flight.compute.generate import Generation
from flight.compute.manager import ComputeManager, Job
from flight.compute.runner import JobRunner, Protection
from flight.compute.workloads import Workload
from flight.dispatcher import CommandResult
from flight.shield import crc32c
from hal.dictionary import Severity
from sim.contact import ContactLink
from sim.stations import all_passes
from skyrack.assembly import Satellite
from skyrack.campaign import BENIGN_RELATIVE, deviation
from skyrack.report import utc_text

SERIES = ("power.soc_pct", "power.solar_power_w", "power.load_power_w", "accelerator.temp_c",
          "thermal.accelerator_temp_c", "thermal.radiator_temp_c", "thermal.structure_temp_c",
          "thermal.flight_computer_temp_c",
          "thermal.battery_temp_c", "mode.mode")
SERIES_STEP_S = 10.0


class Recorder:
    """Listens on the flight bus: numeric telemetry extremes, events, command outcomes, and
    a few points every 10 s for plots."""

    def __init__(self, satellite: Satellite) -> None:
        self.float_points = {t.name for t in satellite.flight.dictionary().telemetry
                             if t.type == "float"}
        self.points: dict[str, list[float]] = {}  # name -> [min, max, last, samples]
        self.events: collections.Counter[str] = collections.Counter()
        self.event_log: list[EventRecord] = []
        self.commands: list[CommandResult] = []
        self.series: dict[str, list[tuple[float, Any]]] = {name: [] for name in SERIES}
        satellite.flight.bus.subscribe(ALL, self._on_message)
        satellite.on_reboot.append(lambda flight: flight.bus.subscribe(ALL, self._on_message))

    def _on_message(self, topic: str, message: Any) -> None:
        if type(message) is Sample:
            track = self.series.get(topic)
            if track is not None and (not track or message.t_s - track[-1][0] >= SERIES_STEP_S):
                track.append((message.t_s, message.value))
            if topic in self.float_points:
                v = message.value
                stats = self.points.get(topic)
                if stats is None:
                    self.points[topic] = [v, v, v, 1]
                else:
                    if v < stats[0]:
                        stats[0] = v
                    if v > stats[1]:
                        stats[1] = v
                    stats[2] = v
                    stats[3] += 1
        elif topic == EVENT:
            self.events[message.severity.value] += 1
            self.event_log.append(message)
        elif topic == COMMAND:
            self.commands.append(message)


def fly(satellite: Satellite, duration_s: float, recorder: Recorder | None = None,
        pace: Callable[[float], None] | None = None) -> Recorder:
    """Run the flight software for `duration_s`, sending the plan's commands on time.
    `pace(t_s)`, when given, is called before each simulated second is run: it holds
    the sim back to the wall clock (and may raise to stop it)."""
    recorder = recorder or Recorder(satellite)

    def run_until(t_s: float) -> None:
        if pace is None:
            satellite.run_until(t_s)
            return
        while satellite.flight.executive.next_tick_s() <= t_s + 1e-9:
            step_s = min(t_s, satellite.clock.now_s() + 1.0)  # holds at least one tick
            pace(step_s)
            satellite.run_until(step_s)

    for step in sorted(satellite.definition.plan, key=lambda s: s.at_s):
        if step.at_s > duration_s:
            break
        run_until(step.at_s)
        satellite.flight.submit(step.command, step.args)
    run_until(duration_s)
    return recorder


def _r(x: float, digits: int = 3) -> float:
    return round(x, digits) if math.isfinite(x) else x


def report(satellite: Satellite, recorder: Recorder, *, seed: int | None = None,
           orbits: float = 0.0) -> dict[str, Any]:
    """The mission report: plain data, identical for identical runs in the sim. Without
    a world (real boards), it is what the flight software saw, and for how long."""
    flight = satellite.flight
    out: dict[str, Any] = {"satellite": satellite.definition.name, "seed": seed}
    world = satellite.world
    if world is None:
        out["duration_s"] = _r(satellite.clock.now_s())
    else:
        orbit, truth = world.orbit, world.truth
        out["orbit"] = {
            "altitude_km": _r(world.start_altitude_km),
            "period_s": _r(orbit.period_s),  # node to node, with J2
            "keplerian_period_s": _r(orbit.keplerian_period_s),
            "sso_inclination_deg": _r(orbit.sso_inclination_deg),
            "ltan_h": _r(orbit.ltan_h),  # mean local solar time
            "epoch_utc": utc_text(orbit.epoch_unix_s),
            "altitude_km_end": _r(orbit.altitude_km, 4),
            "decay_m": _r(1e3 * (world.start_altitude_km - orbit.altitude_km), 1),
            # at the set solar activity, from where the flight ended; None without drag
            "lifetime_days": (None if world.drag is None
                              else _r(world.drag.lifetime_s(orbit.altitude_km) / 86400.0, 1)),
            "ballistic_m2_kg": None if world.drag is None else _r(world.drag.ballistic_m2_kg, 5),
            "f107": None if world.drag is None else world.drag.f107,
            "reentered": world.reentered,
            "beta_deg_start": _r(orbit.beta_deg(0.0), 2),
            "beta_deg_end": _r(orbit.beta_deg(world.t_s), 2),
            "orbits": _r(orbits),
        }
        out["duration_s"] = _r(world.t_s)
        rad = world.radiation
        days = rad.exposed_s / 86400.0 or 1.0
        out["radiation"] = {
            "acceleration": rad.config.acceleration,
            "hang_acceleration": rad.config.hang_acceleration,
            "memory": rad.config.memory,
            "memory_cross_section_cm2": rad.config.memory_sigma_cm2,
            "solar_cycle": rad.config.solar,
            "saa_s": _r(rad.saa_s),
            # orbit-averaged over the flight, protons above 30 MeV with the cosmic-ray floor
            "flux_avg_cm2_s": _r(rad.fluence / rad.exposed_s if rad.exposed_s else 0.0, 3),
            "upsets_per_bit_day": float(f"{rad.config.memory_sigma_cm2 * rad.fluence / days:.4g}"),
            # what radiation would have done without acceleration, per day of flight
            "expected_per_day": {k: float(f"{v / days:.4g}") for k, v in
                                 sorted(rad.expected.items())},
            "upsets_injected": {k: rad.injected[k] for k in sorted(rad.injected)},
            "upsets_injected_total": sum(rad.injected.values()),
        }
        stations = satellite.definition.stations
        link = satellite.flight.downlink.link
        found = all_passes(stations, world.start_orbit, 0.0, world.t_s) if stations else []
        store = satellite.flight.component("storage").store
        out["contact"] = {
            "mode": "passes" if isinstance(link, ContactLink) else "always",
            "passes": [{"station": p.station, "aos_s": _r(p.aos_s), "los_s": _r(p.los_s),
                        "max_elevation_deg": _r(p.max_elevation_deg, 2)} for p in found],
            "contact_s": _r(link.contact_s) if isinstance(link, ContactLink) else None,
            "link": ({k: link.counters[k] for k in sorted(link.counters)}
                     if isinstance(link, ContactLink) else {}),
            "store": {"waiting": len(store.packets),
                      **{k: store.counts[k] for k in ("stored", "overwritten", "refused",
                                                      "played_back")}},
        }
        out["world"] = {
            "sunlit_s": _r(truth.sunlit_s),
            "eclipse_s": _r(truth.eclipse_s),
            "penumbra_s": _r(truth.penumbra_s),
            "eclipses": truth.eclipses,
            "eclipse_fraction": _r(truth.eclipse_s / world.t_s if world.t_s else 0.0, 4),
            "solar_in_wh": _r(truth.solar_wh, 1),
            "load_out_wh": _r(truth.load_wh, 1),
            "shunted_wh": _r(truth.shunted_wh, 1),
            "brownouts": truth.brownouts,  # the battery could not carry the loads
            "soc_pct": {"min": _r(100 * truth.soc.low, 2), "max": _r(100 * truth.soc.high, 2),
                        "end": _r(100 * world.battery.soc, 2)},
            "temps_c": {name: {"min": _r(x.low, 2), "max": _r(x.high, 2),
                               "end": _r(world.thermal.nodes[name].temp_c, 2)}
                        for name, x in truth.temps_c.items()},
        }
    statuses = collections.Counter(c.status.value for c in recorder.commands)
    out["flight"] = {
        "telemetry": {name: {"min": _r(s[0]), "max": _r(s[1]), "last": _r(s[2]),
                             "samples": s[3]}
                      for name, s in sorted(recorder.points.items())},
        "events": {sev.value: recorder.events[sev.value] for sev in Severity},  # zeros too
        "commands": {k: statuses[k] for k in ("completed", "rejected", "failed")},
        "command_log": [{"t_s": _r(c.t_s, 1), "command": c.name, "status": c.status.value,
                         "reason": c.reason or None}
                        for c in recorder.commands],
        "reboots": satellite.reboots,
        "executive": {"ticks": flight.executive.ticks, "overruns": flight.executive.overruns,
                      "rates_hz": flight.executive.rates_hz,
                      "task_errors": sum(flight.executive.task_errors.values())},
    }
    modes = flight.component("mode")
    out["modes"] = {
        "mode_s": {k: _r(v) for k, v in modes.mode_s.items()},
        "budget_s": {k: _r(v) for k, v in modes.budget_s.items() if v},
        "compute_sheds": modes.sheds,
        "compute_sheds_in_eclipse": modes.sheds_in_eclipse,
        "soc_floor_pct": modes.param("soc_floor_pct"),
        "eclipses_seen": modes.eclipses.seen,
    }
    fdir = flight.component("fdir")
    out["fdir"] = {"actions": [{"t_s": _r(t, 1), "action": what} for t, what in fdir.actions]}
    out["compute"] = compute_report(satellite)
    out["boards"] = {name: driver.link.stats() for name, driver in satellite.drivers.items()}
    space = flight.space_link
    out["space_link"] = {**{k: space.counters[k] for k in
                            ("tc_received", "tc_accepted", "tc_rejected", "tc_auth_rejected")},
                         "tm_sent": flight.downlink.counters["tm_sent"],
                         "rejected": {k: space.rejected[k] for k in sorted(space.rejected)}}
    return out


@functools.lru_cache(maxsize=16)
def _reference(name: str, seed: int, params: tuple[tuple[str, Any], ...]) -> np.ndarray:
    """The fault-free result of a job: deterministic, so computed once a process (every
    mission flown with the default plan asks for the same four)."""
    result = _fault_free(make_workload(name, seed, **dict(params)))
    result.flags.writeable = False
    return result


def _fault_free(workload: Workload) -> np.ndarray:
    return JobRunner(workload, NumpyDevice(), None, Protection(enabled=False)).run()


def _job_reference(manager: ComputeManager, job: Job,
                   workload: Workload) -> np.ndarray | None:
    """What the job (`workload`, as made from it) computes without faults, from the
    inputs it had. A generation job that served another job's model is run on that
    job's stored result: it answers for its own arithmetic, and a fault in the training
    is the training job's (None when that result no longer reads back)."""
    model_job = workload.params.get("model_job", 0)
    if not model_job:
        return _reference(job.workload, job.seed, tuple(sorted(job.params.items())))
    weights = manager.result(model_job)
    if weights is None or not isinstance(workload, Generation):
        return None
    workload.serve(weights)
    return _fault_free(workload)


def compute_report(satellite: Satellite) -> dict[str, Any]:
    """Jobs as the flight software ran them, each checked against a fault-free reference
    run of the same job: a digest that differs is silent data corruption."""
    manager = satellite.flight.component("compute")
    jobs = []
    for job in manager.jobs.values():
        entry: dict[str, Any] = {"id": job.id, "workload": job.workload, "seed": job.seed,
                                 "steps": job.steps, "state": job.state.value}
        if job.runner is not None:
            entry["faults_corrected"] = len(job.runner.stats.events)
            entry["steps_lost"] = job.runner.stats.steps_lost
        workload = make_workload(job.workload, job.seed, **job.params)
        reference = _job_reference(manager, job, workload) if job.digest is not None else None
        if reference is not None:
            entry["crc32c"] = job.digest
            entry["matches_reference"] = job.digest == crc32c(reference)
            result = manager.result(job.id)
            if result is not None and not entry["matches_reference"]:
                size = deviation(result, reference)
                entry["deviation"] = size  # within BENIGN_RELATIVE: benign, not corruption
                entry["benign"] = size <= BENIGN_RELATIVE
            if result is not None and job.workload == "transformer":
                entry["loss"] = [round(float(x), 4) for x in result[:job.steps]]
            if result is not None and job.workload == "generate":
                entry["model_job"] = workload.params["model_job"]  # 0: trained on the host
                entry["prompt"] = workload.text["prompt"]
                entry["text"] = bytes(result.astype(np.uint8)).decode("utf-8", "replace")
        jobs.append(entry)
    by_mechanism: collections.Counter[str] = collections.Counter()
    for job in manager.jobs.values():
        if job.runner is not None:
            by_mechanism.update(job.runner.stats.count())
    return {
        "jobs": jobs,
        "completed": manager.counters["completed"],
        "failed": manager.counters["failed"],
        "faults_corrected": manager.counters["faults_corrected"],
        "corrected_by": {k: by_mechanism[k] for k in sorted(by_mechanism)},
        "silent_corruptions": sum(1 for j in jobs if j.get("matches_reference") is False
                                  and not j.get("benign")),
    }
