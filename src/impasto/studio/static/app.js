// impasto studio page. Uses only the job API (/api/...), so a script can do anything the page does.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  defaults: null,      // Config defaults (from /api/presets)
  presets: {},         // name -> config
  base: null,          // the configuration the controls start from (default, a preset, or loaded settings)
  content: null,       // File
  contentSize: null,   // "WIDTHxHEIGHT" of the photo, once read (for the cost estimate)
  styles: [],          // [{file, weight, url, size}]
  watching: null,      // job id shown in "Now painting"
  source: null,        // its EventSource
  losses: [],          // [[step, loss]]
  jobs: [],
};

async function api(path, options = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...options });
  if (!r.ok) {
    let detail = `${r.status} ${r.statusText}`;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return r;
}

// The preset a configuration was made from (older outputs kept it in "extra").
function presetOf(cfg) {
  return cfg.preset || (cfg.extra && cfg.extra.preset) || "";
}

// -- inputs ---------------------------------------------------------------------------------------
// An image's "WIDTHxHEIGHT" as the browser decodes it (null when it cannot): the cost estimate sends
// sizes, not the images, so changing a slider uploads nothing.
async function imageSize(url) {
  const img = new Image();
  img.src = url;
  try { await img.decode(); } catch (e) { return null; }
  return `${img.naturalWidth}x${img.naturalHeight}`;
}

function setContent(file) {
  if (!file) return;
  state.content = file;
  state.contentSize = null;
  const img = $("#content-thumb");
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  updateStart();
  imageSize(img.src).then((size) => { if (state.content === file) { state.contentSize = size; estimateSoon(); } });
}

function addStyles(files) {
  for (const file of files) {
    const s = { file, weight: 1, url: URL.createObjectURL(file), size: null };
    state.styles.push(s);
    imageSize(s.url).then((size) => { s.size = size; estimateSoon(); });
  }
  renderStyles();
}

function renderStyles() {
  const list = $("#style-list");
  list.textContent = "";
  state.styles.forEach((s, i) => {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.src = s.url; img.alt = s.file.name; img.title = s.file.name;
    const w = document.createElement("input");
    w.type = "number"; w.min = "0"; w.step = "0.1"; w.value = String(s.weight); w.title = "blend weight";
    w.className = "blend";
    w.addEventListener("input", () => { s.weight = Math.max(0, parseFloat(w.value) || 0); });
    const x = document.createElement("button");
    x.textContent = "×"; x.title = "remove";
    x.addEventListener("click", (e) => { e.preventDefault(); state.styles.splice(i, 1); renderStyles(); });
    li.append(img, w, x);
    list.append(li);
  });
  updateStart();
}

function updateStart() {
  $("#start").disabled = !(state.content && state.styles.length);
  estimateSoon();
}

// -- what it will cost ------------------------------------------------------------------------------
function fmtBytes(n) {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
}

function fmtDuration(s) {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

let estimateTimer = null;
let estimateSeq = 0;
function estimateSoon() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(estimate, 250);
}

// POST /api/cost with the settings Start would send and the images' sizes: memory and time next to Start,
// or the server's refusal (a size over this server's memory even in tiles) before anything is queued.
async function estimate() {
  const el = $("#estimate");
  const seq = ++estimateSeq;
  if (!(state.content && state.styles.length && state.base && state.contentSize && state.styles.every((s) => s.size))) {
    el.textContent = ""; el.classList.remove("refused");
    return;
  }
  const form = new FormData();
  form.append("config", JSON.stringify(currentConfig()));
  if ($("#preset").value) form.append("preset", $("#preset").value);
  form.append("content_size", state.contentSize);
  for (const s of state.styles) form.append("style_size", s.size);
  try {
    const c = await (await api("/api/cost", { method: "POST", body: form })).json();
    if (seq !== estimateSeq) return;
    const last = c.scales[c.scales.length - 1];
    const tiles = last.tiles ? ` · ${last.width}×${last.height} in ${last.tiles} tiles` : "";
    el.textContent = `about ${fmtDuration(c.seconds)} · peak memory ${fmtBytes(c.peak_bytes)} of ${fmtBytes(c.budget_bytes)}${tiles}`;
    el.dataset.seconds = String(c.seconds);
    el.dataset.peak = String(c.peak_bytes);
    el.classList.remove("refused");
  } catch (e) {
    if (seq !== estimateSeq) return;
    el.textContent = e.message;
    el.classList.add("refused");
  }
}

function dropZone(el, onFiles) {
  el.addEventListener("dragover", (e) => { e.preventDefault(); e.stopPropagation(); el.classList.add("over"); });
  el.addEventListener("dragleave", () => el.classList.remove("over"));
  el.addEventListener("drop", (e) => {
    e.preventDefault(); e.stopPropagation(); el.classList.remove("over");
    const files = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type);
    if (files.length) onFiles(files);
  });
}

// -- settings ---------------------------------------------------------------------------------------
function sliderText() {
  const k = Math.pow(10, parseFloat($("#strength").value));
  $("#strength-out").textContent = `×${k < 1 ? k.toFixed(2) : k.toPrecision(2)}`;
  $("#size-out").textContent = `${$("#size").value} px`;
  $("#steps-out").textContent = `${$("#steps").value} steps at the first scale`;
  $("#scale-out").textContent = parseFloat($("#style-scale").value).toFixed(2);
}

// Quality (draft, standard, fine) multiplies the steps: the page has one control, the first scale's steps
// (each finer scale takes step_ratio of the one before), and folds a loaded configuration's quality into it.
const QUALITY = { draft: 0.125, standard: 1, fine: 2 };

function applyBase(cfg, note) {
  state.base = { ...cfg };
  $("#strength").value = "0";
  if (cfg.size) $("#size").value = String(cfg.size);
  $("#steps").value = String(Math.max(1, Math.round(cfg.steps * (QUALITY[cfg.quality] || 1))));
  $("#style-scale").value = String(cfg.style_scale);
  $("#preserve").value = cfg.preserve_color || "none";
  $("#loaded-from").textContent = note || "";
  sliderText();
  estimateSoon();
}

function currentConfig() {
  const cfg = { ...state.base };
  // Fields that name server files are never sent (the server refuses them).
  for (const k of ["weights", "init_file", "mask"]) cfg[k] = null;
  if (cfg.init === "file") cfg.init = "content";
  cfg.regions = [];
  cfg.style_weight = state.base.style_weight * Math.pow(10, parseFloat($("#strength").value));
  cfg.size = parseInt($("#size").value, 10);
  cfg.steps = parseInt($("#steps").value, 10);
  cfg.quality = "standard";
  cfg.scale_steps = null;
  cfg.style_scale = parseFloat($("#style-scale").value);
  cfg.preserve_color = $("#preserve").value;
  const w = state.styles.map((s) => s.weight);
  cfg.style_blend_weights = w.length > 1 && w.some((x) => x !== w[0]) ? w : null;
  return cfg;
}

async function loadSettingsFrom(file) {
  const form = new FormData();
  form.append("image", file);
  try {
    const r = await (await api("/api/inspect", { method: "POST", body: form })).json();
    const preset = presetOf(r.config);
    $("#preset").value = preset && state.presets[preset] ? preset : "";
    applyBase(r.config, `Settings loaded from ${file.name}`);
    $("#form-error").textContent = "";
  } catch (e) {
    $("#form-error").textContent = `${file.name}: ${e.message}`;
  }
}

function jobForm(cfg) {
  const form = new FormData();
  form.append("content", state.content, state.content.name);
  for (const s of state.styles) form.append("style", s.file, s.file.name);
  form.append("config", JSON.stringify(cfg));
  if ($("#preset").value) form.append("preset", $("#preset").value);
  return form;
}

async function start() {
  $("#form-error").textContent = "";
  const cfg = currentConfig();
  // The draft is the same schedule with an eighth of the steps: the picture to judge the settings by
  // within seconds, while the full run queues behind it (the page follows it when the draft ends).
  const withDraft = $("#draft-first").checked;
  $("#start").disabled = true;
  try {
    const jobs = [];
    if (withDraft) jobs.push(await (await api("/api/jobs", { method: "POST", body: jobForm({ ...cfg, quality: "draft" }) })).json());
    const full = jobForm(cfg);
    // The full run names its draft: the gallery shows the two as one card.
    if (withDraft) full.append("draft", jobs[0].id);
    jobs.push(await (await api("/api/jobs", { method: "POST", body: full })).json());
    await refreshJobs();
    if (!state.watching || !isActive(state.watching)) watch(jobs[0].id);
  } catch (e) {
    $("#form-error").textContent = e.message;
  } finally {
    updateStart();
  }
}

// -- the job being watched ------------------------------------------------------------------------
function isActive(id) {
  const j = state.jobs.find((x) => x.id === id);
  return j && (j.state === "queued" || j.state === "running");
}

function fmtTime(s) {
  if (s == null || !isFinite(s)) return "";
  s = Math.round(s);
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

function watch(id) {
  if (state.source) state.source.close();
  state.watching = id;
  state.losses = [];
  drawLoss();
  const job = state.jobs.find((x) => x.id === id);
  $("#current-name").textContent = job ? `${job.content.name} × ${job.styles.map((s) => s.name).join(", ")}` : "";
  $("#cancel").hidden = false;
  $("#status").textContent = "queued";
  const src = new EventSource(`/api/jobs/${id}/events`);
  state.source = src;
  const on = (kind, fn) => src.addEventListener(kind, (e) => { if (state.watching === id) fn(JSON.parse(e.data)); });
  on("job", (j) => { showState(j); if (j.preview_step != null) showPreview(id, j.preview_step); });
  on("state", (d) => { $("#status").textContent = d.state + (d.note ? ` (${d.note})` : ""); refreshJobs(); });
  on("started", (d) => {
    state.losses = (d.history || []).map((r) => [r[0], r[1]]);
    drawLoss();
    if (d.resume) $("#status").textContent = `resumed from step ${d.resume.from_step}`;
  });
  on("progress", (d) => {
    if (d.loss != null) state.losses.push([d.step, d.loss]);
    $("#bar").style.width = `${(100 * d.step) / d.total_steps}%`;
    $("#status").textContent = `step ${d.step} / ${d.total_steps} · ${d.size[1]}×${d.size[0]} px (scale ${d.scale + 1} of ${d.n_scales})`
      + ` · loss ${d.loss != null ? d.loss.toPrecision(4) : "?"} · ${fmtTime(d.elapsed)} so far` + (d.eta ? ` · about ${fmtTime(d.eta)} left` : "");
    drawLossSoon();
  });
  on("preview", (d) => showPreview(id, d.step));
  on("end", (j) => {
    src.close();
    showState(j);
    $("#cancel").hidden = true;
    refreshJobs().then(() => {
      const next = state.jobs.find((x) => x.state === "running") || state.jobs.slice().reverse().find((x) => x.state === "queued");
      if (next && next.id !== id) watch(next.id);
    });
  });
}

function showState(j) {
  $("#bar").style.width = j.total_steps ? `${(100 * j.step) / j.total_steps}%` : "0";
  const extra = j.state === "failed" && j.error ? `: ${j.error}` : j.state === "done" && j.seconds ? ` in ${fmtTime(j.seconds)}` : "";
  $("#status").textContent = `${j.state} · step ${j.step} / ${j.total_steps}${extra}`;
  $("#cancel").hidden = !(j.state === "queued" || j.state === "running");
}

function showPreview(id, step) {
  const img = $("#preview");
  img.src = `/api/jobs/${id}/preview?step=${step}`;
  img.dataset.step = String(step);
  img.hidden = false;
  $("#preview-empty").hidden = true;
}

// An axis label as a plain number: "20", "6.3", "1,200", "0.042" (never 2.0e1).
function plainNumber(v) {
  if (!isFinite(v)) return "";
  if (v >= 10) return Math.round(v).toLocaleString("en-US");
  const p = Number(v.toPrecision(2));
  return p >= 1e-6 ? p.toLocaleString("en-US", { maximumSignificantDigits: 2, maximumFractionDigits: 20 }) : "0";
}

let lossTimer = null;
function drawLossSoon() {
  if (!lossTimer) lossTimer = setTimeout(() => { lossTimer = null; drawLoss(); }, 200);
}

function drawLoss() {
  const c = $("#loss");
  const ctx = c.getContext("2d");
  const w = (c.width = c.clientWidth || 520), h = c.height;
  ctx.clearRect(0, 0, w, h);
  const pts = state.losses.filter((p) => p[1] > 0);
  ctx.fillStyle = "#7a7068"; ctx.font = "11px system-ui";
  if (pts.length < 2) { ctx.fillText("loss (log scale) appears here", 8, 16); return; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => Math.log10(p[1]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const X = (x) => 40 + ((x - x0) / Math.max(1, x1 - x0)) * (w - 50);
  const Y = (y) => 8 + (1 - (y - y0) / Math.max(1e-9, y1 - y0)) * (h - 26);
  ctx.strokeStyle = "#b4532a"; ctx.lineWidth = 1.5; ctx.beginPath();
  pts.forEach((p, i) => { const px = X(p[0]), py = Y(Math.log10(p[1])); i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
  ctx.stroke();
  const top = plainNumber(Math.pow(10, y1)), bottom = plainNumber(Math.pow(10, y0));
  ctx.fillText(top, 2, 14); ctx.fillText(bottom, 2, h - 20);
  c.dataset.labels = JSON.stringify([top, bottom]);
  c.setAttribute("aria-label", `loss curve (log scale) from ${top} to ${bottom}`);
  ctx.fillText(`step ${x0}`, 40, h - 4); ctx.fillText(`step ${x1}`, w - 60, h - 4);
}

// -- queue and gallery ------------------------------------------------------------------------------
async function refreshJobs() {
  try {
    state.jobs = await (await api("/api/jobs?limit=200")).json();
    const h = await (await api("/api/health")).json();
    $("#server-status").textContent = `impasto ${h.version} · ${h.running} running · ${h.queued} queued`;
  } catch (e) {
    $("#server-status").textContent = `server: ${e.message}`;
    return;
  }
  renderQueue();
  renderGallery();
}

function renderQueue() {
  const ul = $("#queue");
  ul.textContent = "";
  const active = state.jobs.filter((j) => j.state === "queued" || j.state === "running").reverse();
  for (const j of active) {
    const li = document.createElement("li");
    li.dataset.id = j.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${j.content.name} × ${j.styles.map((s) => s.name).join(", ")}`;
    name.addEventListener("click", () => watch(j.id));
    const st = document.createElement("span");
    st.className = "state";
    st.textContent = j.state === "running" ? `${j.step}/${j.total_steps}` : "queued";
    const b = document.createElement("button");
    b.className = "cancel-job"; b.textContent = "Cancel";
    b.addEventListener("click", () => cancelJob(j.id));
    li.append(name, st, b);
    ul.append(li);
  }
  if (!active.length) ul.innerHTML = '<li class="muted">nothing waiting</li>';
}

// The first scale's steps as the run did them (quality folded in), and the job's steps in all.
function stepsText(j) {
  const c = j.config;
  const first = Math.max(1, Math.round(c.steps * (QUALITY[c.quality] || 1)));
  return `${first} steps at the first scale (${j.total_steps} in all)`;
}

function summary(j) {
  const c = j.config;
  const bits = [`${c.size} px`, stepsText(j), `style weight ${Number(c.style_weight).toPrecision(3)}`];
  if (presetOf(c)) bits.unshift(`preset ${presetOf(c)}`);
  if (c.preserve_color !== "none") bits.push(`colours: ${c.preserve_color}`);
  if (c.style_scale !== 1) bits.push(`style scale ${c.style_scale}`);
  return bits.join(" · ");
}

// A quick draft and the full run that follows it are one card: the full run's result once it is done
// (saying the draft came first), the draft's meanwhile (saying it is the draft, with its own steps).
function galleryEntries() {
  const byId = new Map(state.jobs.map((j) => [j.id, j]));
  const followed = new Map();
  for (const j of state.jobs) if (j.draft && byId.has(j.draft)) followed.set(j.draft, j);
  const out = [];
  for (const j of state.jobs) {
    if (j.draft && byId.has(j.draft)) {
      const d = byId.get(j.draft);
      if (j.state === "done") out.push({ key: `${j.id}:done`, show: j, draft: d, full: j });
      else if (d.state === "done") out.push({ key: `${j.id}:${j.state}`, show: d, draft: d, full: j });
    } else if (j.state === "done" && !followed.has(j.id)) {
      out.push({ key: `${j.id}:done`, show: j, draft: null, full: j });
    }
  }
  return out;
}

function cardSummary(e) {
  const j = e.show;
  const when = new Date(j.finished * 1000).toLocaleString();
  if (!e.draft) return `${summary(j)} · ${fmtTime(j.seconds)} · ${when}`;
  if (j === e.draft) {
    return `quick draft: ${summary(j)} · ${fmtTime(j.seconds)} · the full run (${e.full.total_steps} steps) is ${e.full.state}`;
  }
  return `${summary(j)} · ${fmtTime(j.seconds)} · ${when} · after a quick draft of ${e.draft.total_steps} steps`;
}

function renderGallery() {
  const g = $("#gallery");
  const entries = galleryEntries();
  $("#gallery-empty").hidden = entries.length > 0;
  const have = new Set([...g.children].map((el) => el.dataset.key));
  const want = new Set(entries.map((e) => e.key));
  for (const el of [...g.children]) if (!want.has(el.dataset.key)) el.remove();
  entries.forEach((e, i) => {
    if (have.has(e.key)) return;
    const j = e.show;
    const card = $("#card-template").content.firstElementChild.cloneNode(true);
    card.dataset.key = e.key;
    card.dataset.id = e.full.id;
    if (e.draft) card.dataset.draft = e.draft.id;
    card.dataset.shows = j.id;
    fillCard(card, j, cardSummary(e));
    const after = g.children[i];
    after ? g.insertBefore(card, after) : g.append(card);
  });
}

function fillCard(card, j, text) {
  card.querySelector(".after").src = `/api/jobs/${j.id}/result`;
  card.querySelector(".before").src = `/api/jobs/${j.id}/inputs/content`;
  const clip = card.querySelector(".before-clip");
  card.querySelector(".split").addEventListener("input", (e) => { clip.style.clipPath = `inset(0 ${100 - e.target.value}% 0 0)`; });
  card.querySelector(".title").textContent = `${j.content.name} × ${j.styles.map((s) => s.name).join(", ")}`;
  card.querySelector(".summary").textContent = text;
  card.querySelector(".settings").textContent = JSON.stringify(j.config, null, 1);
  const a = card.querySelector(".download");
  a.href = `/api/jobs/${j.id}/result?download=1`;
  a.setAttribute("download", `impasto-${j.id.slice(0, 8)}.png`);
  card.querySelector(".reuse").addEventListener("click", () => reuse(j));
  card.querySelector(".delete").addEventListener("click", async () => {
    await api(`/api/jobs/${j.id}`, { method: "DELETE" });
    refreshJobs();
  });
}

async function reuse(j) {
  const preset = presetOf(j.config);
  $("#preset").value = preset && state.presets[preset] ? preset : "";
  applyBase(j.config, `Settings of ${j.content.name} × ${j.styles.map((s) => s.name).join(", ")}`);
  const fetchFile = async (which, name) => {
    const blob = await (await api(`/api/jobs/${j.id}/inputs/${which}`)).blob();
    return new File([blob], name, { type: blob.type });
  };
  setContent(await fetchFile("content", j.content.name));
  state.styles = [];
  const weights = j.config.style_blend_weights;
  for (let i = 0; i < j.styles.length; i++) {
    const f = await fetchFile(`style${i}`, j.styles[i].name);
    const s = { file: f, weight: weights ? weights[i] : 1, url: URL.createObjectURL(f), size: null };
    state.styles.push(s);
    imageSize(s.url).then((size) => { s.size = size; estimateSoon(); });
  }
  renderStyles();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

async function cancelJob(id) {
  try { await api(`/api/jobs/${id}/cancel`, { method: "POST" }); } catch (e) { $("#form-error").textContent = e.message; }
  refreshJobs();
}

// -- start-up ---------------------------------------------------------------------------------------
async function init() {
  $("#content-input").addEventListener("change", (e) => setContent(e.target.files[0]));
  $("#style-input").addEventListener("change", (e) => { addStyles(e.target.files); e.target.value = ""; });
  $("#settings-input").addEventListener("change", (e) => e.target.files[0] && loadSettingsFrom(e.target.files[0]));
  dropZone($("#content-drop"), (f) => setContent(f[0]));
  dropZone($("#style-drop"), (f) => addStyles(f));
  dropZone($("#settings-drop"), (f) => loadSettingsFrom(f[0]));
  // An image dropped anywhere else on the page: if it is an impasto output, load its settings.
  dropZone(document.body, (f) => loadSettingsFrom(f[0]));
  for (const id of ["strength", "size", "steps", "style-scale"]) {
    $(`#${id}`).addEventListener("input", () => { sliderText(); estimateSoon(); });
  }
  $("#preserve").addEventListener("change", estimateSoon);
  $("#preset").addEventListener("change", () => {
    const name = $("#preset").value;
    applyBase(name ? state.presets[name] : state.defaults, "");
  });
  $("#start").addEventListener("click", start);
  $("#cancel").addEventListener("click", () => state.watching && cancelJob(state.watching));
  try {
    const p = await (await api("/api/presets")).json();
    state.defaults = p.default;
    for (const pr of p.presets) {
      state.presets[pr.name] = pr.config;
      const o = document.createElement("option");
      o.value = pr.name; o.textContent = pr.name; o.title = pr.description;
      $("#preset").append(o);
    }
    // Up to the server's --max-size: a size over the per-job memory budget runs in tiles, and the
    // estimate next to Start says when one does not fit even so.
    $("#size").max = String(p.limits.max_size);
    applyBase(p.default, "");
  } catch (e) {
    $("#form-error").textContent = e.message;
  }
  await refreshJobs();
  const live = state.jobs.find((j) => j.state === "running") || state.jobs.find((j) => j.state === "queued");
  if (live) watch(live.id);
  setInterval(refreshJobs, 3000);
}

document.addEventListener("DOMContentLoaded", init);
