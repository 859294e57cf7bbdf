// voiceloop web page: file transcription, recording, a live view of a spoken session, and
// system info. Plain browser JavaScript with no build step and no external resources: the
// machines this runs on are often offline. The HTTP/websocket contract is in the server code
// (voiceloop/server); everything here talks to the same origin.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);

// ───────────────────────────── shared helpers ─────────────────────────────

// Auth: opening the page as `/?token=…` makes the server set an HttpOnly cookie that every
// same-origin request and websocket then carries, so no script here ever holds the token.
// The token is taken out of the address bar so it does not linger in history, bookmarks or
// screenshots of a kiosk.
function forgetTokenInAddress() {
  const url = new URL(location.href);
  if (!url.searchParams.has("token") || !history.replaceState) return;
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// The server answers every failure as {"error": {"message": …}}; fall back to the status line
// when a proxy in between answered instead.
function errorMessage(status, bodyText, statusText = "") {
  let message = "";
  try {
    const body = JSON.parse(bodyText);
    message = (body && body.error && body.error.message) || (body && body.detail) || "";
    if (typeof message !== "string") message = JSON.stringify(message);
  } catch (_) {
    message = (bodyText || "").trim().slice(0, 300);
  }
  if (status === 401) message = `not authorised: open this page as /?token=… (${message || "401"})`;
  return status ? `HTTP ${status}${statusText ? " " + statusText : ""}: ${message || "request failed"}` : message;
}

async function fetchJson(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    credentials: "same-origin",
  });
  const text = await response.text();
  if (!response.ok) throw new Error(errorMessage(response.status, text, response.statusText));
  return text ? JSON.parse(text) : null;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function baseName(filename) {
  const dot = filename.lastIndexOf(".");
  return dot > 0 ? filename.slice(0, dot) : filename;
}

function downloadBlob(filename, content, type) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const link = el("a", { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  // Revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

// Sent as typed: the server splits at commas where there are any (so a hotword may hold
// spaces, "Li Wei, FunASR"), else at spaces.
function hotwordsFrom(input) {
  return input.value.trim();
}

// Server limits (from /info) used to refuse oversized files before uploading them.
const limits = { maxUploadMb: null, maxAudioS: null, formats: null };

// ───────────────────────────── tabs ─────────────────────────────

const TABS = ["files", "record", "live", "info"];

function showTab(name, { focus = false } = {}) {
  if (!TABS.includes(name)) name = "files";
  for (const tab of TABS) {
    const button = $(`#tab-${tab}`);
    const selected = tab === name;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`#panel-${tab}`).hidden = !selected;
  }
  document.body.dataset.tab = name;
  if (focus) $(`#tab-${name}`).focus();
  if (history.replaceState && location.hash !== `#${name}`) {
    history.replaceState(null, "", `${location.pathname}${location.search}#${name}`);
  }
  if (name === "info") loadInfo();
  if (name === "live") drawChart(); // the canvas has no size while its panel is hidden
}

function setUpTabs() {
  for (const button of document.querySelectorAll('[role="tab"]')) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
    // Arrow keys move between tabs, as the WAI-ARIA tabs pattern expects.
    button.addEventListener("keydown", (event) => {
      const index = TABS.indexOf(button.dataset.tab);
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) {
        showTab(TABS[(index + step + TABS.length) % TABS.length], { focus: true });
        event.preventDefault();
      } else if (event.key === "Home" || event.key === "End") {
        showTab(event.key === "Home" ? TABS[0] : TABS[TABS.length - 1], { focus: true });
        event.preventDefault();
      }
    });
  }
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
}

// ───────────────────────────── server health ─────────────────────────────

async function checkHealth() {
  const badge = $("#server-status");
  try {
    const health = await fetchJson("/health");
    badge.dataset.status = health.status === "ok" ? "ok" : "degraded";
    badge.textContent = health.status === "ok" ? "server: ok" : `server: ${health.status}`;
    badge.title = `ASR loaded: ${health.asr_loaded ? "yes" : "no"}; up ${Math.round(health.uptime_s || 0)} s`;
  } catch (error) {
    badge.dataset.status = "down";
    badge.textContent = "server: unreachable";
    badge.title = String(error.message || error);
  }
}

// ───────────────────────────── transcribe files ─────────────────────────────

const PARALLEL_UPLOADS = 2; // two at a time keeps the server's queue busy without flooding it
const MAX_BUSY_RETRIES = 3;
const jobs = []; // {id, file, status, progress, result, error, row, clientDuration}
let nextJobId = 1;
let activeUploads = 0;

function addFiles(fileList) {
  for (const file of fileList) {
    const job = { id: nextJobId++, file, status: "queued", result: null, error: null, retries: 0 };
    const tooBig = limits.maxUploadMb && file.size > limits.maxUploadMb * 1024 * 1024;
    if (tooBig) {
      job.status = "error";
      job.error = `file is ${formatBytes(file.size)}; the server accepts at most ${limits.maxUploadMb} MB`;
    }
    jobs.push(job);
    job.row = renderJobRow(job);
    $("#results-body").append(job.row);
    probeDuration(job);
  }
  updateFilesSummary();
}

// The duration is known locally for most formats before the upload; the server's figure
// replaces it once the transcript is back.
function probeDuration(job) {
  const url = URL.createObjectURL(job.file);
  const audio = new Audio();
  audio.preload = "metadata";
  const done = () => URL.revokeObjectURL(url);
  audio.addEventListener("loadedmetadata", () => {
    if (Number.isFinite(audio.duration) && !job.result) {
      job.clientDuration = audio.duration;
      updateJobRow(job);
    }
    done();
  });
  audio.addEventListener("error", done);
  audio.src = url;
}

function renderJobRow(job) {
  const row = el("tr", { "data-job": job.id });
  row.append(
    el("td", { class: "col-file" }, el("span", { class: "file-name", text: job.file.name }),
      el("span", { class: "hint file-size", text: formatBytes(job.file.size) })),
    el("td", { class: "col-duration num" }),
    el("td", { class: "col-status" }),
    el("td", { class: "col-text" }),
    el("td", { class: "col-download" },
      el("button", { type: "button", class: "dl-txt small", text: "txt", "aria-label": `Download ${job.file.name} as text`, onclick: () => downloadJob(job, "txt") }),
      el("button", { type: "button", class: "dl-srt small", text: "srt", "aria-label": `Download ${job.file.name} as SRT subtitles`, onclick: () => downloadJob(job, "srt") }),
      el("button", { type: "button", class: "dl-json small", text: "json", "aria-label": `Download ${job.file.name} as JSON`, onclick: () => downloadJob(job, "json") }),
      el("button", { type: "button", class: "retry small", text: "retry", "aria-label": `Retry ${job.file.name}`, onclick: () => retryJob(job) })),
  );
  updateJobRow(job, row);
  return row;
}

const STATUS_LABELS = {
  queued: "queued",
  uploading: "uploading",
  transcribing: "transcribing…",
  waiting: "server busy",
  done: "done",
  error: "error",
};

function updateJobRow(job, row = job.row) {
  row.dataset.status = job.status;
  const duration = job.result ? job.result.duration : job.clientDuration;
  $(".col-duration", row).textContent = formatDuration(duration);

  const status = $(".col-status", row);
  status.replaceChildren(el("span", { class: `status-pill status-${job.status}`, text: STATUS_LABELS[job.status] }));
  if (job.status === "uploading") {
    const percent = Math.round((job.progress || 0) * 100);
    status.append(el("progress", { max: "100", value: String(percent), "aria-label": `Upload of ${job.file.name}` }),
      el("span", { class: "hint", text: ` ${percent}%` }));
  } else if (job.status === "waiting" && job.waitS) {
    status.append(el("span", { class: "hint", text: ` retrying in ${job.waitS} s` }));
  }

  const text = $(".col-text", row);
  if (job.status === "error") {
    text.replaceChildren(el("span", { class: "row-error", role: "alert", text: job.error }));
  } else if (job.result) {
    text.replaceChildren(job.result.text
      ? el("span", { class: "row-text", text: job.result.text })
      : el("span", { class: "hint", text: "(no speech recognised)" }));
  } else {
    text.replaceChildren();
  }
  const finished = job.status === "done";
  for (const button of row.querySelectorAll(".dl-txt, .dl-srt, .dl-json")) button.disabled = !finished;
  $(".retry", row).hidden = job.status !== "error" || !!(limits.maxUploadMb && job.file.size > limits.maxUploadMb * 1048576);
}

function updateFilesSummary() {
  const count = (status) => jobs.filter((job) => job.status === status).length;
  const queued = count("queued");
  const done = count("done");
  const errors = count("error");
  const table = $("#results");
  table.dataset.count = String(jobs.length);
  table.dataset.done = String(done);
  table.dataset.errors = String(errors);
  $("#results-empty").hidden = jobs.length > 0;
  $("#transcribe-btn").disabled = queued === 0;
  $("#transcribe-btn").textContent = queued > 1 ? `Transcribe ${queued} files` : "Transcribe";
  $("#download-all").disabled = done === 0;
  $("#clear-results").disabled = jobs.length === 0 || activeUploads > 0;
  const busy = jobs.length - queued - done - errors;
  const parts = [];
  if (queued) parts.push(`${queued} queued`);
  if (busy) parts.push(`${busy} in progress`);
  if (done) parts.push(`${done} done`);
  if (errors) parts.push(`${errors} failed`);
  $("#files-summary").textContent = parts.join(" · ");
}

function setJob(job, changes) {
  Object.assign(job, changes);
  updateJobRow(job);
  updateFilesSummary();
}

// Starts uploads until PARALLEL_UPLOADS are in flight; each finished upload pulls the next.
function pumpQueue() {
  while (activeUploads < PARALLEL_UPLOADS) {
    const job = jobs.find((candidate) => candidate.status === "queued" && candidate.started);
    if (!job) break;
    activeUploads++;
    uploadJob(job).finally(() => {
      activeUploads--;
      updateFilesSummary();
      pumpQueue();
    });
  }
}

function startQueued() {
  // The hotwords are fixed when the user presses Transcribe, not when a file's turn comes.
  const prompt = hotwordsFrom($("#hotwords"));
  for (const job of jobs) {
    if (job.status === "queued" && !job.started) Object.assign(job, { started: true, prompt });
  }
  pumpQueue();
}

function retryJob(job) {
  setJob(job, { status: "queued", error: null, started: true, retries: 0 });
  pumpQueue();
}

// XMLHttpRequest rather than fetch: fetch cannot report upload progress.
function postTranscription(file, fields, onProgress) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", file, file.name);
    for (const [key, value] of Object.entries(fields)) if (value) form.append(key, value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/audio/transcriptions");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total, false);
    });
    xhr.upload.addEventListener("load", () => onProgress && onProgress(1, true));
    xhr.addEventListener("load", () => resolve({
      status: xhr.status, statusText: xhr.statusText, body: xhr.responseText,
      retryAfter: xhr.getResponseHeader("Retry-After"),
    }));
    xhr.addEventListener("error", () => resolve({ status: 0, body: "network error: the server could not be reached" }));
    xhr.addEventListener("abort", () => resolve({ status: 0, body: "upload aborted" }));
    xhr.send(form);
  });
}

async function uploadJob(job) {
  setJob(job, { status: "uploading", progress: 0 });
  const response = await postTranscription(job.file, { response_format: "verbose_json", prompt: job.prompt },
    (fraction, uploaded) => {
      if (uploaded) setJob(job, { status: "transcribing" });
      else if (job.status === "uploading") setJob(job, { progress: fraction });
    });
  if (response.status === 200) {
    try {
      setJob(job, { status: "done", result: JSON.parse(response.body) });
    } catch (_) {
      setJob(job, { status: "error", error: "the server answered with something that is not JSON" });
    }
    return;
  }
  // 503 means the server's queue is full: wait as long as it asks, a few times, then give up.
  if (response.status === 503 && job.retries < MAX_BUSY_RETRIES) {
    const waitS = Math.min(Math.max(parseInt(response.retryAfter, 10) || 2, 1), 60);
    setJob(job, { status: "waiting", retries: job.retries + 1, waitS });
    await new Promise((resolve) => setTimeout(resolve, waitS * 1000));
    return uploadJob(job);
  }
  setJob(job, { status: "error", error: errorMessage(response.status, response.body, response.statusText) });
}

// ── downloads ──

function srtTime(seconds) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)},${pad(ms % 1000, 3)}`;
}

// SubRip: numbered cues from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm", text, blank line. Built from
// the verbose_json segments so a download needs no second request (and no second inference).
function toSrt(result) {
  let segments = (result.segments || []).filter((segment) => (segment.text || "").trim());
  if (!segments.length && (result.text || "").trim()) {
    segments = [{ start: 0, end: result.duration || 0, text: result.text }];
  }
  return segments.map((segment, index) => {
    const start = Number(segment.start) || 0;
    const end = Math.max(Number(segment.end) || 0, start + 0.001);
    return `${index + 1}\n${srtTime(start)} --> ${srtTime(end)}\n${segment.text.trim()}\n`;
  }).join("\n");
}

function downloadJob(job, format) {
  if (!job.result) return;
  const name = baseName(job.file.name);
  if (format === "txt") downloadBlob(`${name}.txt`, `${job.result.text || ""}\n`, "text/plain;charset=utf-8");
  else if (format === "srt") downloadBlob(`${name}.srt`, toSrt(job.result), "application/x-subrip;charset=utf-8");
  else downloadBlob(`${name}.json`, JSON.stringify(job.result, null, 2), "application/json");
}

function downloadAll() {
  const all = jobs.map((job) => ({
    file: job.file.name,
    size_bytes: job.file.size,
    status: job.status,
    ...(job.result || {}),
    ...(job.error ? { error: job.error } : {}),
  }));
  const stamp = new Date().toISOString().replace(/[:]/g, "-").slice(0, 19);
  downloadBlob(`transcripts-${stamp}.json`, JSON.stringify(all, null, 2), "application/json");
}

function clearResults() {
  if (activeUploads > 0) return;
  jobs.length = 0;
  $("#results-body").replaceChildren();
  updateFilesSummary();
}

function setUpFiles() {
  const input = $("#file-input");
  const zone = $("#drop-zone");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // choosing the same file again should add it again
  });
  zone.addEventListener("click", (event) => {
    // The label opens the picker itself, and its click on the input bubbles up here too.
    if (event.target === input || event.target.closest("label")) return;
    input.click();
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      input.click();
      event.preventDefault();
    }
  });
  // dragenter/dragleave fire for every child element, so count them to know when the drag
  // really left the zone.
  let depth = 0;
  zone.addEventListener("dragenter", (event) => { event.preventDefault(); depth++; zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; zone.classList.remove("dragging"); } });
  zone.addEventListener("dragover", (event) => event.preventDefault());
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  });
  // A file dropped just outside the zone would otherwise make the browser navigate to it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  $("#transcribe-btn").addEventListener("click", startQueued);
  $("#download-all").addEventListener("click", downloadAll);
  $("#clear-results").addEventListener("click", clearResults);
  updateFilesSummary();
}

// ───────────────────────────── microphone support ─────────────────────────────

// Browsers only offer the microphone to secure pages: https, or http on localhost.
function microphoneProblem() {
  if (!window.isSecureContext) {
    return "The microphone needs a secure page: open this over https, or as http://localhost " +
      "(or allow this address under chrome://flags/#unsafely-treat-insecure-origin-as-secure).";
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This browser cannot capture audio (no navigator.mediaDevices.getUserMedia).";
  }
  return null;
}

function describeMediaError(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "microphone permission was refused";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "no microphone found";
  if (name === "NotReadableError") return "the microphone is in use by another program";
  return String((error && error.message) || error);
}

// ───────────────────────────── record ─────────────────────────────

// MediaRecorder formats, best first, with the file extension the server will recognise.
const RECORDING_TYPES = [
  ["audio/webm;codecs=opus", "webm"],
  ["audio/ogg;codecs=opus", "ogg"],
  ["audio/webm", "webm"],
  ["audio/ogg", "ogg"],
  ["audio/mp4", "m4a"],
];

const recorder = { media: null, stream: null, chunks: [], startedAt: 0, timer: null, meter: null, audioUrl: null };

function recordingExtension(mimeType) {
  const base = (mimeType || "").split(";")[0];
  const match = RECORDING_TYPES.find(([type]) => type.split(";")[0] === base);
  return match ? match[1] : "webm";
}

async function startRecording() {
  const problem = microphoneProblem() || (window.MediaRecorder ? null : "This browser has no MediaRecorder.");
  if (problem) {
    setRecordStatus(problem, true);
    return;
  }
  try {
    // Nothing plays while recording, so there is no echo to cancel; and noise suppression's
    // artefacts cost recognisers more than the noise does. Gain control stays on for quiet mics.
    recorder.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: true, channelCount: 1 },
    });
  } catch (error) {
    setRecordStatus(`Cannot record: ${describeMediaError(error)}.`, true);
    return;
  }
  const supported = RECORDING_TYPES.find(([type]) => MediaRecorder.isTypeSupported(type));
  recorder.media = new MediaRecorder(recorder.stream, supported ? { mimeType: supported[0] } : {});
  recorder.chunks = [];
  recorder.media.addEventListener("dataavailable", (event) => { if (event.data.size) recorder.chunks.push(event.data); });
  recorder.media.addEventListener("stop", finishRecording);
  recorder.media.start(250); // timeslices keep the data if the tab is closed mid-recording
  recorder.startedAt = performance.now();
  recorder.timer = setInterval(tickRecording, 100);
  try {
    recorder.meter = levelMeter(recorder.stream, $("#record-level"));
  } catch (_) {
    recorder.meter = null; // the meter is a nicety; recording works without it
  }
  const button = $("#record-btn");
  button.textContent = "■ Stop recording";
  button.setAttribute("aria-pressed", "true");
  button.classList.add("recording");
  document.body.dataset.recording = "true";
  setRecordStatus("Recording… speak now.");
}

function tickRecording() {
  const seconds = (performance.now() - recorder.startedAt) / 1000;
  $("#record-time").textContent = formatDuration(seconds);
  // Stop at the server's limit rather than record something it will refuse.
  if (limits.maxAudioS && seconds >= limits.maxAudioS) stopRecording();
}

function stopRecording() {
  if (!recorder.media || recorder.media.state === "inactive") return;
  recorder.media.stop();
  clearInterval(recorder.timer);
  recorder.stream.getTracks().forEach((track) => track.stop());
  if (recorder.meter) recorder.meter.close();
  const button = $("#record-btn");
  button.textContent = "● Start recording";
  button.setAttribute("aria-pressed", "false");
  button.classList.remove("recording");
  document.body.dataset.recording = "false";
}

async function finishRecording() {
  const type = recorder.media.mimeType || (recorder.chunks[0] && recorder.chunks[0].type) || "audio/webm";
  const blob = new Blob(recorder.chunks, { type });
  const file = new File([blob], `recording.${recordingExtension(type)}`, { type });
  if (recorder.audioUrl) URL.revokeObjectURL(recorder.audioUrl);
  recorder.audioUrl = URL.createObjectURL(blob);
  const audio = $("#record-audio");
  audio.src = recorder.audioUrl;
  audio.hidden = false;

  setRecordStatus(`Transcribing ${file.name} (${formatBytes(file.size)})…`);
  $("#record-text").textContent = "";
  const response = await postTranscription(file, {
    response_format: "verbose_json",
    prompt: hotwordsFrom($("#record-hotwords")),
  });
  if (response.status !== 200) {
    setRecordStatus(errorMessage(response.status, response.body, response.statusText), true);
    return;
  }
  const result = JSON.parse(response.body);
  $("#record-text").textContent = result.text || "";
  setRecordStatus(result.text ? `Done: ${formatDuration(result.duration)} of audio.` : "No speech recognised.");
}

function setRecordStatus(message, isError = false) {
  const status = $("#record-status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// An input level meter: without one, a muted or wrong microphone only shows up as an empty
// transcript.
function levelMeter(stream, meterElement) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let frame = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
    meterElement.value = peak;
    frame = requestAnimationFrame(tick);
  };
  tick();
  return {
    close() {
      cancelAnimationFrame(frame);
      meterElement.value = 0;
      context.close();
    },
  };
}

function setUpRecord() {
  const problem = microphoneProblem();
  if (problem) {
    $("#record-support").textContent = problem;
    $("#record-support").hidden = false;
  }
  $("#record-btn").addEventListener("click", () => {
    if (recorder.media && recorder.media.state === "recording") stopRecording();
    else startRecording();
  });
}

// ───────────────────────────── live session: events feed ─────────────────────────────

const STATE_LABELS = {
  idle: "Idle",
  listening: "Listening",
  user_speaking: "User speaking",
  transcribing: "Transcribing",
  thinking: "Thinking",
  speaking: "Speaking",
};

const live = {
  socket: null,
  backoffMs: 500,
  reconnectTimer: null,
  sessionSeq: 0, // turn numbers restart with each session, so lines are keyed by session too
  turns: [], // {key, turn, outcome, timings} in arrival order, for the chart
  running: false,
};

function connectEvents() {
  clearTimeout(live.reconnectTimer);
  setFeedStatus("connecting", "connecting…");
  const socket = new WebSocket(wsUrl("/v1/session/events"));
  live.socket = socket;
  socket.addEventListener("open", () => {
    live.backoffMs = 500;
    setFeedStatus("connected", "connected");
  });
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (_) {
      return;
    }
    handleEvent(event);
  });
  socket.addEventListener("close", () => {
    if (live.socket !== socket) return;
    // Exponential backoff with jitter: a restarted server is not hammered by every open page.
    const delay = live.backoffMs * (0.8 + Math.random() * 0.4);
    live.backoffMs = Math.min(live.backoffMs * 2, 10_000);
    setFeedStatus("reconnecting", `reconnecting in ${Math.ceil(delay / 1000)} s`);
    live.reconnectTimer = setTimeout(connectEvents, delay);
  });
}

function setFeedStatus(status, text) {
  const node = $("#ws-status");
  node.dataset.status = status;
  node.textContent = text;
  document.body.dataset.eventsConnected = String(status === "connected");
}

function handleEvent(event) {
  switch (event.type) {
    case "snapshot": return applySnapshot(event);
    case "session": return onSessionEvent(event);
    case "state": return setLoopState(event.state);
    case "user": return onUserEvent(event);
    case "turn": return onTurnEvent(event);
    case "error": return onErrorEvent(event);
    case "note": return addLine("system", event.message || "");
    default: return undefined; // newer servers may send more; ignore what we don't know
  }
}

// The snapshot is the server's recent history: the view is rebuilt from it so a reconnect
// neither loses nor duplicates lines.
function applySnapshot(snapshot) {
  resetLiveView();
  for (const event of snapshot.events || []) handleEvent(event);
  applyStatus(snapshot.session || {});
}

function applyStatus(status) {
  live.running = !!status.running;
  setLoopState(status.running ? status.state : null);
  $("#session-source").textContent = status.running ? (status.source || "running") : "none";
  updateSessionButtons();
}

function onSessionEvent(event) {
  if (event.status === "started") {
    live.sessionSeq++;
    live.running = true;
    addLine("system", `Session started (${event.source || "?"})${event.detail ? ": " + event.detail : ""}`);
    $("#session-source").textContent = event.source || "running";
  } else if (event.status === "ended") {
    live.running = false;
    addLine("system", `Session ended${event.detail ? ": " + event.detail : ""}`);
    $("#session-source").textContent = "none";
    setLoopState(null);
  }
  updateSessionButtons();
}

function setLoopState(state) {
  const badge = $("#live-state");
  const key = state && STATE_LABELS[state] ? state : "idle";
  badge.dataset.state = key;
  badge.textContent = STATE_LABELS[key];
  document.body.dataset.liveState = key;
}

function turnKey(turn) {
  return `${live.sessionSeq}:${turn}`;
}

function onUserEvent(event) {
  const key = turnKey(event.turn);
  const existing = document.querySelector(`#transcript .line.user[data-key="${CSS.escape(key)}"]`);
  if (existing) $(".line-text", existing).textContent = event.text;
  else addLine("user", event.text, { key, turn: event.turn });
}

function onTurnEvent(event) {
  const key = turnKey(event.turn);
  // The user line is normally there already (from the `user` event); a `turn` without one
  // (e.g. from a snapshot cut at its start) still shows both sides.
  const userLine = document.querySelector(`#transcript .line.user[data-key="${CSS.escape(key)}"]`);
  if (userLine && event.user) $(".line-text", userLine).textContent = event.user;
  else if (!userLine && event.user) addLine("user", event.user, { key, turn: event.turn });

  // `interrupted` may come as its own flag as well as the outcome; either marks the reply.
  const outcome = event.interrupted && (event.outcome || "answered") === "answered" ? "interrupted" : event.outcome || "answered";
  if (outcome === "no_speech") {
    addLine("system", "Heard noise, no speech.", { key, turn: event.turn, outcome });
  } else if (outcome === "merged") {
    addLine("system", "Merged with the next utterance.", { key, turn: event.turn, outcome });
  } else if (event.reply || outcome !== "answered") {
    // A turn with no user words is the assistant's greeting (cut short when the user spoke).
    const text = event.reply || (outcome === "interrupted" ? "(cut off before any words were heard)" : "(no reply)");
    addLine("assistant", text, { key, turn: event.turn, outcome, greeting: !event.user, placeholder: !event.reply });
  }
  // Only replies to something the user said have a voice-to-voice latency worth charting.
  if (event.user) recordTurnTimings(key, { ...event, outcome });
}

function onErrorEvent(event) {
  addLine("error", event.message || "error");
  showLiveError(event.message || "error");
}

function addLine(kind, text, { key, turn, outcome, greeting = false, placeholder = false } = {}) {
  const transcript = $("#transcript");
  const who = { user: "User", assistant: greeting ? "Assistant · greeting" : "Assistant", system: "", error: "Error" }[kind];
  const line = el("li", { class: `line ${kind}${outcome && outcome !== "answered" ? " " + outcome : ""}`,
    dataset: { key: key || "", turn: turn ?? "", outcome: outcome || "" } });
  if (who) line.append(el("span", { class: "line-who", text: who }));
  line.append(el("span", { class: placeholder ? "line-text placeholder" : "line-text", text }));
  if (outcome === "interrupted") line.append(el("span", { class: "tag", text: "interrupted" }));
  if (outcome === "error") line.append(el("span", { class: "tag tag-error", text: "failed" }));
  // Follow the conversation only if the reader has not scrolled up to read something.
  const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
  transcript.append(line);
  // A kiosk runs for days: keep the page light.
  while (transcript.children.length > 400) transcript.firstElementChild.remove();
  transcript.dataset.lines = String(transcript.children.length);
  if (atBottom) transcript.scrollTop = transcript.scrollHeight;
}

function showLiveError(message) {
  const banner = $("#live-error");
  banner.textContent = message;
  banner.hidden = false;
  clearTimeout(showLiveError.timer);
  showLiveError.timer = setTimeout(() => { banner.hidden = true; }, 15_000);
}

function resetLiveView() {
  $("#transcript").replaceChildren();
  $("#transcript").dataset.lines = "0";
  live.turns = [];
  live.sessionSeq = 0;
  $("#turn-count").textContent = "0";
  $("#v2v-last").textContent = "–";
  drawChart();
}

function updateSessionButtons() {
  const talking = talk.socket !== null;
  $("#start-demo").disabled = live.running || talking;
  $("#stop-session").disabled = !live.running && !talking;
  $("#talk").disabled = live.running && !talking;
  document.body.dataset.sessionRunning = String(live.running);
}

async function startDemo() {
  $("#start-demo").disabled = true;
  try {
    const status = await fetchJson("/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ source: "demo" }),
    });
    if (status) applyStatus(status);
  } catch (error) {
    showLiveError(`Could not start the demo: ${error.message}`);
  } finally {
    updateSessionButtons();
  }
}

async function stopSession() {
  if (talk.socket) stopTalking(); // closing the talk socket is what ends a browser session
  try {
    const status = await fetchJson("/v1/session", { method: "DELETE" });
    if (status) applyStatus(status);
  } catch (error) {
    showLiveError(`Could not stop the session: ${error.message}`);
  }
}

// ───────────────────────────── live session: latency chart ─────────────────────────────

const CHART_PARTS = [
  ["endpoint", "End of speech", "--c-endpoint"],
  ["asr", "ASR", "--c-asr"],
  ["llm_ttft", "LLM first token", "--c-llm"],
  ["tts_first_audio", "TTS first audio", "--c-tts"],
];
const CHART_MAX_BARS = 24;

function recordTurnTimings(key, event) {
  const timings = event.timings_ms || {};
  const entry = { key, turn: event.turn, outcome: event.outcome, timings };
  const index = live.turns.findIndex((turn) => turn.key === key);
  if (index >= 0) live.turns[index] = entry;
  else live.turns.push(entry);
  $("#turn-count").textContent = String(live.turns.length);
  const v2v = timings.voice_to_voice;
  $("#v2v-last").textContent = Number.isFinite(v2v) ? `${Math.round(v2v)} ms` : "–";
  drawChart();
}

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// Round the axis maximum up to 1, 2 or 5 times a power of ten, so tick labels stay readable.
function niceCeiling(value) {
  if (value <= 0) return 100;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function drawChart() {
  const canvas = $("#latency-chart");
  const bars = live.turns.slice(-CHART_MAX_BARS);
  canvas.dataset.bars = String(bars.length);
  const last = bars[bars.length - 1];
  canvas.setAttribute("aria-label", last
    ? `Latency of the last ${bars.length} turns; last turn voice to voice ${Math.round(last.timings.voice_to_voice || 0)} ms`
    : "No turns yet");

  // Draw at the device's pixel density so text stays sharp on kiosk screens.
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return; // hidden panel: drawn again when shown
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const fontSize = Math.max(11, Math.min(16, height / 18));
  ctx.font = `${fontSize}px system-ui, sans-serif`;
  const text = cssColor("--fg-muted");
  const grid = cssColor("--grid");
  if (!bars.length) {
    ctx.fillStyle = text;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("No turns yet", width / 2, height / 2);
    return;
  }

  const value = (timings, key) => (Number.isFinite(timings[key]) && timings[key] > 0 ? timings[key] : 0);
  const stackOf = (bar) => CHART_PARTS.reduce((sum, [key]) => sum + value(bar.timings, key), 0);
  const top = niceCeiling(Math.max(...bars.map((bar) => Math.max(stackOf(bar), value(bar.timings, "voice_to_voice")))) * 1.1);

  const pad = { left: fontSize * 3.6, right: 8, top: fontSize * 1.8, bottom: fontSize * 2 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const y = (ms) => pad.top + plotH - (ms / top) * plotH;

  // Horizontal grid with millisecond labels.
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const ms = (top / 4) * i;
    ctx.strokeStyle = grid;
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(y(ms)) + 0.5);
    ctx.lineTo(width - pad.right, Math.round(y(ms)) + 0.5);
    ctx.stroke();
    ctx.fillStyle = text;
    ctx.fillText(String(Math.round(ms)), pad.left - 6, y(ms));
  }

  const slot = plotW / Math.max(bars.length, 6);
  const barW = Math.min(56, slot * 0.62);
  bars.forEach((bar, i) => {
    const x = pad.left + slot * i + (slot - barW) / 2;
    let base = 0;
    for (const [key, , color] of CHART_PARTS) {
      const ms = value(bar.timings, key);
      if (!ms) continue;
      ctx.fillStyle = cssColor(color);
      ctx.fillRect(x, y(base + ms), barW, y(base) - y(base + ms));
      base += ms;
    }
    if (bar.outcome === "interrupted" || bar.outcome === "error") {
      ctx.strokeStyle = cssColor(bar.outcome === "error" ? "--danger" : "--warn");
      ctx.lineWidth = 2;
      ctx.strokeRect(x - 1, y(base) - 1, barW + 2, y(0) - y(base) + 2);
      ctx.lineWidth = 1;
    }
    // voice_to_voice is the figure users feel: a tick at its height (the parts do not always
    // add up to it: the loop's own overhead, or parts the server could not measure) and its
    // value printed above.
    const v2v = bar.timings.voice_to_voice;
    ctx.fillStyle = cssColor("--fg");
    if (Number.isFinite(v2v) && v2v > 0) {
      ctx.fillRect(x - 3, Math.round(y(v2v)) - 1, barW + 6, 2);
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.fillText(String(Math.round(v2v)), x + barW / 2, y(Math.max(base, v2v)) - 4);
    }
    ctx.fillStyle = text;
    ctx.textBaseline = "top";
    ctx.fillText(`#${bar.turn}`, x + barW / 2, pad.top + plotH + 4);
  });
}

function renderLegend() {
  const legend = $("#latency-legend");
  for (const [, label, color] of CHART_PARTS) {
    legend.append(el("li", {}, el("span", { class: "swatch", style: `background: var(${color})` }), label));
  }
  legend.append(el("li", {}, el("span", { class: "swatch-tick" }), "voice to voice (ms, printed above)"));
}

// ───────────────────────────── live session: talk through the browser ─────────────────────────────

const TALK_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz
const JITTER_S = 0.08; // how far ahead playback starts, to absorb network jitter
const MAX_AHEAD_S = 0.6; // the most audio queued ahead of the speaker

// Runs on the audio thread: converts whatever rate the context runs at to 16 kHz Int16 and
// posts 20 ms frames. Loaded from a Blob URL so the page stays one script file.
const CAPTURE_WORKLET = `
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / ${TALK_RATE};
    this.position = 0; // read position in the current block; -1 < position means "last block's end"
    this.last = 0;
    this.frame = new Int16Array(${FRAME_SAMPLES});
    this.filled = 0;
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input || !input.length) return true;
    // Linear interpolation between neighbours; index -1 is the previous block's last sample.
    // With a 16 kHz context the step is 1 and this is a plain copy, one sample behind.
    while (this.position < input.length - 1) {
      const i = Math.floor(this.position);
      const f = this.position - i;
      const a = i < 0 ? this.last : input[i];
      const sample = a + (input[i + 1] - a) * f;
      const clipped = Math.max(-1, Math.min(1, sample));
      this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.frame.length) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(${FRAME_SAMPLES});
        this.filled = 0;
      }
      this.position += this.step;
    }
    this.position -= input.length;
    this.last = input[input.length - 1];
    return true;
  }
}
registerProcessor("voiceloop-capture", CaptureProcessor);
`;

const talk = {
  socket: null,
  stream: null,
  context: null,
  capture: null,
  sources: new Set(),
  playHead: 0,
  sent: 0,
  received: 0,
  voiced: 0, // received samples in chunks that are not silence: the server streams silence too
  flushes: 0,
};

function setTalkCounters() {
  const data = document.body.dataset;
  data.talkSentSamples = String(talk.sent);
  data.talkReceivedSamples = String(talk.received);
  data.talkReceivedVoicedSamples = String(talk.voiced);
  data.talkFlushes = String(talk.flushes);
  data.talking = String(talk.socket !== null);
}

async function startTalking() {
  const problem = microphoneProblem();
  if (problem) {
    showLiveError(problem);
    return;
  }
  const button = $("#talk");
  button.disabled = true;
  try {
    talk.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
  } catch (error) {
    button.disabled = false;
    showLiveError(`Cannot talk: ${describeMediaError(error)}.`);
    return;
  }
  talk.context = makeTalkContext();
  talk.playHead = 0;
  talk.refused = false;
  document.body.dataset.talkReady = "false";
  talk.sent = 0;
  talk.received = 0;
  talk.voiced = 0;
  talk.flushes = 0;
  talk.ready = false;

  const socket = new WebSocket(wsUrl("/v1/session/talk"));
  socket.binaryType = "arraybuffer";
  talk.socket = socket;
  socket.addEventListener("open", () => {
    socket.send(JSON.stringify({ type: "start", sample_rate: TALK_RATE }));
    // Mic audio sent before the server has started the session arrives there in one burst,
    // ahead of its clock; so wait for its "ready" (or a second, for servers that send none).
    setTimeout(() => { if (talk.socket === socket) talk.ready = true; }, 1000);
  });
  socket.addEventListener("message", (message) => onTalkMessage(message.data));
  socket.addEventListener("close", (event) => {
    if (talk.socket !== socket) return;
    if (event.code !== 1000 && event.code !== 1005 && event.reason && !talk.refused) showLiveError(`Talk ended: ${event.reason}`);
    stopTalking();
  });

  try {
    talk.capture = await startCapture(talk.context, talk.stream, sendFrame);
  } catch (error) {
    showLiveError(`Cannot capture audio: ${error.message || error}`);
    stopTalking();
    return;
  }
  button.textContent = "■ Stop talking";
  button.setAttribute("aria-pressed", "true");
  button.classList.add("recording");
  button.disabled = false;
  setTalkCounters();
  updateSessionButtons();
}

// A 16 kHz context makes the browser resample the mic and the reply for us. Some browsers
// refuse a rate different from the device's; the worklet then resamples instead.
function makeTalkContext() {
  try {
    return new AudioContext({ sampleRate: TALK_RATE, latencyHint: "interactive" });
  } catch (_) {
    return new AudioContext({ latencyHint: "interactive" });
  }
}

async function startCapture(context, stream, onFrame) {
  const source = context.createMediaStreamSource(stream);
  if (context.audioWorklet && window.AudioWorkletNode) {
    const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "application/javascript" }));
    try {
      await context.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const node = new AudioWorkletNode(context, "voiceloop-capture", { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1 });
    node.port.onmessage = (event) => onFrame(new Int16Array(event.data));
    source.connect(node);
    return { close() { source.disconnect(); node.port.onmessage = null; } };
  }
  return scriptProcessorCapture(context, source, onFrame);
}

// Fallback for browsers without AudioWorklet: runs on the main thread, so frames are larger.
function scriptProcessorCapture(context, source, onFrame) {
  const node = context.createScriptProcessor(2048, 1, 1);
  const step = context.sampleRate / TALK_RATE;
  let position = 0;
  node.onaudioprocess = (event) => {
    const input = event.inputBuffer.getChannelData(0);
    const out = [];
    for (; position < input.length; position += step) {
      const sample = Math.max(-1, Math.min(1, input[Math.floor(position)]));
      out.push(sample < 0 ? sample * 0x8000 : sample * 0x7fff);
    }
    position -= input.length;
    onFrame(Int16Array.from(out));
  };
  source.connect(node);
  // A ScriptProcessor only runs while connected to the destination; it outputs silence.
  node.connect(context.destination);
  return { close() { source.disconnect(); node.disconnect(); node.onaudioprocess = null; } };
}

function sendFrame(frame) {
  const socket = talk.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN || !talk.ready) return;
  // If the network stalls, drop mic audio rather than let it pile up and arrive late.
  if (socket.bufferedAmount > TALK_RATE * 2 * 2) return;
  socket.send(frame.buffer);
  talk.sent += frame.length;
  setTalkCounters();
}

function onTalkMessage(data) {
  if (data instanceof ArrayBuffer) {
    playPcm(new Int16Array(data));
    return;
  }
  let message;
  try {
    message = JSON.parse(data);
  } catch (_) {
    return;
  }
  if (message.type === "flush") flushPlayback({ interrupted: true });
  else if (message.type === "ready") {
    talk.ready = true;
    document.body.dataset.talkReady = "true";
  }
  else if (message.type === "error") {
    talk.refused = true; // the close that follows says the same again
    showLiveError(`Talk: ${message.message || "error"}`);
  }
}

// Schedules each chunk right after the previous one; after an underrun (nothing queued),
// restarts JITTER_S ahead so the next few chunks can arrive before they are needed.
function playPcm(samples) {
  const context = talk.context;
  if (!context || !samples.length) return;
  talk.received += samples.length;
  const buffer = context.createBuffer(1, samples.length, TALK_RATE);
  const channel = buffer.getChannelData(0);
  let peak = 0;
  for (let i = 0; i < samples.length; i++) {
    channel[i] = samples[i] / 32768;
    peak = Math.max(peak, Math.abs(samples[i]));
  }
  if (peak > 328) talk.voiced += samples.length; // louder than -40 dBFS
  setTalkCounters();
  const now = context.currentTime;
  if (talk.playHead < now + 0.01) talk.playHead = now + JITTER_S;
  // The server paces audio by our own mic clock, so the queue only grows after a network
  // stall delivers a burst; drop that backlog rather than answer ever later.
  if (talk.playHead - now > MAX_AHEAD_S) return;
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  source.start(talk.playHead);
  talk.playHead += buffer.duration;
  talk.sources.add(source);
  source.addEventListener("ended", () => talk.sources.delete(source));
}

// The user talked over the reply (or stopped talking): silence it now, including what is
// scheduled ahead.
function flushPlayback({ interrupted = false } = {}) {
  for (const source of talk.sources) {
    try {
      source.stop();
    } catch (_) { /* already stopped */ }
  }
  talk.sources.clear();
  talk.playHead = 0;
  if (interrupted) talk.flushes++;
  setTalkCounters();
}

function stopTalking() {
  const socket = talk.socket;
  talk.socket = null;
  if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, "user stopped talking");
  if (talk.capture) talk.capture.close();
  talk.capture = null;
  if (talk.stream) talk.stream.getTracks().forEach((track) => track.stop());
  talk.stream = null;
  flushPlayback();
  if (talk.context) talk.context.close();
  talk.context = null;
  const button = $("#talk");
  button.textContent = "Talk";
  button.setAttribute("aria-pressed", "false");
  button.classList.remove("recording");
  button.disabled = false;
  setTalkCounters();
  updateSessionButtons();
}

// ───────────────────────────── kiosk view ─────────────────────────────

// Kiosk: only the live view, in large type, for a screen seen from across a room. `?kiosk`
// in the address starts in it (for a browser started in kiosk mode); Escape leaves it.
function setKiosk(on) {
  document.body.classList.toggle("kiosk", on);
  $("#kiosk-toggle").setAttribute("aria-pressed", String(on));
  $("#kiosk-toggle").textContent = on ? "Exit kiosk view" : "Kiosk view";
  if (on) showTab("live");
  drawChart();
}

function setUpLive() {
  renderLegend();
  $("#start-demo").addEventListener("click", startDemo);
  $("#stop-session").addEventListener("click", stopSession);
  $("#talk").addEventListener("click", () => (talk.socket ? stopTalking() : startTalking()));
  $("#clear-transcript").addEventListener("click", () => {
    const seq = live.sessionSeq;
    resetLiveView();
    live.sessionSeq = seq; // keep keys unique: the running session's turns continue
  });
  $("#kiosk-toggle").addEventListener("click", () => setKiosk(!document.body.classList.contains("kiosk")));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("kiosk")) setKiosk(false);
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawChart, 100);
  });
  setTalkCounters();
  updateSessionButtons();
  connectEvents();
}

// ───────────────────────────── system info ─────────────────────────────

function humanKey(key) {
  const words = { mb: "MB", s: "s", ms: "ms", asr: "ASR", tts: "TTS", llm: "LLM", cuda: "CUDA", rss: "RSS", id: "ID" };
  return key.split("_").map((word, i) => words[word] || (i === 0 ? word[0].toUpperCase() + word.slice(1) : word)).join(" ");
}

function humanValue(key, value) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value) && !value.length) return "none";
  if (Array.isArray(value)) return value.map((item) => (typeof item === "object" ? JSON.stringify(item) : String(item))).join(", ");
  if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${humanKey(k)}: ${humanValue(k, v)}`).join("; ");
  if (typeof value === "number") {
    const rounded = Number.isInteger(value) ? value.toLocaleString("en") : value.toLocaleString("en", { maximumFractionDigits: 1 });
    if (key.endsWith("_mb")) return `${rounded} MB`;
    if (key.endsWith("_s")) return `${rounded} s`;
    return rounded;
  }
  return String(value);
}

// rows: [label, value, id?]; an id gives tests (and people reading the DOM) a stable handle.
function fillTable(table, rows) {
  table.replaceChildren(...rows.map(([label, value, id]) =>
    el("tr", {}, el("th", { scope: "row", text: label }), el("td", { id, text: value }))));
  if (!rows.length) table.append(el("tr", {}, el("td", { class: "hint", text: "nothing reported" })));
}

// The unit moves from the key to the value: "max_upload_mb: 50" reads "Max upload: 50 MB".
function objectRows(object) {
  return Object.entries(object || {}).map(([key, value]) => [humanKey(key.replace(/_(mb|s)$/, "")), humanValue(key, value)]);
}

function renderInfo(info, health) {
  fillTable($("#info-overview"), [
    ["Device", humanValue("device", info.device), "info-device"],
    ["voiceloop", humanValue("version", info.version), "info-version"],
    ["Python", humanValue("python", info.python)],
    ["Platform", humanValue("platform", info.platform)],
    ...(health ? [["Status", humanValue("status", health.status)], ["Uptime", formatSpan(health.uptime_s)]] : []),
  ]);
  const models = [];
  for (const part of ["asr", "tts", "llm"]) {
    for (const [key, value] of Object.entries(info[part] || {})) {
      models.push([`${part.toUpperCase()} ${humanKey(key).toLowerCase()}`, humanValue(key, value)]);
    }
  }
  fillTable($("#info-models"), models);

  const cuda = info.cuda || {};
  const cudaRows = [["Available", humanValue("available", cuda.available), "info-cuda-available"]];
  (cuda.devices || []).forEach((device, i) => {
    const used = device.memory_used_mb;
    const total = device.memory_total_mb;
    cudaRows.push([`GPU ${i}`, device.name || "?"]);
    if (total) cudaRows.push([`GPU ${i} memory`, `${humanValue("used_mb", used)} of ${humanValue("total_mb", total)} used`]);
    for (const [key, value] of Object.entries(device)) {
      if (!["name", "memory_used_mb", "memory_total_mb"].includes(key)) cudaRows.push([`GPU ${i} ${humanKey(key).toLowerCase()}`, humanValue(key, value)]);
    }
  });
  for (const [key, value] of Object.entries(cuda)) {
    if (!["available", "devices"].includes(key)) cudaRows.push([humanKey(key), humanValue(key, value)]);
  }
  fillTable($("#info-cuda"), cudaRows);
  fillTable($("#info-memory"), objectRows(info.memory));
  fillTable($("#info-limits"), objectRows(info.limits));
  fillTable($("#info-queue"), objectRows(info.queue));
  fillTable($("#info-versions"), Object.entries(info.versions || {}).map(([name, version]) => [name, version || "not installed"]));
}

// "7 s", "3 min 20 s", "10 min", "2 h 5 min", "3 d 4 h": for uptimes and limits.
function formatSpan(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.floor(seconds);
  const units = [[Math.floor(s / 86400), "d"], [Math.floor(s / 3600) % 24, "h"], [Math.floor(s / 60) % 60, "min"], [s % 60, "s"]];
  const first = units.findIndex(([value]) => value > 0);
  if (first < 0) return "0 s";
  return units.slice(first, first + 2).filter(([value]) => value > 0).map(([value, unit]) => `${value} ${unit}`).join(" ");
}

function applyLimits(info) {
  const limit = info.limits || {};
  limits.maxUploadMb = limit.max_upload_mb || null;
  limits.maxAudioS = limit.max_audio_s || null;
  limits.formats = limit.formats || null;
  const parts = [];
  if (limits.formats && limits.formats.length) parts.push(`Formats: ${limits.formats.join(", ")}`);
  if (limits.maxUploadMb) parts.push(`up to ${limits.maxUploadMb} MB`);
  if (limits.maxAudioS) parts.push(`${formatSpan(limits.maxAudioS)} of audio per file`);
  if (parts.length) $("#files-limits").textContent = `${parts.join(" · ")}.`;
}

let infoLoading = null;

function loadInfo() {
  // One request at a time: tab switches and the refresh button can overlap.
  if (infoLoading) return infoLoading;
  const updated = $("#info-updated");
  updated.textContent = "loading…";
  infoLoading = Promise.all([fetchJson("/info"), fetchJson("/health").catch(() => null)])
    .then(([info, health]) => {
      renderInfo(info, health);
      applyLimits(info);
      $("#info-error").hidden = true;
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
      document.body.dataset.infoLoaded = "true";
    })
    .catch((error) => {
      $("#info-error").textContent = `Could not load /info: ${error.message}`;
      $("#info-error").hidden = false;
      updated.textContent = "";
    })
    .finally(() => { infoLoading = null; });
  return infoLoading;
}

// ───────────────────────────── start ─────────────────────────────

function main() {
  forgetTokenInAddress();
  setUpTabs();
  setUpFiles();
  setUpRecord();
  setUpLive();
  $("#info-refresh").addEventListener("click", loadInfo);
  const params = new URLSearchParams(location.search);
  showTab(location.hash.slice(1) || "files");
  if (params.has("kiosk")) setKiosk(true);
  // Limits for the upload form; quietly, the info tab reports failures itself.
  fetchJson("/info").then(applyLimits).catch(() => {});
  checkHealth();
  setInterval(checkHealth, 15_000);
  document.body.dataset.ready = "true";
}

main();
