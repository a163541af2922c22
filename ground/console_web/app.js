// The skyrack ground console: the ground server's API in a page, no build step.
// Telemetry, events and command updates come on one WebSocket (/api/stream); commands
// go as POST /api/commands, checked here against the dictionary first (and again by
// the server, which is the one that decides).
"use strict";

const SEVERITIES = ["debug", "info", "warning", "error", "critical"];
const state = { dictionary: null, rows: new Map(), seen: new Map(), commands: new Map(),
                jobs: new Map(), satellite: null, ws: null };
const COLOURS = ["#1c7ed6", "#e8590c", "#2b8a3e", "#862e9c", "#c92a2a", "#495057"];
const PLOT_SPAN_S = 1800;  // on-board seconds the plot shows
// What the plot draws (inspected by the browser test): series by point, eclipse flags.
const plot = { points: [], series: new Map(), limits: new Map(), eclipse: [], drawn: 0 };
window.skyrackPlot = plot;
const $ = (id) => document.getElementById(id);

// An API path for the satellite shown (a mission's server has several; null: its first).
function api(path) {
  if (state.satellite === null) return path;
  return path + (path.includes("?") ? "&" : "?") + `satellite=${encodeURIComponent(state.satellite)}`;
}

function show(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number" && !Number.isInteger(value)) {
    return Number(value.toPrecision(6)).toString();
  }
  return String(value);
}

function buildPoints(telemetry) {
  const body = $("points");
  for (const point of telemetry) {
    const row = document.createElement("tr");
    row.dataset.point = point.name;
    row.innerHTML = `<td class="name"></td><td class="value">—</td><td class="unit"></td>` +
      `<td class="age"></td>`;
    row.querySelector(".name").textContent = point.name;
    row.querySelector(".unit").textContent = point.unit || "";
    row.title = point.description;
    body.appendChild(row);
    state.rows.set(point.name, row);
  }
}

function setPoint(name, value, limit) {
  const row = state.rows.get(name);
  if (!row) return;
  row.querySelector(".value").textContent = show(value);
  row.classList.remove("yellow", "red");
  if (limit === "yellow" || limit === "red") row.classList.add(limit);
  state.seen.set(name, Date.now());
}

function ages() {
  const now = Date.now();
  for (const [name, row] of state.rows) {
    const at = state.seen.get(name);
    row.querySelector(".age").textContent = at === undefined ? "" :
      `${Math.round((now - at) / 1000)} s`;
  }
}

function filterPoints() {
  const text = $("point-filter").value.trim().toLowerCase();
  for (const [name, row] of state.rows) {
    row.classList.toggle("hidden", text !== "" && !name.toLowerCase().includes(text));
  }
}

function eventVisible(li) {
  const floor = SEVERITIES.indexOf($("severity-filter").value);
  const text = $("event-search").value.trim().toLowerCase();
  return SEVERITIES.indexOf(li.dataset.severity) >= floor &&
    (text === "" || li.textContent.toLowerCase().includes(text));
}

function filterEvents() {
  for (const li of $("events").children) li.classList.toggle("hidden", !eventVisible(li));
}

function addEvent(event, fresh) {
  const li = document.createElement("li");
  li.dataset.severity = event.severity;
  li.dataset.name = event.name;
  li.className = event.severity + (fresh ? " new" : "");
  const args = Object.entries(event.args).map(([k, v]) => `${k}=${show(v)}`).join(" ");
  li.textContent = `t=${event.t_s.toFixed(1)} ${event.severity.toUpperCase()} ${event.name} ${args}`;
  li.classList.toggle("hidden", !eventVisible(li));
  $("events").prepend(li);
  while ($("events").children.length > 2000) $("events").lastChild.remove();
}

function setCommand(command) {
  let row = state.commands.get(command.id);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = command.id;
    row.innerHTML = `<td></td><td class="command"></td><td class="stages"></td>`;
    row.children[0].textContent = command.id;
    const args = Object.entries(command.args).map(([k, v]) => `${k}=${show(v)}`).join(" ");
    row.querySelector(".command").textContent = `${command.command} ${args} (${command.sender})`;
    $("history").prepend(row);
    state.commands.set(command.id, row);
  }
  const stages = row.querySelector(".stages");
  stages.textContent = command.stages.join(" → ") + (command.failure ? ` (${command.failure})` : "");
  stages.className = "stages" + (command.stages.length ?
    ` stage-${command.stages[command.stages.length - 1]}` : "");
}

// -- the command form, from the dictionary ------------------------------------------

function commandSpec() {
  return state.dictionary.commands.find((c) => c.name === $("command-name").value);
}

function buildForm() {
  const spec = commandSpec();
  const box = $("command-args");
  box.innerHTML = "";
  $("command-help").textContent = spec.description + (spec.hazardous ? " (hazardous)" : "");
  for (const arg of spec.args) {
    const label = document.createElement("label");
    label.textContent = `${arg.name}${arg.unit ? ` [${arg.unit}]` : ""} `;
    let input;
    if (arg.type === "enum" || arg.type === "bool") {
      input = document.createElement("select");
      for (const v of arg.type === "bool" ? ["true", "false"] : arg.values) {
        input.appendChild(new Option(v, v));
      }
    } else {
      input = document.createElement("input");
      if (arg.type === "int" || arg.type === "float") {
        input.type = "number";
        input.step = arg.type === "int" ? "1" : "any";
        if (arg.min !== null) input.min = arg.min;
        if (arg.max !== null) input.max = arg.max;
      }
      if (!arg.required && arg.default !== null) input.placeholder = String(arg.default);
    }
    input.name = arg.name;
    input.title = arg.description;
    label.appendChild(input);
    box.appendChild(label);
  }
}

function formArgs(spec) {
  // The arguments as the dictionary types them; throws Error naming a bad one.
  const args = {};
  for (const arg of spec.args) {
    const text = $("command-args").querySelector(`[name="${arg.name}"]`).value.trim();
    if (text === "") {
      if (arg.required) throw new Error(`${arg.name}: required`);
      continue;
    }
    let value = text;
    if (arg.type === "int" || arg.type === "float") {
      value = Number(text);
      if (!Number.isFinite(value) || (arg.type === "int" && !Number.isInteger(value))) {
        throw new Error(`${arg.name}: ${text} is not ${arg.type === "int" ? "an integer" : "a number"}`);
      }
      if (arg.min !== null && value < arg.min) throw new Error(`${arg.name}: below ${arg.min}`);
      if (arg.max !== null && value > arg.max) throw new Error(`${arg.name}: above ${arg.max}`);
    } else if (arg.type === "bool") {
      value = text === "true";
    }
    args[arg.name] = value;
  }
  return args;
}

async function sendCommand(submit) {
  submit.preventDefault();
  $("command-error").textContent = "";
  const spec = commandSpec();
  let args;
  try {
    args = formArgs(spec);
  } catch (error) {
    $("command-error").textContent = error.message;
    return;
  }
  if (spec.hazardous && !window.confirm(`${spec.name} is hazardous. Send it with ` +
      `${JSON.stringify(args)}?`)) {
    return;
  }
  const response = await fetch(api("/api/commands"), {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sender: "web console", command: spec.name, args }),
  });
  const body = await response.json();
  if (!body.ok) $("command-error").textContent = body.error;
  else setCommand(body);
}

// -- plots: several points on one on-board time axis, eclipses shaded, limits drawn --

async function history(point) {
  const r = await (await fetch(api(`/api/history?point=${encodeURIComponent(point)}`))).json();
  if (!r.ok) throw new Error(r.error);
  return r;
}

async function startPlot() {
  const names = $("plot-points").value.split(",").map((s) => s.trim()).filter(Boolean);
  $("plot-legend").textContent = "";
  plot.points = [];  // nothing drawn live until the new series are in
  try {
    const got = await Promise.all(names.map(history));
    plot.points = names;
    plot.series = new Map(got.map((r) => [r.point, r.samples]));
    plot.limits = new Map(got.map((r) => [r.point, { yellow: r.yellow, red: r.red, unit: r.unit }]));
    plot.eclipse = (await history("mode.in_eclipse")).samples;
  } catch (error) {
    $("plot-legend").textContent = error.message;
    return;
  }
  drawPlot();
}

function plotLive(t_s, values) {
  if (!plot.points.length) return;
  for (const name of plot.points) {
    if (name in values && values[name] !== null) plot.series.get(name).push([t_s, values[name]]);
  }
  if ("mode.in_eclipse" in values) plot.eclipse.push([t_s, values["mode.in_eclipse"]]);
  if (Date.now() - plot.drawn > 500) drawPlot();
}

function drawPlot() {
  plot.drawn = Date.now();
  const canvas = $("plot");
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 6;
  g.clearRect(0, 0, W, H);
  let end = -Infinity, first = Infinity;
  for (const s of plot.series.values()) {
    if (s.length) { end = Math.max(end, s[s.length - 1][0]); first = Math.min(first, s[0][0]); }
  }
  if (!Number.isFinite(end)) return;
  const start = Math.max(end - PLOT_SPAN_S, first);  // the last half hour, or all there is
  const span = Math.max(end - start, 1);
  const x = (t) => pad + (W - 2 * pad) * (t - start) / span;
  g.fillStyle = "rgba(73, 80, 87, 0.15)";  // eclipses
  let from = null;
  for (const [t, dark] of plot.eclipse.concat([[end, false]])) {
    if (dark && from === null) from = t;
    if (!dark && from !== null) { g.fillRect(x(Math.max(from, start)), 0, x(t) - x(Math.max(from, start)), H); from = null; }
  }
  const legend = [];
  plot.points.forEach((name, i) => {
    const samples = plot.series.get(name).filter(([t]) => t >= start);
    const colour = COLOURS[i % COLOURS.length];
    const limits = plot.limits.get(name);
    const bounds = samples.map(([, v]) => Number(v));
    for (const level of [limits.yellow, limits.red]) {
      if (level) for (const b of level) if (b !== null) bounds.push(b);
    }
    if (!bounds.length) return;
    let lo = Math.min(...bounds), hi = Math.max(...bounds);
    if (hi === lo) { hi += 1; lo -= 1; }
    const y = (v) => H - pad - (H - 2 * pad) * (v - lo) / (hi - lo);
    g.setLineDash([4, 3]);
    for (const [level, tint] of [[limits.yellow, "#f08c00"], [limits.red, "#e03131"]]) {
      if (!level) continue;
      for (const b of level) {
        if (b === null) continue;
        g.strokeStyle = tint; g.beginPath(); g.moveTo(pad, y(b)); g.lineTo(W - pad, y(b)); g.stroke();
      }
    }
    g.setLineDash([]);
    g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
    samples.forEach(([t, v], k) => (k ? g.lineTo(x(t), y(Number(v))) : g.moveTo(x(t), y(Number(v)))));
    g.stroke();
    const last = samples.length ? show(samples[samples.length - 1][1]) : "—";
    legend.push(`<span style="color:${colour}">${name} ${last} ${limits.unit || ""} ` +
                `[${show(lo)}..${show(hi)}]</span>`);
  });
  $("plot-legend").innerHTML = legend.join("") +
    `<span>t ${show(start)}..${show(end)} s (on board); shaded: eclipse</span>`;
}

// -- compute jobs, from their events -----------------------------------------------

const JOB_STATE = { "compute.job_submitted": "queued", "compute.job_started": "running",
  "compute.job_resumed": "running", "compute.job_completed": "completed",
  "compute.job_failed": "failed", "compute.job_cancelled": "cancelled" };

function jobEvent(event) {
  const id = event.args.job;
  if (id === undefined || !(event.name in JOB_STATE || event.name === "compute.job_status")) return;
  const job = state.jobs.get(id) || { id, workload: "", state: "", progress: 0, result: "" };
  if (event.args.workload) job.workload = event.args.workload;
  job.state = event.name === "compute.job_status" ? event.args.state : JOB_STATE[event.name];
  if (event.args.progress_pct !== undefined) job.progress = event.args.progress_pct;
  if (job.state === "completed") job.progress = 100;
  if (event.args.crc32c !== undefined) job.result = `crc32c ${event.args.crc32c}`;
  if (event.args.reason) job.result = event.args.reason;
  state.jobs.set(id, job);
  drawJobs();
}

function jobProgress(values) {
  const active = values["compute.active_job"];
  const progress = values["compute.progress_pct"];
  if (active && state.jobs.has(active) && progress !== undefined && progress !== null &&
      state.jobs.get(active).progress !== progress) {
    state.jobs.get(active).progress = progress;
    drawJobs();
  }
}

function drawJobs() {
  const body = $("jobs-table");
  body.innerHTML = "";
  for (const job of [...state.jobs.values()].sort((a, b) => b.id - a.id)) {
    const row = document.createElement("tr");
    row.dataset.job = job.id;
    for (const text of [job.id, job.workload, job.state, `${show(job.progress)} %`, job.result]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.appendChild(cell);
    }
    const cell = document.createElement("td");
    if (job.state === "queued" || job.state === "running") {
      const cancel = document.createElement("button");
      cancel.textContent = "cancel";
      cancel.className = "cancel";
      cancel.onclick = () => fetch(api("/api/commands"), { method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: "web console", command: "compute.cancel",
                               args: { job: job.id } }) });
      cell.appendChild(cancel);
    }
    row.appendChild(cell);
    body.appendChild(row);
  }
}

// -- the stream ---------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}` + api("/api/stream?client=web+console"));
  const shown = state.satellite;
  state.ws = ws;
  ws.onopen = () => { $("link").textContent = "live"; $("link").className = "link up"; };
  ws.onclose = () => {
    if (state.ws !== ws) return;  // left for another satellite
    $("link").textContent = "reconnecting"; $("link").className = "link down";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (frame) => {  // each frame: what waited for this console, oldest first
    if (state.ws !== ws || state.satellite !== shown) return;
    for (const m of JSON.parse(frame.data)) {
      if (m.type === "hk") {
        for (const [name, value] of Object.entries(m.values)) setPoint(name, value, m.limits[name]);
        plotLive(m.t_s, m.values);
        jobProgress(m.values);
      } else if (m.type === "event") {
        addEvent(m, true);
        jobEvent(m);
      } else if (m.type === "command") {
        setCommand(m);
      }
    }
  };
}

// Everything shown of one satellite, from the server: its dictionary, latest values,
// events and commands; then its stream.
async function load() {
  state.dictionary = await (await fetch(api("/api/dictionary"))).json();
  $("points").innerHTML = "";
  state.rows.clear();
  state.seen.clear();
  buildPoints(state.dictionary.telemetry);
  filterPoints();
  $("command-name").innerHTML = "";
  for (const c of state.dictionary.commands) $("command-name").appendChild(new Option(c.name, c.name));
  buildForm();
  const latest = (await (await fetch(api("/api/telemetry"))).json()).points;
  for (const [name, p] of Object.entries(latest)) setPoint(name, p.value, p.limit);
  $("events").innerHTML = "";
  state.jobs.clear();
  for (const e of (await (await fetch(api("/api/events"))).json()).events) {
    addEvent(e, false);
    jobEvent(e);
  }
  drawJobs();
  $("history").innerHTML = "";
  state.commands.clear();
  for (const c of (await (await fetch(api("/api/commands"))).json()).commands) setCommand(c);
  plot.points = [];
  plot.series = new Map();
  plot.eclipse = [];
  connect();
}

async function switchSatellite() {
  state.satellite = $("satellite").value;
  const old = state.ws;
  state.ws = null;
  if (old) old.close();
  $("link").textContent = "connecting"; $("link").className = "link down";
  await load();
}

async function start() {
  const satellites = (await (await fetch("/api/satellites")).json()).satellites;
  for (const sat of satellites) {
    $("satellite").appendChild(new Option(`${sat.name} (spacecraft ${sat.spacecraft})`, sat.name));
  }
  state.satellite = satellites.length ? satellites[0].name : null;
  $("satellite").addEventListener("change", switchSatellite);
  $("point-filter").addEventListener("input", filterPoints);
  $("severity-filter").addEventListener("change", filterEvents);
  $("event-search").addEventListener("input", filterEvents);
  $("command-name").addEventListener("change", buildForm);
  $("command-form").addEventListener("submit", sendCommand);
  $("plot-go").addEventListener("click", startPlot);
  setInterval(ages, 1000);
  await load();
}

start();
