// The skyrack ground console: the ground server's API in a page, no build step.
// Telemetry, events and command updates come on one WebSocket (/api/stream); commands
// go as POST /api/commands, checked here against the dictionary first (and again by
// the server, which is the one that decides).
"use strict";

const SEVERITIES = ["debug", "info", "warning", "error", "critical"];
const state = { dictionary: null, rows: new Map(), seen: new Map(), commands: new Map() };
const $ = (id) => document.getElementById(id);

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
  const response = await fetch("/api/commands", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sender: "web console", command: spec.name, args }),
  });
  const body = await response.json();
  if (!body.ok) $("command-error").textContent = body.error;
  else setCommand(body);
}

// -- the stream ---------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/stream?client=web+console`);
  ws.onopen = () => { $("link").textContent = "live"; $("link").className = "link up"; };
  ws.onclose = () => {
    $("link").textContent = "reconnecting"; $("link").className = "link down";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (message) => {
    const m = JSON.parse(message.data);
    if (m.type === "hk") {
      for (const [name, value] of Object.entries(m.values)) setPoint(name, value, m.limits[name]);
    } else if (m.type === "event") {
      addEvent(m, true);
    } else if (m.type === "command") {
      setCommand(m);
    }
  };
}

async function start() {
  state.dictionary = await (await fetch("/api/dictionary")).json();
  buildPoints(state.dictionary.telemetry);
  for (const c of state.dictionary.commands) $("command-name").appendChild(new Option(c.name, c.name));
  buildForm();
  const latest = (await (await fetch("/api/telemetry")).json()).points;
  for (const [name, p] of Object.entries(latest)) setPoint(name, p.value, p.limit);
  for (const e of (await (await fetch("/api/events")).json()).events) addEvent(e, false);
  for (const c of (await (await fetch("/api/commands")).json()).commands) setCommand(c);
  $("point-filter").addEventListener("input", filterPoints);
  $("severity-filter").addEventListener("change", filterEvents);
  $("event-search").addEventListener("input", filterEvents);
  $("command-name").addEventListener("change", buildForm);
  $("command-form").addEventListener("submit", sendCommand);
  setInterval(ages, 1000);
  connect();
}

start();
