// The Offload page: renders GET api/state every second; Rescan and Begin Offload POST to the API.
// Every request carries the Airflow session cookie (same origin as the UI); the server checks it.
"use strict";

const POLL_MS = 1000;
const HEADERS = { "X-Requested-With": "offload-page" };
const LABELS = {
  queued: "Queued",
  "checking credentials": "Checking credentials",
  scanning: "Scanning",
  offloading: "Offloading",
  complete: "Complete",
  error: "Error",
  pending: "pending",
  uploading: "uploading",
  verified: "verified in S3",
  removed: "offloaded, removed locally",
};

const ui = {
  ticked: new Set(),
  scanKey: null,
  busy: false,
  autoRescan: false,
  data: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  n = Number(n) || 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function duration(seconds) {
  const s = Math.round(Number(seconds) || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return `${h}h${String(m).padStart(2, "0")}m${String(r).padStart(2, "0")}s`;
}

function utc(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").slice(0, 19);
}

function label(state) {
  return LABELS[state] || state || "";
}

function setMessage(text, kind) {
  const node = $("message");
  node.textContent = text || "";
  node.className = kind || "";
}

async function post(path, body) {
  ui.busy = true;
  render();
  try {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: body ? { ...HEADERS, "Content-Type": "application/json" } : HEADERS,
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof answer.detail === "string" ? answer.detail : JSON.stringify(answer.detail);
      setMessage(detail || `${response.status} ${response.statusText}`, "error");
      return null;
    }
    return answer;
  } catch (err) {
    setMessage(`Request failed: ${err}`, "error");
    return null;
  } finally {
    ui.busy = false;
    await refresh();
  }
}

async function rescan() {
  const answer = await post("api/rescan");
  if (answer) setMessage(`Rescan started (run ${answer.run_id}).`, "ok");
}

async function begin() {
  const logs = [...ui.ticked];
  if (!logs.length) return;
  const answer = await post("api/offload", { logs });
  if (answer) {
    setMessage(`Offload of ${logs.length} log(s) started (run ${answer.run_id}).`, "ok");
    ui.ticked.clear();
    ui.scanKey = null; // redraw the checkboxes unticked
  }
}

function renderNotices(data) {
  const box = $("notices");
  box.replaceChildren();
  if (data.dag && data.dag.found === false) {
    box.append(el("p", { class: "notice error" }, "The DAG ark_offload is not in Airflow (yet)."));
  } else if (data.dag && data.dag.paused) {
    box.append(el("p", { class: "notice", id: "paused-notice" },
      "The DAG ark_offload is paused: unpause it in Airflow's DAG list, or its runs never start."));
  }
  if (data.config && data.config.error) {
    box.append(el("p", { class: "notice error" }, `Offload config: ${data.config.error}`));
  }
  if (data.active) {
    const what = data.active.kind === "rescan" ? "A rescan" : "An offload";
    const who = data.active.triggered_by ? ` (started by ${data.active.triggered_by})` : "";
    box.append(el("p", { class: "notice", id: "active-notice" },
      `${what} is ${data.active.state}${who}: `,
      el("a", { href: data.active.url, target: "_top" }, data.active.run_id)));
  }
}

function renderCredentials(data) {
  const c = data.credentials || {};
  $("credentials").dataset.state = c.state || "unknown";
  $("credentials-state").textContent =
    { valid: "Valid", invalid: "Invalid", checking: "Checking …", unknown: "Not checked" }[c.state] || c.state;
  $("credentials-connection").textContent = c.connection || "?";
  $("config-bucket").textContent = (data.config && data.config.bucket) || "?";
  const when = c.checked_at ? ` (checked ${utc(c.checked_at)} UTC)` : "";
  $("credentials-detail").textContent = (c.detail || "") + when;
}

function renderButtons(data) {
  const rescanButton = $("rescan");
  const beginButton = $("begin");
  rescanButton.disabled = ui.busy || !data.can_rescan;
  const count = ui.ticked.size;
  beginButton.disabled = ui.busy || !data.can_begin || count === 0;
  beginButton.textContent = count ? `Begin Offload (${count})` : "Begin Offload";
  let hint = data.begin_blocked || "";
  if (!hint && count === 0) hint = "Tick the logs to offload.";
  $("blocked").textContent = hint;
}

function renderProgress(data) {
  const o = data.offload;
  const card = $("progress");
  card.hidden = !o;
  if (!o) return;
  const state = o.state;
  const badge = $("progress-state");
  badge.textContent = label(state);
  badge.className = `badge ${state.split(" ")[0]}`;
  card.dataset.state = state;
  card.dataset.runId = o.run_id;
  const pct = o.percent === null || o.percent === undefined ? null : Number(o.percent);
  const bar = $("progress-bar");
  bar.className = `bar ${state}`;
  bar.setAttribute("aria-valuenow", pct === null ? "" : String(pct));
  $("progress-fill").style.width = `${pct === null ? 0 : pct}%`;
  $("progress-percent").textContent = pct === null ? "" : `${pct.toFixed(1)}%`;
  const numbers = o.bytes_total
    ? `${bytes(o.bytes_done)} of ${bytes(o.bytes_total)}, ${o.logs_done}/${o.logs_total} log(s)`
    : `${o.logs_total} log(s)`;
  const who = o.triggered_by ? ` · started by ${o.triggered_by}` : "";
  $("progress-numbers").textContent = `${numbers}${who}`;
  const link = $("run-link");
  link.href = o.url;
  link.textContent = `Run ${o.run_id}`;
  $("progress-errors").replaceChildren(...(o.errors || []).map((e) => el("li", {}, e)));
}

function logCell(entry) {
  if (!entry) return el("span", { class: "state" }, "");
  const pct = Number(entry.percent) || 0;
  const state = entry.state;
  const bar = el("div", { class: `bar small ${state === "error" ? "error" : pct >= 100 ? "complete" : ""}` },
    el("div", { class: "fill", style: `width:${pct}%` }), el("span", {}, `${pct.toFixed(1)}%`));
  bar.querySelector(".fill").style.width = `${pct}%`;
  const text = state === "error" && entry.error ? `error: ${entry.error}` : label(state);
  return el("div", {}, bar, el("span", { class: `state ${state}` }, text));
}

function renderLogs(data) {
  const scan = data.scan || {};
  const logs = scan.logs || [];
  const offloadLogs = (data.offload && data.offload.logs) || {};
  const key = `${scan.run_id}|${scan.scanned_at}`;
  const tbody = $("logs").querySelector("tbody");
  if (key !== ui.scanKey) {
    ui.scanKey = key;
    const names = new Set(logs.map((l) => l.name));
    for (const name of [...ui.ticked]) if (!names.has(name)) ui.ticked.delete(name);
    tbody.replaceChildren();
    if (!logs.length) {
      tbody.append(el("tr", { class: "empty" }, el("td", { colSpan: 7 },
        scan.scanned_at ? "No Ark Logs found." : "No scan yet: press Rescan System.")));
    }
    for (const log of logs) {
      const box = el("input", { type: "checkbox", value: log.name, checked: ui.ticked.has(log.name) });
      box.setAttribute("aria-label", `Tick ${log.name}`);
      box.addEventListener("change", () => {
        if (box.checked) ui.ticked.add(log.name); else ui.ticked.delete(log.name);
        render();
      });
      tbody.append(el("tr", { "data-log": log.name },
        el("td", {}, box),
        el("td", { class: "name" }, log.name),
        el("td", {}, utc(log.start_time)),
        el("td", {}, duration(log.duration_s)),
        el("td", { class: "num" }, bytes(log.size)),
        el("td", { class: "num" }, log.file_count),
        el("td", { class: "offload" })));
    }
  }
  for (const row of tbody.querySelectorAll("tr[data-log]")) {
    const cell = row.querySelector("td.offload");
    const entry = offloadLogs[row.dataset.log];
    cell.dataset.state = entry ? entry.state : "";
    cell.replaceChildren(logCell(entry));
  }
  $("tick-all").checked = logs.length > 0 && ui.ticked.size === logs.length;
  let info = scan.scanned_at
    ? `${logs.length} Ark Log(s), ${bytes(scan.total_bytes)}, in ${scan.storage_base_path} ` +
      `(scanned ${utc(scan.scanned_at)} UTC).`
    : "No scan yet.";
  if (scan.state === "scanning") info += " Scanning again …";
  if (scan.error) info += ` The last rescan failed: ${scan.error}`;
  $("scan-info").textContent = info;
  $("scan-info").dataset.state = scan.state || "";

  const nonArk = $("non-ark").querySelector("tbody");
  nonArk.replaceChildren(...(scan.non_ark || []).map((item) =>
    el("tr", { "data-path": item.path }, el("td", {}, el("code", {}, item.path)), el("td", {}, item.reason))));
  if (!(scan.non_ark || []).length) {
    nonArk.append(el("tr", { class: "empty" }, el("td", { colSpan: 2 }, "None.")));
  }
}

function render() {
  const data = ui.data;
  if (!data) return;
  $("user").textContent = data.user || "?";
  $("dag-link").href = data.dag.url;
  renderNotices(data);
  renderCredentials(data);
  renderButtons(data);
  renderProgress(data);
  renderLogs(data);
}

async function refresh() {
  try {
    const response = await fetch("api/state", { credentials: "same-origin" });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      setMessage(`${response.status}: ${answer.detail || response.statusText}`, "error");
      return;
    }
    ui.data = await response.json();
    render();
    if (!ui.autoRescan && ui.data.scan && !ui.data.scan.run_id && ui.data.can_rescan) {
      ui.autoRescan = true; // "Initially, the Offload Stage scans": once, when there is no scan at all
      rescan();
    }
  } catch (err) {
    setMessage(`Cannot reach the Airflow API server: ${err}`, "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("rescan").addEventListener("click", rescan);
  $("begin").addEventListener("click", begin);
  $("tick-all").addEventListener("change", (event) => {
    const logs = (ui.data && ui.data.scan && ui.data.scan.logs) || [];
    ui.ticked = new Set(event.target.checked ? logs.map((l) => l.name) : []);
    ui.scanKey = null;
    render();
  });
  refresh();
  setInterval(() => { if (!ui.busy) refresh(); }, POLL_MS);
});
