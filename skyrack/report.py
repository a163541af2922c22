"""The mission, campaign and dictionary reports as text: the formatting for humans
that the CLI prints."""

from __future__ import annotations

import datetime
from typing import Any

from hal.valuetype import ValueType

MARK = {"ok": "", "yellow": " [YELLOW]", "red": " [RED]"}


def short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def arg_text(a: Any) -> str:
    kind = ValueType(a.type).usage(a, a.min, a.max)
    unit = f" {a.unit}" if a.unit else ""
    return f"{a.name}=<{kind}{unit}>"


def hhmm(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_report(r: dict[str, Any]) -> str:
    seed = f" (seed {r['seed']})" if r["seed"] is not None else ""
    lines = [f"Mission report: {r['satellite']}{seed}"]
    if "orbit" not in r:
        lines.append(f"Flew {r['duration_s']:.1f} s on the wall clock, against real ports")
    if "orbit" in r:
        o, w, rad = r["orbit"], r["world"], r["radiation"]
        lines += [
            "",
            f"Orbit       {o['altitude_km']:g} km circular, sun-synchronous "
            f"(i = {o['sso_inclination_deg']:.2f} deg), LTAN {hhmm(o['ltan_h'])}, "
            f"beta {o['beta_deg_start']:.1f} .. {o['beta_deg_end']:.1f} deg",
            f"            period {o['period_s']:.1f} s node to node (Kepler's "
            f"{o['keplerian_period_s']:.1f} s); flew {o['orbits']:g} orbits "
            f"= {r['duration_s']:.0f} s",
            "Drag        " + (
                "none (no mass_kg and drag_area_m2 in the definition)"
                if o["lifetime_days"] is None else
                f"sank {o['decay_m']:.1f} m (B = {o['ballistic_m2_kg']:.4g} m2/kg, F10.7 "
                f"{o['f107']:g}); lifetime {_days(o['lifetime_days'])} days from "
                f"{o['altitude_km_end']:.2f} km" + (" (re-entered)" if o["reentered"] else "")),
            _contact_line(r["contact"]),
            f"Sunlight    {w['sunlit_s']:.0f} s lit, {w['eclipse_s']:.0f} s in eclipse "
            f"({w['eclipses']} eclipses, {100 * w['eclipse_fraction']:.1f} %; "
            f"{w['penumbra_s']:.0f} s in penumbra)",
            f"Energy      solar in {w['solar_in_wh']:.1f} Wh, loads out {w['load_out_wh']:.1f} Wh, "
            f"shunted {w['shunted_wh']:.1f} Wh; {w['brownouts']} brownouts",
            f"Battery     state of charge {w['soc_pct']['min']:.1f} .. "
            f"{w['soc_pct']['max']:.1f} %, ending {w['soc_pct']['end']:.1f} %",
            f"Radiation   {rad['upsets_injected_total']} upsets injected "
            f"(memory rates x{rad['acceleration']:g}, hangs x{rad['hang_acceleration']:g}; "
            f"{rad['saa_s']:.0f} s in the SAA): "
            + ", ".join(f"{k} {v}" for k, v in rad["upsets_injected"].items()),
            f"            unaccelerated: {rad['flux_avg_cm2_s']:.3g} protons/cm2/s above 30 MeV "
            f"on average, {rad['upsets_per_bit_day']:.2g} upsets/bit/day ({rad['memory']}); "
            "expected per day " + ", ".join(f"{k} {v:.2g}"
                                            for k, v in rad["expected_per_day"].items()),
            "Temperature " + "; ".join(
                f"{n} {t['min']:.1f} .. {t['max']:.1f} degC" for n, t in w["temps_c"].items()),
        ]
    f = r["flight"]
    lines += ["", "Flight software telemetry (min / max / last, samples)"]
    for name, s in f["telemetry"].items():
        lines.append(f"  {name:32} {s['min']:10.2f} {s['max']:10.2f} {s['last']:10.2f}"
                     f"  {s['samples']}")
    c = f["commands"]
    lines += [
        "",
        f"Commands    {c['completed']} completed, {c['rejected']} rejected, {c['failed']} failed",
    ]
    for entry in f["command_log"]:
        reason = f": {entry['reason']}" if entry["reason"] else ""
        lines.append(f"  t={entry['t_s']:8.1f} s  {entry['command']:24} {entry['status']}{reason}")
    m = r["modes"]
    lines.append("Modes       " + ", ".join(f"{k} {v:.0f} s" for k, v in m["mode_s"].items() if v)
                 + "; compute budget: " + ", ".join(f"{k} {v:.0f} s"
                                                     for k, v in m["budget_s"].items())
                 + f"; shed {m['compute_sheds']} times")
    actions = r["fdir"]["actions"]
    lines.append(f"FDIR        {len(actions)} actions" + "".join(
        f"\n  t={a['t_s']:8.1f} s  {a['action']}" for a in actions))
    comp = r["compute"]
    by = ", ".join(f"{k} {v}" for k, v in comp["corrected_by"].items())
    lines.append(f"Compute     {comp['completed']} jobs completed, {comp['failed']} failed, "
                 f"{comp['faults_corrected']} faults corrected ({by or 'none'}), "
                 f"{comp['silent_corruptions']} silent corruptions")
    for job in comp["jobs"]:
        check = {True: "matches the fault-free reference", False: "DIFFERS from the reference",
                 None: ""}[job.get("matches_reference")]
        if job.get("benign"):
            check = f"within {job['deviation']:.1e} of the reference (benign)"
        digest = f" crc32c {job['crc32c']:08x}" if "crc32c" in job else ""
        lines.append(f"  job {job['id']}: {job['workload']} seed {job['seed']}, "
                     f"{job['steps']} steps, {job['state']}{digest} {check}".rstrip())
        if job.get("loss"):
            loss = job["loss"]
            marks = [loss[round(i * (len(loss) - 1) / 4)] for i in range(5)]
            lines.append("    loss " + " -> ".join(f"{x:.3f}" for x in marks)
                         + f" (steps 1..{len(loss)})")
        if "text" in job:
            model = f" (the model job {job['model_job']} trained)" if job.get("model_job") else ""
            lines.append(f"    prompt {job['prompt']!r} -> {job['text']!r}{model}")
    events = ", ".join(f"{n} {sev}" for sev, n in f["events"].items()) or "none"
    e = f["executive"]
    lines += [
        f"Events      {events}",
        f"Executive   {e['ticks']} ticks at {'/'.join(f'{h:g}' for h in e['rates_hz'])} Hz, "
        f"{e['overruns']} overruns, {e['task_errors']} task errors",
        "Board links " + "; ".join(
            f"{n}: {s['requests']} requests, {s['retries']} retries, {s['timeouts']} timeouts, "
            f"{s['frames_rejected']} frames rejected" for n, s in r["boards"].items()),
    ]
    return "\n".join(lines)


def format_campaign(r: dict[str, Any]) -> str:
    o = r["outcomes"]
    n = r["injections"]
    corrected = o["scrub"] + o["abft"] + o["crc"] + o["invariant"] + o["rollback"]

    def pct(k: int) -> str:
        return f"{100 * k / n:6.2f} %"

    lines = [
        f"Fault-injection campaign: {n} injections into {', '.join(r['workloads'])}, "
        f"seed {r['seed']}, {r['workers']} workers, {r['wall_s']:.1f} s",
        "",
        f"  {'injected':34} {n:8}",
        f"  {'masked':34} {o['masked']:8} {pct(o['masked'])}",
        f"  {'detected and corrected':34} {corrected:8} {pct(corrected)}",
        f"  {'  by scrub':34} {o['scrub']:8} {pct(o['scrub'])}",
        f"  {'  by ABFT':34} {o['abft']:8} {pct(o['abft'])}",
        f"  {'  by activation CRC':34} {o['crc']:8} {pct(o['crc'])}",
        f"  {'  by a non-GEMM check':34} {o['invariant']:8} {pct(o['invariant'])}",
        f"  {'  by rollback (hang, lost state)':34} {o['rollback']:8} {pct(o['rollback'])}",
        f"  {'benign deviation (float, bounded)':34} {o['benign']:8} {pct(o['benign'])}"
        + (f"  largest {r['benign_max_deviation']:.1e} (bound {r['benign_bound']:.0e})"
           if o["benign"] else ""),
        f"  {'detected, unrecoverable (DUE)':34} {o['due']:8} {pct(o['due'])}",
        f"  {'silent data corruption (SDC)':34} {o['sdc']:8} {pct(o['sdc'])}",
        "",
        f"  work lost: {r['steps_lost']} steps recomputed of {r['steps_run']} run; "
        f"{r['rollbacks']} rollbacks, {r['power_cycles']} power cycles, "
        f"{r['reloads']} weight reloads, {r['blocks_repaired']} blocks repaired",
        f"  overhead: protected / unprotected fault-free wall time = "
        f"{r['protection_overhead']:.2f}x (at the campaign's small job sizes)",
        "",
        "  by fault kind: " + "; ".join(
            f"{kind} " + ", ".join(f"{k} {v}" for k, v in outcomes.items())
            for kind, outcomes in r["by_kind"].items()),
    ]
    return "\n".join(lines)


def utc_text(unix_s: float, timespec: str = "auto") -> str:
    """ISO 8601 UTC with Z (`timespec` as datetime.isoformat takes it)."""
    t = datetime.datetime.fromtimestamp(unix_s, datetime.UTC)
    return t.isoformat(timespec=timespec).replace("+00:00", "Z")


def format_passes(r: dict[str, Any]) -> str:
    lines = [f"Passes over {r['days']:g} day(s) from {r['epoch_utc']} at "
             f"{r['altitude_km']:g} km: {len(r['passes'])}",
             f"  {'station':12} {'AOS (UTC)':20} {'LOS (UTC)':20} {'duration':>9} {'max el':>7}"]
    for p in r["passes"]:
        lines.append(f"  {p['station']:12} {p['aos_utc']:20} {p['los_utc']:20} "
                     f"{p['duration_s']:8.0f}s {p['max_elevation_deg']:6.1f}°")
    return "\n".join(lines)


def _days(days: float) -> str:
    """Whole days, or tenths below ten (a re-entry in hours is not "0 days")."""
    return f"{days:.0f}" if days >= 10 else f"{days:.1f}"


def _contact_line(c: dict[str, Any]) -> str:
    passes = c["passes"]
    stations = sorted({p["station"] for p in passes})
    mode = "up over the stations only" if c["mode"] == "passes" else "always up"
    line = (f"Contact     link {mode}; {len(passes)} pass{'' if len(passes) == 1 else 'es'}"
            + (f" ({', '.join(stations)})" if stations else ""))
    if c["mode"] == "passes":
        s = c["store"]
        line += (f", {c['contact_s']:.0f} s in contact; store: {s['stored']} kept out of "
                 f"contact, {s['played_back']} played back, {s['overwritten']} overwritten, "
                 f"{s['refused']} refused, {s['waiting']} waiting")
    return line
