// lyriscope studio: the page. Plain JS, no framework, nothing from the network but this server.
// Every request carries the token from the page's URL; long work runs as jobs on the server
// and reaches the page as server-sent events (/api/events).
"use strict";

const TOKEN = new URLSearchParams(location.search).get("t") || "";
const TABS = ["lines", "images", "curate", "train", "preview", "export", "settings"];
const TAB_NAMES = {lines: "Lines", images: "Images", curate: "Curate", train: "Train",
  preview: "Preview", export: "Export", settings: "Settings"};
const ACTIVE = new Set(["queued", "running"]);

const state = {
  jobs: [],            // the server's job table, newest last
  jobStates: new Map(),// job id -> last state seen (to notice a job ending)
  setName: null,       // the set on screen; null: the list of sets
  tab: "lines",
  set: null,           // /api/sets/NAME
  waves: new Map(),    // set name -> waveform peaks
  line: 1,             // the line chosen in the set's tabs (1-based)
  curation: null,
  training: null,
  trainTimer: null,
  limits: {audio: Infinity, lyrics: Infinity},
  inputs: new Map(),   // option fields by id: what was typed survives a tab drawn again
};

// -- small helpers ----------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = Boolean(v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  return put(e, ...children);
}
// Append children, leaving out the null/false of `cond ? el(...) : null`.
function put(parent, ...children) {
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) parent.append(c);
  return parent;
}
// An option field that keeps its value when its tab is drawn again (after a job ends).
function kept(e) {
  const checkbox = e.type === "checkbox";
  if (state.inputs.has(e.id)) { if (checkbox) e.checked = state.inputs.get(e.id); else e.value = state.inputs.get(e.id); }
  const remember = () => state.inputs.set(e.id, checkbox ? e.checked : e.value);
  e.addEventListener("input", remember);
  e.addEventListener("change", remember);
  return e;
}
const $ = (selector, root = document) => root.querySelector(selector);
const qs = (params) => new URLSearchParams({...params, t: TOKEN}).toString();
const enc = encodeURIComponent;

async function request(method, path, {params = {}, body, raw} = {}) {
  const init = {method, headers: {}};
  if (raw !== undefined) { init.body = raw; init.headers["Content-Type"] = "application/octet-stream"; }
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path + "?" + qs(params), init);
  let answer = null;
  try { answer = await r.json(); } catch (e) { answer = {error: `${r.status} ${r.statusText}`}; }
  if (!r.ok) throw new Error(answer.error || `${r.status} ${r.statusText}`);
  return answer;
}
const get = (path, params) => request("GET", path, {params});
const post = (path, body, params) => request("POST", path, {body, params});

function fileUrl(rel, extra = {}) {
  const path = rel.split("/").map(enc).join("/");
  return `/files/${enc(state.setName)}/${path}?` + qs(extra);
}

function clock(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const m = Math.floor(seconds / 60), s = seconds - 60 * m;
  return `${String(m).padStart(2, "0")}:${s.toFixed(1).padStart(4, "0")}`;
}
function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  seconds = Math.round(seconds);
  const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
}
function clockLeft(seconds) {  // "1:56" or "2:03:10": short enough for a stat box
  seconds = Math.round(seconds);
  const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
const fmt = (x, digits = 3) => (x === null || x === undefined) ? "–" : Number(x).toFixed(digits);
const megabytes = (n) => `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MB`;

function toast(message, bad = false) {
  const t = $("#toast");
  t.textContent = message;
  t.className = bad ? "bad" : "";
  t.style.display = "block";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.style.display = "none"; }, bad ? 9000 : 3500);
}

function lineOf(number) { return state.set.lines[number - 1]; }
function lineLabel(line) { return `${line.number} · ${line.text}`; }
function lineSelect(onchange, {all = false, id} = {}) {
  const select = el("select", {id, onchange: e => onchange(e.target.value === "all" ? "all" : Number(e.target.value))},
    all ? el("option", {value: "all"}, "every line, one after another") : null,
    ...state.set.lines.map(l => el("option", {value: String(l.number)}, lineLabel(l))));
  select.value = String(state.line);
  return select;
}

// -- routing ----------------------------------------------------------------------------------

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  clearInterval(state.trainTimer);
  state.trainTimer = null;
  if (parts[0] === "set" && parts[1]) {
    const name = parts[1];
    const tab = TABS.includes(parts[2]) ? parts[2] : "lines";
    if (name !== state.setName) { state.set = null; state.line = 1; state.curation = null; }
    state.setName = name;
    state.tab = tab;
    try {
      // Fetched on every tab: work done meanwhile (here or in a terminal) shows.
      state.set = await get(`/api/sets/${enc(name)}`);
    } catch (e) {
      renderProblem(e.message);
      return;
    }
    renderSet();
  } else {
    state.setName = null;
    state.set = null;
    await renderSets();
  }
}

function renderProblem(message) {
  $("#crumbs").replaceChildren(el("a", {href: "#/"}, "sets"));
  $("#tabs").replaceChildren();
  $("#view").replaceChildren(el("div", {class: "panel"}, el("p", {class: "error"}, message)));
  document.body.dataset.view = "problem";
}

// -- the list of sets, and a new set ----------------------------------------------------------

async function renderSets() {
  document.body.dataset.view = "sets";
  document.body.dataset.ready = "";
  $("#crumbs").replaceChildren(el("span", {}, "sets"));
  $("#tabs").replaceChildren();
  let answer;
  try { answer = await get("/api/sets"); } catch (e) { renderProblem(e.message); return; }
  state.limits = answer.limits;
  const cards = answer.sets.map(s => el("a", {class: "set-card", href: `#/set/${enc(s.name)}/lines`, "data-set": s.name},
    el("div", {class: "title"}, s.title || s.name),
    s.error ? el("div", {class: "error small"}, s.error)
      : el("div", {class: "muted"}, (s.artist ? s.artist + " · " : "") + `${s.lines} lines · ${s.models} of ${s.lines} models`),
    el("div", {class: "small muted"}, s.name)));
  $("#view").replaceChildren(
    el("h1", {}, "Sets"),
    el("p", {class: "muted"}, `in ${answer.sets_dir}`),
    cards.length ? el("div", {class: "cards-grid"}, ...cards) : el("p", {class: "muted"}, "No sets yet: make one below."),
    newSetForm());
  document.body.dataset.ready = "1";
}

function newSetForm() {
  const error = el("div", {class: "error", id: "new-error"});
  const name = el("input", {type: "text", id: "new-name", placeholder: "my-song", pattern: "[A-Za-z0-9][A-Za-z0-9._-]*"});
  const audioFile = el("input", {type: "file", id: "new-audio-file", accept: ".wav,.flac,.mp3,.ogg"});
  const audioPath = el("input", {type: "text", id: "new-audio-path", placeholder: "or a path: /home/me/song.wav"});
  const lyricsFile = el("input", {type: "file", id: "new-lyrics-file", accept: ".lrc"});
  const lyricsPath = el("input", {type: "text", id: "new-lyrics-path", placeholder: "or a path: /home/me/song.lrc"});
  const lrclib = el("input", {type: "text", id: "new-lrclib", placeholder: "Artist - Title (looked up on lrclib.net)"});
  audioFile.addEventListener("change", () => {
    const file = audioFile.files[0];
    if (file && !name.value) name.value = file.name.replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  });
  const create = el("button", {class: "primary", id: "create-set", type: "button"}, "Create set");
  create.addEventListener("click", async () => {
    error.textContent = "";
    create.disabled = true;
    try {
      const body = {name: name.value.trim()};
      body.audio = await fileChoice(audioFile, audioPath, "audio");
      if (lrclib.value.trim()) body.lrclib = lrclib.value.trim();
      else body.lyrics = await fileChoice(lyricsFile, lyricsPath, "lyrics");
      create.textContent = "Creating…";
      const made = await post("/api/sets", body);
      location.hash = `#/set/${enc(made.name)}/lines`;
    } catch (e) {
      error.textContent = e.message;
    } finally {
      create.disabled = false;
      create.textContent = "Create set";
    }
  });
  return el("section", {class: "panel", id: "new-set"},
    el("h2", {}, "New set"),
    el("p", {class: "muted small"}, "A song and its timed lyrics (LRC). The files are copied into the set's folder; set.toml gets one [[line]] per lyric line."),
    el("div", {class: "form-grid"},
      el("label", {for: "new-name"}, "Name"), name,
      el("label", {}, "Song"), el("div", {class: "either"}, audioFile, audioPath),
      el("label", {}, "Lyrics"), el("div", {class: "either"}, lyricsFile, lyricsPath),
      el("label", {for: "new-lrclib"}, "or LRCLIB"), lrclib,
      el("span"), el("div", {class: "row"}, create, error)));
}

async function fileChoice(fileInput, pathInput, kind) {
  const file = fileInput.files[0];
  if (file) {
    if (file.size > state.limits[kind]) throw new Error(`${file.name}: ${megabytes(file.size)} is more than the ${megabytes(state.limits[kind])} an upload may have`);
    const r = await fetch(`/api/uploads?` + qs({name: file.name}), {method: "POST", body: file});
    const answer = await r.json().catch(() => ({error: `${r.status} ${r.statusText}`}));
    if (!r.ok) throw new Error(answer.error);
    return {upload: answer.id};
  }
  if (pathInput.value.trim()) return {path: pathInput.value.trim()};
  throw new Error(`${kind === "audio" ? "Song" : "Lyrics"}: choose a file or give its path`);
}

// -- one set ----------------------------------------------------------------------------------

function renderSet() {
  const s = state.set;
  document.body.dataset.view = "set-" + state.tab;
  document.body.dataset.ready = "";
  $("#crumbs").replaceChildren(el("a", {href: "#/"}, "sets"), " / ", el("b", {}, s.name));
  $("#tabs").replaceChildren(...TABS.map(t => el("a", {href: `#/set/${enc(s.name)}/${t}`, class: t === state.tab ? "active" : "", "data-tab": t}, TAB_NAMES[t])));
  const head = el("div", {class: "set-head"},
    el("h1", {}, s.song.title), el("span", {class: "muted"}, [s.song.artist, duration(s.duration), `${s.lines.length} lines`].filter(Boolean).join(" · ")));
  const body = el("div", {id: "tab"});
  $("#view").replaceChildren(head, body);
  ({lines: renderLines, images: renderImages, curate: renderCurate, train: renderTrain,
    preview: renderPreview, export: renderExport, settings: renderSettings})[state.tab](body);
  updateInlineJobs();
}

async function refreshSet() {
  if (!state.setName) return;
  try { state.set = await get(`/api/sets/${enc(state.setName)}`); } catch (e) { toast(e.message, true); return; }
  // Tabs holding a form keep what is typed; the others show the new state.
  if (["images", "curate", "train", "preview", "export"].includes(state.tab)) renderSet();
}

function jobsOf(kind, line) {
  return state.jobs.filter(j => j.set === state.setName && (!kind || j.kind === kind) && (line === undefined || j.line === line));
}
function activeJob(kind, line) { return jobsOf(kind, line).filter(j => ACTIVE.has(j.state)).pop(); }
function lastJob(kind, line) { return jobsOf(kind, line).pop(); }

async function startJob(kind, line, options) {
  try {
    const job = await post(`/api/sets/${enc(state.setName)}/jobs`, {kind, line: line === "all" ? null : line, options});
    mergeJob(job);
    toast(`${job.title}: ${job.state}`);
    return job;
  } catch (e) {
    toast(e.message, true);
    return null;
  }
}

async function cancelJob(id) {
  try { mergeJob(await post(`/api/jobs/${id}/cancel`, {})); } catch (e) { toast(e.message, true); }
}

// A slot showing a job's progress inside a tab: <div class="inline-job" data-kind data-line>.
function inlineJob(kind, line) {
  return el("div", {class: "inline-job", "data-kind": kind, "data-line": line === undefined ? "" : String(line)});
}

function updateInlineJobs() {
  for (const slot of document.querySelectorAll(".inline-job")) {
    const line = slot.dataset.line === "" ? undefined : Number(slot.dataset.line);
    const job = lastJob(slot.dataset.kind, line);
    if (!job) { slot.replaceChildren(); continue; }
    slot.replaceChildren();
    put(slot, jobSummary(job, {compact: true}));
  }
  const stop = $("#train-stop");
  if (stop) stop.disabled = !activeJob("train");
}

function jobSummary(job, {compact = false} = {}) {
  const running = job.state === "running";
  const bar = el("div", {class: "bar" + (running && job.progress === null ? " indeterminate" : "")}, el("i"));
  bar.firstChild.style.width = `${Math.round(100 * (job.progress ?? (job.state === "done" ? 1 : 0)))}%`;
  const facts = [];
  if (job.counters.stored !== undefined) facts.push(`stored ${job.counters.stored}`);
  const refused = Object.entries(job.refused || {}).filter(([, n]) => n > 0);  // by reason, at the end
  if (refused.length) facts.push("refused: " + refused.map(([r, n]) => `${r.replace(/_/g, " ")} ${n}`).join(", "));
  else if (job.counters.refused !== undefined) facts.push(`refused ${job.counters.refused}`);
  if (running && job.eta_s !== null) facts.push(`${duration(job.eta_s)} left`);
  const badge = el("span", {class: "badge " + badgeClass(job)}, job.cancelling ? "stopping" : job.state);
  // What it said last, leaving out collect's pointer to the credits file.
  const said = job.log.filter(line => !line.startsWith("credits: ")).pop() || "";
  const message = job.state === "failed" ? el("div", {class: "error small"}, job.error)
    : (compact && running && job.progress !== null) ? null  // the bar says it already
    : el("div", {class: "msg", title: said}, said);
  if (compact) return [el("div", {class: "row"}, badge, el("b", {}, job.kind), el("span", {}, facts.join(" · "))), ACTIVE.has(job.state) ? bar : null, message];
  return [bar, facts.length ? el("div", {class: "small"}, facts.join(" · ")) : null, message];
}

function badgeClass(job) {
  return {done: "ok", running: "run", failed: "bad", cancelled: "", queued: "queued"}[job.state] || "";
}

// -- Lines: the waveform and each line's text, queries, tags and sources --------------------

function renderLines(root) {
  const s = state.set;
  const fill = el("button", {id: "fill-queries", type: "button"}, "Fill queries from the lyrics");
  const force = el("input", {type: "checkbox", id: "fill-force"});
  fill.addEventListener("click", async () => {
    try {
      const answer = await post(`/api/sets/${enc(s.name)}/queries`, {force: force.checked});
      state.set = answer.set;
      renderSet();
      toast(answer.filled.length ? `queries written for line(s) ${answer.filled.join(", ")}` + (answer.synonyms ? "" : " (no WordNet: without synonyms)")
        : `lines ${answer.kept.join(", ")} have queries of their own; tick "replace" to make them again`);
    } catch (e) { toast(e.message, true); }
  });
  put(root, 
    waveformPanel(),
    s.times_error ? el("p", {class: "error"}, s.times_error) : null,
    el("div", {class: "row toolbar"}, fill, el("label", {class: "small"}, force, " replace queries already written"),
      el("span", {class: "muted small grow"}, "Queries are searched alone and with each tag; sources like folder:img/line1 or openverse replace the default sources for that line.")),
    el("table", {class: "grid lines"},
      el("thead", {}, el("tr", {}, ...["#", "time", "text", "queries (one a line)", "tags", "sources", ""].map(h => el("th", {}, h)))),
      el("tbody", {}, ...s.lines.map(lineRow))));
  document.body.dataset.ready = "1";
}

function lineRow(line) {
  const text = el("input", {type: "text", class: "text", value: line.text});
  const queries = el("textarea", {class: "queries", rows: String(Math.max(2, Math.min(6, line.queries.length)))});
  queries.value = line.queries.join("\n");
  const tags = el("input", {type: "text", class: "tags", value: line.tags.join(", ")});
  const sources = el("input", {type: "text", class: "sources", value: line.sources.join(", "), placeholder: "default sources"});
  const save = el("button", {type: "button", class: "save-line", disabled: true}, "Save");
  const note = el("div", {class: "small note"});
  const list = (s, sep) => s.split(sep).map(x => x.trim()).filter(Boolean);
  const original = JSON.stringify([line.text, line.queries, line.tags, line.sources]);
  const values = () => [text.value.trim(), list(queries.value, "\n"), list(tags.value, ","), list(sources.value, ",")];
  for (const input of [text, queries, tags, sources]) {
    input.addEventListener("input", () => { save.disabled = JSON.stringify(values()) === original; note.textContent = ""; });
  }
  save.addEventListener("click", async () => {
    const [t, q, g, src] = values();
    const changes = [
      {line: line.number, key: "text", value: t},
      {line: line.number, key: "queries", value: q.length ? q : null},
      {line: line.number, key: "tags", value: g},
      {line: line.number, key: "sources", value: src.length ? src : null},
    ];
    save.disabled = true;
    try {
      state.set = await post(`/api/sets/${enc(state.setName)}/edit`, {changes});
      const fresh = lineRow(lineOf(line.number));
      row.replaceWith(fresh);
      $(".note", fresh).textContent = "saved to set.toml";
      $(".note", fresh).className = "small note ok";
      drawWave();
    } catch (e) {
      note.textContent = e.message;
      note.className = "small note error";
      save.disabled = false;
    }
  });
  const row = el("tr", {class: "line-row" + (line.number === state.line ? " selected" : ""), "data-line": String(line.number)},
    el("td", {class: "num"}, String(line.number)),
    el("td", {class: "time"}, `${clock(line.start)} – ${clock(line.end)}`),
    el("td", {}, text),
    el("td", {}, queries),
    el("td", {}, tags),
    el("td", {}, sources),
    el("td", {}, save, note));
  row.addEventListener("focusin", () => selectLine(line.number, {scroll: false}));
  return row;
}

function selectLine(number, {scroll = true} = {}) {
  state.line = number;
  for (const row of document.querySelectorAll("tr.line-row")) {
    row.classList.toggle("selected", Number(row.dataset.line) === number);
    if (scroll && Number(row.dataset.line) === number) row.scrollIntoView({block: "nearest"});
  }
  drawWave();
}

// The song's waveform with each line's span over it; click: that line and the song from there.
function waveformPanel() {
  const canvas = el("canvas", {class: "wave", id: "wave"});
  const tip = el("div", {class: "wave-tip"});
  const audio = el("audio", {id: "song", preload: "none", src: fileUrl(state.set.song.audio)});
  const play = el("button", {type: "button", id: "play"}, "▶ play");
  play.addEventListener("click", () => audio.paused ? audio.play() : audio.pause());
  audio.addEventListener("play", () => { play.textContent = "❚❚ pause"; animateCursor(); });
  audio.addEventListener("pause", () => { play.textContent = "▶ play"; });
  const timeAt = e => {
    const r = canvas.getBoundingClientRect();
    return (e.clientX - r.left) / r.width * (state.set.duration || 0);
  };
  canvas.addEventListener("mousemove", e => {
    const t = timeAt(e);
    const line = state.set.lines.find(l => l.start !== null && t >= l.start && t < l.end);
    tip.style.display = "block";
    tip.style.left = `${Math.min(e.offsetX + 12, canvas.clientWidth - 260)}px`;
    tip.style.top = "6px";
    tip.textContent = clock(t) + (line ? ` · line ${line.number}: ${line.text}` : "");
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  canvas.addEventListener("click", e => {
    const t = timeAt(e);
    const line = state.set.lines.find(l => l.start !== null && t >= l.start && t < l.end);
    if (line) selectLine(line.number);
    audio.currentTime = t;
    drawWave();
  });
  const wrap = el("div", {class: "wave-wrap"}, canvas, tip);
  loadWave();
  return el("div", {}, wrap, el("div", {class: "row"}, play, audio,
    el("span", {class: "muted small"}, "Each coloured span is a line, from its LRC stamp to the next; click to choose a line and play from there.")));
}

async function loadWave() {
  const name = state.setName;
  if (!state.waves.has(name)) {
    try { state.waves.set(name, await get(`/api/sets/${enc(name)}/waveform`)); } catch (e) { toast(e.message, true); return; }
  }
  drawWave();
  document.body.dataset.wave = "1";
}

function lineColour(i, alpha) { return `hsla(${(i * 67 + 30) % 360}, 70%, 60%, ${alpha})`; }

function drawWave() {
  const canvas = $("#wave");
  const peaks = state.waves.get(state.setName);
  if (!canvas || !peaks) return;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.width = Math.round(canvas.clientWidth * dpr);
  const h = canvas.height = Math.round(canvas.clientHeight * dpr);
  const g = canvas.getContext("2d");
  const total = state.set.duration || peaks.duration;
  g.clearRect(0, 0, w, h);
  for (const line of state.set.lines) {
    if (line.start === null) continue;
    const x0 = line.start / total * w, x1 = line.end / total * w;
    g.fillStyle = lineColour(line.number - 1, line.number === state.line ? 0.38 : 0.16);
    g.fillRect(x0, 0, x1 - x0, h);
    g.fillStyle = lineColour(line.number - 1, 1);
    g.fillRect(x0, 0, Math.max(1, dpr), h);
    g.font = `${12 * dpr}px system-ui, sans-serif`;
    g.fillText(String(line.number), x0 + 4 * dpr, 14 * dpr);
  }
  const n = peaks.min.length;
  g.fillStyle = "#c9d1d9";
  const mid = h / 2, scale = h * 0.45;
  for (let x = 0; x < w; x++) {
    const i0 = Math.floor(x / w * n), i1 = Math.max(i0 + 1, Math.floor((x + 1) / w * n));
    let lo = 0, hi = 0;
    for (let i = i0; i < i1 && i < n; i++) { lo = Math.min(lo, peaks.min[i]); hi = Math.max(hi, peaks.max[i]); }
    g.fillRect(x, mid - hi * scale, 1, Math.max(1, (hi - lo) * scale));
  }
  const audio = $("#song");
  if (audio && audio.currentTime > 0) {
    g.fillStyle = "#ffb347";
    g.fillRect(audio.currentTime / total * w, 0, 2 * dpr, h);
  }
}

function animateCursor() {
  const audio = $("#song");
  if (!audio || audio.paused) return;
  drawWave();
  requestAnimationFrame(animateCursor);
}

// -- Images: collect, cluster, prepare per line -------------------------------------------------

function renderImages(root) {
  const s = state.set;
  const opt = (id, value, attrs = {}) => kept(el("input", {type: "number", id, value: String(value), ...attrs}));
  const perQuery = opt("opt-per-query", 30, {min: 1});
  const k = opt("opt-k", 10, {min: 1});
  const minSide = opt("opt-min-side", 256, {min: 1});
  const size = opt("opt-size", s.output.size, {min: 16, step: 2});
  const square = el("select", {id: "opt-square"}, el("option", {value: "crop"}, "centre crop"), el("option", {value: "pad"}, "pad"));
  kept(square);
  const options = {
    collect: () => ({per_query: Number(perQuery.value)}),
    cluster: () => ({k: Number(k.value), min_side: Number(minSide.value)}),
    prepare: () => ({size: Number(size.value), square: square.value}),
  };
  const everyLine = kind => el("button", {type: "button", class: `all-${kind}`, onclick: () => {
    for (const line of s.lines) startJob(kind, line.number, options[kind]());
  }}, kind);
  put(root, 
    el("div", {class: "panel options"},
      el("label", {}, "images per search term", perQuery),
      el("label", {}, "clusters (K-means k)", k),
      el("label", {}, "smallest side kept (px)", minSide),
      el("label", {}, "dataset side (px)", size),
      el("label", {}, "squaring", square),
      el("div", {class: "row actions wide"}, el("span", {class: "muted small"}, "queue for every line:"),
        everyLine("collect"), everyLine("cluster"), everyLine("prepare"))),
    el("table", {class: "grid images"},
      el("thead", {}, el("tr", {}, ...["#", "line", "sources", "images", "clusters", "kept", "dataset", ""].map(h => el("th", {}, h)))),
      el("tbody", {}, ...s.lines.map(line => imagesRow(line, options)))));
  document.body.dataset.ready = "1";
}

function imagesRow(line, options) {
  const st = line.status;
  const refused = Object.entries(st.refused).filter(([, n]) => n > 0).map(([r, n]) => `${r.replace(/_/g, " ")} ${n}`);
  const button = (kind, label, enabled = true) => el("button", {type: "button", class: kind, disabled: !enabled,
    onclick: () => startJob(kind, line.number, options[kind]())}, label);
  return el("tr", {class: "images-row", "data-line": String(line.number)},
    el("td", {class: "num"}, String(line.number)),
    el("td", {}, el("div", {}, line.text), el("div", {class: "chips"}, ...line.queries.slice(0, 4).map(q => el("span", {class: "chip"}, q)))),
    el("td", {class: "small"}, line.sources.length ? line.sources.join(", ") : el("span", {class: "muted"}, "default")),
    el("td", {}, el("b", {class: "count-images"}, String(st.images)),
      refused.length ? el("div", {class: "small muted refused", title: "refused for good: " + refused.join(", ")},
        `${Object.values(st.refused).reduce((a, b) => a + b, 0)} refused`) : null),
    el("td", {}, st.clusters === null ? el("span", {class: "muted"}, "–") : `${st.clusters} of ${st.clustered} images`),
    el("td", {}, st.kept === null ? el("span", {class: "muted"}, "–") : el("a", {href: `#/set/${enc(state.setName)}/curate`, onclick: () => { state.line = line.number; }}, `${st.kept} kept`)),
    el("td", {}, st.data ? el("span", {class: "badge ok"}, st.data) : el("span", {class: "muted"}, "–")),
    el("td", {},
      el("div", {class: "row nowrap"}, button("collect", "Collect"), button("cluster", "Cluster", st.images > 0), button("prepare", "Prepare", st.images > 0)),
      inlineJob("collect", line.number), inlineJob("cluster", line.number), inlineJob("prepare", line.number)));
}

// -- Curate: keep or drop clusters (the curation page's decisions, folded in) -------------------

async function renderCurate(root) {
  put(root, el("p", {class: "muted"}, "loading clusters…"));
  try { state.curation = await get(`/api/sets/${enc(state.setName)}/curation`); } catch (e) { root.replaceChildren(el("p", {class: "error"}, e.message)); return; }
  const lines = state.curation.lines;
  if (!lines.length) {
    root.replaceChildren(el("div", {class: "panel"}, el("p", {}, "No line is clustered yet."),
      el("p", {class: "muted"}, "Collect images and cluster them on the Images tab; the clusters show up here.")));
    document.body.dataset.ready = "1";
    return;
  }
  if (!lines.some(l => l.line === state.line)) state.line = lines[0].line;
  const picker = el("div", {class: "row"}, el("span", {class: "muted"}, "line"),
    ...lines.map(l => el("button", {type: "button", class: "pick" + (l.line === state.line ? " primary" : ""), "data-line": String(l.line),
      onclick: () => { state.line = l.line; renderSet(); }}, String(l.line))),
    el("span", {class: "muted small grow"}, "Click a sheet or press K keep, D drop, space toggle, I images; arrows move. Every decision is saved to curation.json at once."),
    el("span", {class: "error", id: "curate-error"}));
  const section = el("section", {id: "curate-line"});
  root.replaceChildren(picker, section);
  renderCurationLine(section, lines.find(l => l.line === state.line));
  document.body.dataset.ready = "1";
}

async function decide(body) {
  try {
    const answer = await post(`/api/sets/${enc(state.setName)}/curation`, body);
    $("#curate-error").textContent = "";
    const i = state.curation.lines.findIndex(l => l.line === answer.line);
    state.curation.lines[i] = answer;
    const section = $("#curate-line");
    if (section) renderCurationLine(section, answer);
  } catch (e) {
    const out = $("#curate-error");
    if (out) out.textContent = e.message; else toast(e.message, true);
  }
}

const openThumbs = new Set();

function renderCurationLine(section, line) {
  const focused = document.activeElement && document.activeElement.dataset.key;
  const merged = line.curation.merged || line.groups.length === 1;
  const groups = line.groups.filter(g => merged ? g.slug === "_all" : g.slug !== "_all");
  const merge = el("input", {type: "checkbox", class: "merge", checked: line.curation.merged,
    onchange: e => decide({line: line.line, action: "merge", merged: e.target.checked})});
  const value = line.curation.outlier;
  const shown = el("span", {}, value === null ? "off" : String(value));
  const slider = el("input", {type: "range", class: "outlier", min: "0", max: "5", step: "0.1", value: value === null ? "0" : String(value)});
  slider.style.width = "180px";
  slider.addEventListener("input", () => { shown.textContent = slider.value === "0" ? "off" : slider.value; });
  slider.addEventListener("change", () => decide({line: line.line, action: "outlier", threshold: slider.value === "0" ? null : Number(slider.value)}));
  section.replaceChildren(
    el("h2", {}, `Line ${line.line} — ${line.text}`, " ", el("span", {class: "muted count"}, `${line.kept_count} of ${line.count} images kept`)),
    el("div", {class: "row"}, el("label", {}, merge, " decide on all queries together"),
      el("label", {}, "drop outliers above ", slider, " ", shown)),
    ...groups.map(group => el("div", {class: "group"},
      el("h3", {}, group.query === null ? "all queries" : `query: ${group.query}`),
      el("div", {class: "cur-cards"}, ...group.clusters.map(c => clusterCard(line, group, c))))));
  if (focused) { const again = section.querySelector(`[data-key="${focused}"]`); if (again) again.focus(); }
}

function clusterCard(line, group, c) {
  const decision = ((line.curation.clusters[group.slug] || {})[String(c.id)]) || "keep";
  const set = d => decide({line: line.line, action: "cluster", group: group.slug, cluster: c.id, decision: d});
  const key = `${line.line}/${group.slug}/${c.id}`;
  const thumbs = el("div", {class: "thumbs", hidden: true});
  const showThumbs = () => { thumbs.replaceChildren(...c.images.map(img => thumb(line, img))); thumbs.hidden = false; };
  const toggleThumbs = () => {
    if (thumbs.hidden) { openThumbs.add(key); showThumbs(); } else { openThumbs.delete(key); thumbs.hidden = true; }
  };
  if (openThumbs.has(key)) showThumbs();
  const sheet = el("img", {class: "sheet", alt: `cluster ${c.id}`, title: "click: keep or drop this cluster",
    src: fileUrl(`clusters/line-${String(line.line).padStart(2, "0")}/${c.sheet}`)});
  // Every sheet at one scale, the widest filling its card: thumbnails of a cluster of 1 and
  // of 8 images show at one size (sheet_row_width is the widest sheet's natural width).
  sheet.addEventListener("load", () => { sheet.style.width = Math.min(100, 100 * sheet.naturalWidth / state.curation.sheet_row_width) + "%"; });
  sheet.addEventListener("click", () => set(decision === "keep" ? "drop" : "keep"));
  const card = el("div", {class: `cur-card ${decision}`, tabindex: "0", "data-key": key, "data-cluster": String(c.id), "data-group": group.slug},
    sheet,
    el("div", {class: "bar-row"},
      el("span", {}, `cluster ${c.id} · ${c.count} images `, el("span", {class: "decision"}, decision)),
      el("span", {class: "row"},
        el("button", {type: "button", class: "keep", onclick: () => set("keep")}, "keep"),
        el("button", {type: "button", class: "drop", onclick: () => set("drop")}, "drop"),
        el("button", {type: "button", class: "images", onclick: toggleThumbs}, "images"))),
    thumbs);
  card.addEventListener("keydown", e => {
    const k = e.key.toLowerCase();
    if (k === "k") set("keep");
    else if (k === "d") set("drop");
    else if (k === " ") { set(decision === "keep" ? "drop" : "keep"); e.preventDefault(); }
    else if (k === "i") toggleThumbs();
    else if (e.key.startsWith("Arrow")) {
      const all = [...document.querySelectorAll(".cur-card")];
      const next = all[all.indexOf(card) + (e.key === "ArrowRight" || e.key === "ArrowDown" ? 1 : -1)];
      if (next) next.focus();
      e.preventDefault();
    }
  });
  return card;
}

function thumb(line, img) {
  const forced = line.curation.images[img.sha256];
  const kept = line.kept[img.sha256];
  const next = forced === undefined ? (kept ? "drop" : "keep") : (forced === "keep" ? "drop" : null);
  return el("img", {class: (kept ? "" : "out") + (forced ? " forced" : ""), loading: "lazy",
    title: `${img.file} · outlier ${img.outlier}` + (forced ? ` · forced ${forced}` : "") + " · click to override",
    src: `/api/sets/${enc(state.setName)}/thumb?` + qs({line: line.line, sha: img.sha256}),
    onclick: () => decide({line: line.line, action: "image", sha256: img.sha256, decision: next})});
}

// -- Train: start, stop, resume; losses, ADA p, KID and the latest samples ----------------------

function renderTrain(root) {
  const s = state.set;
  const num = (id, value, attrs = {}) => kept(el("input", {type: "number", id, value: value === null ? "" : String(value), ...attrs}));
  const kimg = num("train-kimg", 1000, {min: 0.001, step: "any"});
  const tick = num("train-tick", 4, {min: 0.001, step: "any"});
  const snap = num("train-snap", 50, {min: 1});
  const batch = num("train-batch", null, {placeholder: "auto", min: 1});
  const cfg = kept(el("select", {id: "train-cfg", title: "a preset of network sizes and rates (lyriscope train --cfg)"},
    ...s.presets.map(p => el("option", {value: p.name, title: p.help}, p.name))));
  const channelBase = num("train-channel-base", null, {placeholder: "the preset's", min: 16});
  const channelMax = num("train-channel-max", null, {placeholder: "the preset's", min: 1});
  const workers = num("train-workers", 3, {min: 0});
  const metrics = el("select", {id: "train-metrics"}, ...["kid", "fid", "kid,fid", "none"].map(m => el("option", {value: m}, m)));
  const device = el("select", {id: "train-device"}, ...["auto", "cuda", "cpu"].map(d => el("option", {value: d}, d)));
  const resume = el("input", {type: "checkbox", id: "train-resume"});
  const mirror = kept(el("input", {type: "checkbox", id: "train-mirror"}));
  kept(metrics);
  kept(device);
  const choice = lineSelect(v => { if (v !== "all") state.line = v; state.trainChoice = v; renderSet(); }, {all: true, id: "train-line"});
  if (state.trainChoice === "all") choice.value = "all";
  const numberOrNull = input => input.value === "" ? null : Number(input.value);
  const start = el("button", {type: "button", class: "primary", id: "train-start"}, "Start training");
  start.addEventListener("click", () => startJob("train", choice.value === "all" ? "all" : Number(choice.value), {
    kimg: Number(kimg.value), tick_kimg: Number(tick.value), snap: Number(snap.value),
    cfg: cfg.value, batch: numberOrNull(batch), channel_base: numberOrNull(channelBase),
    channel_max: numberOrNull(channelMax), workers: Number(workers.value),
    metrics: metrics.value, device: device.value, resume: resume.checked, mirror: mirror.checked}));
  const stop = el("button", {type: "button", class: "danger", id: "train-stop", disabled: true,
    title: "Ctrl-C for the training: it writes a checkpoint; start again with resume to continue"}, "Stop");
  stop.addEventListener("click", () => { const job = activeJob("train"); if (job) cancelJob(job.id); });
  resume.checked = Boolean(lineOf(state.line).status.kimg);  // a run to continue: resume it
  kept(resume);
  put(root, 
    el("div", {class: "panel"},
      el("div", {class: "options"},
        el("label", {}, "line", choice),
        el("label", {}, "train to kimg", kimg), el("label", {}, "kimg per tick", tick), el("label", {}, "snapshot every (ticks)", snap),
        el("label", {}, "preset", cfg), el("label", {}, "batch", batch),
        el("label", {}, "channel base", channelBase), el("label", {}, "channel max", channelMax),
        el("label", {}, "data workers", workers), el("label", {}, "metrics", metrics), el("label", {}, "device", device),
        el("label", {class: "check"}, resume, "resume from the checkpoint"), el("label", {class: "check"}, mirror, "mirror")),
      el("div", {class: "row actions"}, start, stop,
        el("span", {class: "muted small"}, "Runs on as `lyriscope train` when this page is closed; Stop writes a checkpoint that resume continues.")),
      inlineJob("train")),
    el("div", {id: "train-view"}, el("p", {class: "muted"}, "loading the run…")));
  loadTraining();
  state.trainTimer = setInterval(() => { if (activeJob("train")) loadTraining(); }, 2000);
}

async function loadTraining() {
  const name = state.setName, line = state.line;
  let view;
  try { view = await get(`/api/sets/${enc(name)}/training`, {line}); } catch (e) { toast(e.message, true); return; }
  const target = $("#train-view");
  if (!target || state.setName !== name || state.tab !== "train") return;
  state.training = view;
  const job = lastJob("train");
  const running = job && job.state === "running" && (job.line === line || job.line === null);
  const kidLast = view.kid.length ? view.kid[view.kid.length - 1].kid : null;
  const stat = (label, value, id) => el("div", {class: "stat"}, el("span", {}, label), el("b", {id}, value));
  const losses = el("canvas", {class: "chart", id: "chart-losses"});
  const pChart = el("canvas", {class: "chart", id: "chart-p"});
  target.replaceChildren(el("div", {class: "train-grid"},
    el("div", {class: "panel"},
      el("h2", {}, `Line ${line} — ${lineOf(line).text}`),
      el("div", {class: "stats"},
        stat("kimg", fmt(view.kimg, 3), "train-kimg-now"),
        stat("time left", running && job.eta_s !== null ? clockLeft(job.eta_s) : "–", "train-eta"),
        stat("ADA p", fmt(view.p, 3), "train-p"),
        stat("KID", kidLast === null ? "–" : fmt(kidLast, 4), "train-kid")),
      el("div", {class: "small muted"}, view.sec_per_kimg ? `${fmt(view.sec_per_kimg, 1)} s per kimg · tick ${view.tick}` : "no ticks yet",
        view.model ? " · model written" : "", view.resumable ? " · checkpoint ready to resume" : ""),
      el("h3", {}, "losses"), losses,
      el("h3", {}, "augmentation p and KID"), pChart),
    el("div", {class: "panel"},
      el("h2", {}, "latest samples"),
      view.sample ? el("img", {class: "sample", id: "train-sample", src: fileUrl(view.sample, {v: view.sample_mtime})})
        : el("p", {class: "muted"}, "The first sample grid is written at the first snapshot."),
      view.sample ? el("div", {class: "small muted"}, view.sample) : null)));
  drawChart(losses, [
    {name: "G", colour: "#ffb347", points: view.rows.map(r => [r.kimg, r.loss_G])},
    {name: "D", colour: "#5aa9ff", points: view.rows.map(r => [r.kimg, r.loss_D])},
  ]);
  drawChart(pChart, [
    {name: "p", colour: "#4fbf6a", points: view.rows.map(r => [r.kimg, r.p])},
    {name: "KID", colour: "#e5534b", points: view.kid.map(r => [r.kimg, r.kid]), dots: true},
  ]);
  document.body.dataset.ready = "1";
}

// A small line chart: series of [x, y] points on shared axes, with a legend.
function drawChart(canvas, series) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.width = Math.round(canvas.clientWidth * dpr);
  const h = canvas.height = Math.round(canvas.clientHeight * dpr);
  const g = canvas.getContext("2d");
  const pad = {l: 46 * dpr, r: 10 * dpr, t: 20 * dpr, b: 20 * dpr};
  const points = series.flatMap(s => s.points.filter(p => p[0] !== null && p[1] !== null && isFinite(p[1])));
  g.font = `${11 * dpr}px system-ui, sans-serif`;
  g.fillStyle = "#9aa0a6";
  if (!points.length) { g.fillText("no ticks yet", pad.l, h / 2); return; }
  let [x0, x1] = [Math.min(...points.map(p => p[0])), Math.max(...points.map(p => p[0]))];
  let [y0, y1] = [Math.min(...points.map(p => p[1])), Math.max(...points.map(p => p[1]))];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const X = x => pad.l + (x - x0) / (x1 - x0) * (w - pad.l - pad.r);
  const Y = y => h - pad.b - (y - y0) / (y1 - y0) * (h - pad.t - pad.b);
  g.strokeStyle = "#2c2f35";
  g.lineWidth = dpr;
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    g.beginPath(); g.moveTo(pad.l, Y(y)); g.lineTo(w - pad.r, Y(y)); g.stroke();
    g.fillText(y.toPrecision(3), 4 * dpr, Y(y) + 4 * dpr);
  }
  g.fillText(`${x0.toFixed(2)} kimg`, pad.l, h - 5 * dpr);
  g.fillText(`${x1.toFixed(2)}`, w - pad.r - 40 * dpr, h - 5 * dpr);
  let legend = pad.l;
  for (const s of series) {
    const pts = s.points.filter(p => p[0] !== null && p[1] !== null && isFinite(p[1]));
    g.strokeStyle = g.fillStyle = s.colour;
    g.lineWidth = 1.6 * dpr;
    if (s.dots || pts.length === 1) for (const [x, y] of pts) { g.beginPath(); g.arc(X(x), Y(y), 3 * dpr, 0, 7); g.fill(); }
    else { g.beginPath(); pts.forEach(([x, y], i) => i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))); g.stroke(); }
    g.fillText(s.name, legend, 13 * dpr);
    legend += g.measureText(s.name).width + 16 * dpr;
  }
}

// -- Preview: a line's loop with the walk's parameters on sliders -------------------------------

function renderPreview(root) {
  const s = state.set;
  const line = lineOf(state.line);
  const knobs = s.params.walk.filter(p => p.knob);
  const sliders = el("div", {class: "sliders"});
  const values = {};
  for (const p of knobs) {
    const value = line.walk[p.name];
    const output = el("output", {}, String(value));
    const input = el("input", {type: "range", class: "walk", "data-key": p.name, min: String(p.knob[0]), max: String(Math.max(p.knob[1], value)),
      step: String((p.knob[1] - p.knob[0]) / 100), value: String(value), title: p.help});
    input.addEventListener("input", () => { output.textContent = input.value; values[p.name] = Number(input.value); });
    sliders.append(el("span", {class: "name" + (line.overrides.includes(p.name) ? " own" : ""), title: p.help}, p.name.replace(/_/g, " ")), input, output);
  }
  const seconds = el("input", {type: "number", id: "preview-seconds", min: "0.1", step: "any", placeholder: `${line.walk.loop_seconds} (one loop)`});
  const size = el("select", {id: "preview-size"}, ...[128, 256, 512].map(n => el("option", {value: String(n)}, `${n} px`)));
  size.value = "256";
  kept(seconds);
  kept(size);
  // `lyriscope preview --line N` needs only that line's model.
  const untrained = line.status.model ? [] : [line.number];
  const render = el("button", {type: "button", class: "primary", id: "preview-render", disabled: untrained.length > 0}, "Render preview");
  const reset = el("button", {type: "button", id: "preview-reset", disabled: !line.overrides.some(k => knobs.some(p => p.name === k))}, "Use the set's [walk]");
  const error = el("div", {class: "error", id: "preview-error"});
  render.addEventListener("click", async () => {
    error.textContent = "";
    const changes = Object.entries(values).map(([key, value]) => ({line: line.number, key, value}));
    try {
      if (changes.length) state.set = await post(`/api/sets/${enc(s.name)}/edit`, {changes});
    } catch (e) { error.textContent = e.message; return; }
    startJob("preview", line.number, {size: Number(size.value), seconds: seconds.value === "" ? null : Number(seconds.value)});
  });
  reset.addEventListener("click", async () => {
    const changes = knobs.filter(p => line.overrides.includes(p.name)).map(p => ({line: line.number, key: p.name, value: null}));
    try { state.set = await post(`/api/sets/${enc(s.name)}/edit`, {changes}); renderSet(); } catch (e) { error.textContent = e.message; }
  });
  const clip = line.status.preview;
  const strip = s.previews.find(f => f.path === `preview/line-${String(line.number).padStart(2, "0")}-keyframes.png`);
  const clipInfo = s.previews.find(f => f.path === clip);
  put(root, el("div", {class: "train-grid"},
    el("div", {class: "panel"},
      el("div", {class: "row"}, el("label", {}, "line ", lineSelect(v => { state.line = v; renderSet(); }, {id: "preview-line"})),
        el("span", {class: "grow"}), untrained.length ? el("span", {class: "error small"},
          `line ${untrained[0]} has no model yet; train it first`) : null),
      el("h3", {}, "walk"),
      sliders,
      el("p", {class: "small muted"}, "Rendering saves these values to this line in set.toml (● marks a line's own value; the others follow [walk]), so the export shows what the preview showed."),
      el("div", {class: "options"}, el("label", {}, "clip seconds", seconds), el("label", {}, "size", size)),
      el("div", {class: "row actions"}, render, reset), error, inlineJob("preview", line.number)),
    el("div", {class: "panel"},
      el("h2", {}, "loop"),
      clip ? el("video", {id: "preview-video", src: fileUrl(clip, {v: clipInfo ? clipInfo.mtime : 0}), controls: true, autoplay: true, loop: true, muted: true, playsinline: true})
        : el("p", {class: "muted"}, "No preview yet."),
      strip ? el("img", {class: "strip", id: "preview-strip", src: fileUrl(strip.path, {v: strip.mtime}), alt: "the loop's keyframes"}) : null,
      strip ? el("div", {class: "small muted"}, "the keyframes the loop passes through, left to right") : null)));
  const video = $("#preview-video");
  if (video) video.muted = true;
  document.body.dataset.ready = "1";
}

// -- Export: the song (or a part) to an MP4 -----------------------------------------------------

function renderExport(root) {
  const s = state.set;
  const start = el("input", {type: "number", id: "export-start", value: "0", min: "0", step: "any"});
  const end = el("input", {type: "number", id: "export-end", min: "0", step: "any", placeholder: `${fmt(s.duration, 1)}`});
  const size = el("input", {type: "number", id: "export-size", value: String(s.output.size), min: "16", step: "2"});
  const fps = el("input", {type: "number", id: "export-fps", value: String(s.output.fps), min: "1", step: "any"});
  [start, end, size, fps].forEach(kept);
  const missing = s.lines.filter(l => !l.status.model).map(l => l.number);
  const go = el("button", {type: "button", class: "primary", id: "export-start-button"}, "Export MP4");
  go.addEventListener("click", () => startJob("render", null, {start: Number(start.value || 0), end: end.value === "" ? null : Number(end.value),
    size: Number(size.value), fps: Number(fps.value)}));
  const renders = s.renders.slice().sort((a, b) => b.mtime - a.mtime);
  put(root, 
    el("div", {class: "panel"},
      el("div", {class: "options"}, el("label", {}, "from (s)", start), el("label", {}, "to (s)", end),
        el("label", {}, "side (px)", size), el("label", {}, "frames per second", fps), go),
      missing.length ? el("p", {class: "error small"}, `line(s) ${missing.join(", ")} have no model yet; the render needs one for every line`) : null,
      el("p", {class: "small muted"}, "H.264 with the song's audio, round(duration × fps) frames, written to the set's renders/ folder."),
      inlineJob("render")),
    el("h2", {}, "Renders"),
    renders.length ? el("div", {id: "renders"}, ...renders.map(r => el("div", {class: "render-item panel", "data-path": r.path},
      el("video", {src: fileUrl(r.path, {v: r.mtime}), controls: true, preload: "metadata"}),
      el("div", {},
        el("b", {}, r.path.split("/").pop()),
        el("div", {class: "small muted"}, `${megabytes(r.bytes)} · ${new Date(r.mtime * 1000).toLocaleString()}`),
        el("p", {}, el("a", {class: "button download", href: fileUrl(r.path, {download: 1}), download: r.path.split("/").pop()}, "Download"))))))
      : el("p", {class: "muted"}, "Nothing exported yet."));
  document.body.dataset.ready = "1";
}

// -- Settings: [song], [output], [walk] and [post] of set.toml ----------------------------------

function renderSettings(root) {
  const s = state.set;
  const fields = [];  // [table, key, input, kind, original]
  const input = (table, key, value, kind, extra = {}) => {
    let e;
    if (kind === "bool") e = el("input", {type: "checkbox", checked: value, "data-key": `${table}.${key}`});
    else if (kind === "choice") e = el("select", {"data-key": `${table}.${key}`}, ...extra.options.map(o => el("option", {value: o}, o)));
    else e = el("input", {type: kind === "text" ? "text" : "number", step: "any", "data-key": `${table}.${key}`, value: value === null ? "" : String(value)});
    if (kind === "choice") e.value = value;
    fields.push([table, key, e, kind, value]);
    return el("label", {title: extra.help || ""}, key.replace(/_/g, " "), e);
  };
  const helpOf = (table, key) => (s.params[table] || []).find(p => p.name === key)?.help;
  const numbers = (table, values, keys) => keys.map(k => input(table, k, values[k], "number", {help: helpOf(table, k)}));
  const walkNumbers = s.params.walk.filter(p => p.knob || p.name === "seeds").map(p => p.name);
  const postNumbers = s.params.post.filter(p => p.knob).map(p => p.name);
  const save = el("button", {type: "button", class: "primary", id: "settings-save"}, "Save to set.toml");
  const message = el("div", {id: "settings-message"});
  save.addEventListener("click", async () => {
    const changes = [];
    for (const [table, key, e, kind, original] of fields) {
      let value = kind === "bool" ? e.checked : e.value;
      if (kind === "number") value = value === "" ? null : Number(value);
      if (value === original || (value === null && original === null)) continue;
      changes.push({table, key, value});
    }
    if (!changes.length) { message.textContent = "nothing changed"; message.className = "muted"; return; }
    try {
      state.set = await post(`/api/sets/${enc(s.name)}/edit`, {changes});
      renderSet();
      const m = $("#settings-message");
      m.textContent = `saved ${changes.length} value(s) to set.toml`;
      m.className = "ok";
    } catch (e) { message.textContent = e.message; message.className = "error"; }
  });
  put(root, 
    el("div", {class: "panel"}, el("h2", {}, "Song"), el("div", {class: "options"},
      input("song", "title", s.song.title, "text"), input("song", "artist", s.song.artist, "text"))),
    el("div", {class: "panel"}, el("h2", {}, "Output"), el("div", {class: "options"},
      ...numbers("output", s.output, ["size", "fps", "crf", "gap"]))),
    el("div", {class: "panel"}, el("h2", {}, "Walk"), el("p", {class: "small muted"}, "defaults of every line; a line's own values (Preview tab) win"),
      el("div", {class: "options"}, ...numbers("walk", s.walk, walkNumbers),
        input("walk", "space", s.walk.space, "choice", {options: ["z", "w"], help: helpOf("walk", "space")}),
        input("walk", "noise", s.walk.noise, "choice", {options: ["const", "random", "none"], help: helpOf("walk", "noise")}))),
    el("div", {class: "panel"}, el("h2", {}, "Post"), el("div", {class: "options"},
      ...numbers("post", s.post, postNumbers),
      input("post", "text", s.post.text, "bool"),
      input("post", "upscale", s.post.upscale, "choice", {options: ["lanczos", "bicubic", "bilinear", "nearest"]}))),
    el("div", {class: "row"}, save, message));
  document.body.dataset.ready = "1";
}

// -- jobs ---------------------------------------------------------------------------------------

function mergeJob(job) {
  const i = state.jobs.findIndex(j => j.id === job.id);
  if (i >= 0) state.jobs[i] = job; else state.jobs.push(job);
  jobsChanged();
}

function jobsChanged() {
  let ended = false;
  for (const job of state.jobs) {
    const before = state.jobStates.get(job.id);
    if (before !== undefined && before !== job.state && !ACTIVE.has(job.state) && job.set === state.setName) ended = true;
    state.jobStates.set(job.id, job.state);
  }
  renderJobs();
  updateInlineJobs();
  if (ended) refreshSet();
}

function renderJobs() {
  const jobs = state.jobs.slice().reverse();
  const busy = jobs.filter(j => ACTIVE.has(j.state)).length;
  $("#jobs-count").textContent = String(busy);
  $("#jobs-toggle").classList.toggle("busy", busy > 0);
  const list = $("#jobs-list");
  const open = new Set([...list.querySelectorAll("details[open]")].map(d => d.dataset.job));
  if (!jobs.length) { list.replaceChildren(el("p", {class: "muted"}, "no jobs yet")); return; }
  list.replaceChildren();
  put(list, jobs.map(job => {
    const log = el("details", {"data-job": String(job.id), open: open.has(String(job.id))}, el("summary", {class: "small muted"}, "log"),
      el("pre", {}, job.log.join("\n")));
    return el("div", {class: `job ${job.state}`, "data-job": String(job.id), "data-kind": job.kind, "data-state": job.state},
      el("div", {class: "head"},
        el("span", {class: "t", title: job.title}, job.title),
        el("span", {class: "badge " + badgeClass(job)}, job.cancelling ? "stopping" : job.state),
        ACTIVE.has(job.state) ? el("button", {type: "button", class: "cancel", onclick: () => cancelJob(job.id)}, job.state === "queued" ? "remove" : "stop") : null),
      el("div", {class: "small muted"}, `${job.set} · ${job.lane}`),
      ...jobSummary(job), log);
  }));
}

function listenToJobs() {
  const source = new EventSource("/api/events?" + qs({}));
  source.onmessage = e => {
    const data = JSON.parse(e.data);
    state.jobs = data.jobs;
    jobsChanged();
  };
}

$("#jobs-toggle").addEventListener("click", () => $("#shell").classList.toggle("no-jobs"));
window.addEventListener("hashchange", route);
window.addEventListener("resize", () => { drawWave(); if (state.tab === "train" && state.training) loadTraining(); });
listenToJobs();
route();
