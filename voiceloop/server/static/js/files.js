// The "Transcribe files" tab: a queue of files uploaded two at a time, a row per file with
// its progress and transcript, and downloads as txt, SRT or JSON.

import { errorMessage, hotwordsFrom, postTranscription, worthRetrying } from "./api.js";
import { $, downloadBlob, el } from "./dom.js";
import { baseName, formatBytes, formatDuration, formatSpan } from "./format.js";
import { onLanguageChange, t } from "./i18n.js";
import { onLimitsChange, serverLimits } from "./limits.js";

const PARALLEL_UPLOADS = 2; // two at a time keeps the server's queue busy without flooding it
const MAX_BUSY_RETRIES = 3;
const jobs = []; // {id, file, status, progress, result, error, httpStatus, serverMs, run, startedAt, finishedAt, row, clientDuration}
let nextJobId = 1;
let activeUploads = 0;
let currentRun = 0; // each press of Transcribe while nothing runs starts a run: throughput is per run

function tooBig(file) {
  const { maxUploadMb } = serverLimits();
  return !!(maxUploadMb && file.size > maxUploadMb * 1024 * 1024);
}

function addFiles(fileList) {
  for (const file of fileList) {
    const job = { id: nextJobId++, file, status: "queued", result: null, error: null, retries: 0 };
    if (tooBig(file)) {
      job.status = "error";
      job.error = t("files.tooBig", { size: formatBytes(file.size), mb: serverLimits().maxUploadMb });
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
    el("td", { class: "col-time num" }),
    el("td", { class: "col-text" }),
    el("td", { class: "col-download" },
      el("button", { type: "button", class: "dl-txt small", text: "txt", "aria-label": `Download ${job.file.name} as text`, onclick: () => downloadJob(job, "txt") }),
      el("button", { type: "button", class: "dl-srt small", text: "srt", "aria-label": `Download ${job.file.name} as SRT subtitles`, onclick: () => downloadJob(job, "srt") }),
      el("button", { type: "button", class: "dl-json small", text: "json", "aria-label": `Download ${job.file.name} as JSON`, onclick: () => downloadJob(job, "json") }),
      el("button", { type: "button", class: "retry small", text: t("files.retry"), "aria-label": `Retry ${job.file.name}`, onclick: () => retryJob(job) })),
  );
  updateJobRow(job, row);
  return row;
}


function updateJobRow(job, row = job.row) {
  row.dataset.status = job.status;
  const duration = job.result ? job.result.duration : job.clientDuration;
  $(".col-duration", row).textContent = formatDuration(duration);

  const status = $(".col-status", row);
  status.replaceChildren(el("span", { class: `status-pill status-${job.status}`, text: t(`files.status.${job.status}`) }));
  if (job.status === "uploading") {
    const percent = Math.round((job.progress || 0) * 100);
    status.append(el("progress", { max: "100", value: String(percent), "aria-label": `Upload of ${job.file.name}` }),
      el("span", { class: "hint", text: ` ${percent}%` }));
  } else if (job.status === "waiting" && job.waitS) {
    status.append(el("span", { class: "hint", text: t("files.retryIn", { s: job.waitS }) }));
  }

  renderTiming(job, $(".col-time", row));

  const text = $(".col-text", row);
  if (job.status === "error") {
    text.replaceChildren(el("span", { class: "row-error", role: "alert", text: job.error }));
  } else if (job.result) {
    text.replaceChildren(job.result.text
      ? el("span", { class: "row-text", text: job.result.text })
      : el("span", { class: "hint", text: t("files.noSpeech") }));
  } else {
    text.replaceChildren();
  }
  const finished = job.status === "done";
  for (const button of row.querySelectorAll(".dl-txt, .dl-srt, .dl-json")) button.disabled = !finished;
  $(".retry", row).hidden = job.status !== "error" || !job.retryable;
  $(".retry", row).textContent = t("files.retry");
}

// The server's time for the file (Server-Timing), its real-time factor (that time over the
// audio's length: below 1 is faster than real time) and, where the recogniser reports one, its
// confidence.
function renderTiming(job, cell) {
  cell.replaceChildren();
  delete cell.dataset.rtf;
  delete cell.dataset.confidence;
  if (job.status !== "done" || !job.result) return;
  const seconds = Number.isFinite(job.serverMs) ? job.serverMs / 1000 : null;
  const duration = job.result.duration;
  if (seconds !== null) {
    cell.append(el("span", { class: "proc-time", text: `${seconds.toFixed(2)} s` }));
    if (duration > 0) {
      const rtf = seconds / duration;
      cell.dataset.rtf = rtf.toFixed(3);
      cell.append(el("span", { class: "hint rtf", title: t("files.rtfTitle"), text: `RTF ${rtf.toFixed(2)}` }));
    }
  }
  const confidence = job.result.confidence;
  if (Number.isFinite(confidence)) {
    cell.dataset.confidence = String(confidence);
    cell.append(el("span", { class: "hint confidence", title: t("files.confidenceTitle"), text: t("files.confidence", { percent: Math.round(confidence * 100) }) }));
  }
}

// The latest run's throughput: seconds of audio transcribed per second of wall-clock time,
// from its first upload's start to its last answer (uploads run in parallel, so this is not
// the sum of the rows' times).
function updateThroughput() {
  const node = $("#files-throughput");
  const done = jobs.filter((job) => job.run === currentRun && job.status === "done" && job.result);
  const audioS = done.reduce((sum, job) => sum + (Number(job.result.duration) || 0), 0);
  const wallS = done.length ? (Math.max(...done.map((job) => job.finishedAt)) - Math.min(...done.map((job) => job.startedAt))) / 1000 : 0;
  if (!done.length || !(wallS > 0) || !(audioS > 0)) {
    node.textContent = "";
    delete node.dataset.speed;
    return;
  }
  const speed = audioS / wallS;
  node.dataset.speed = speed.toFixed(3);
  node.textContent = t("files.throughput", { n: done.length, audio: audioS.toFixed(1), wall: wallS.toFixed(1), speed: speed.toFixed(1) });
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
  $("#transcribe-btn").textContent = queued > 1 ? t("files.transcribeN", { n: queued }) : t("files.transcribe");
  $("#download-all").disabled = done === 0;
  $("#clear-results").disabled = jobs.length === 0 || activeUploads > 0;
  const busy = jobs.length - queued - done - errors;
  const parts = [];
  if (queued) parts.push(t("files.summary.queued", { n: queued }));
  if (busy) parts.push(t("files.summary.busy", { n: busy }));
  if (done) parts.push(t("files.summary.done", { n: done }));
  if (errors) parts.push(t("files.summary.failed", { n: errors }));
  $("#files-summary").textContent = parts.join(" · ");
  updateThroughput();
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
  if (!jobs.some((job) => ["uploading", "transcribing", "waiting"].includes(job.status) || (job.status === "queued" && job.started))) currentRun++;
  for (const job of jobs) {
    if (job.status === "queued" && !job.started) Object.assign(job, { started: true, prompt, run: currentRun });
  }
  pumpQueue();
}

function retryJob(job) {
  setJob(job, { status: "queued", error: null, started: true, retries: 0, run: currentRun });
  pumpQueue();
}

async function uploadJob(job) {
  if (!job.retries) job.startedAt = performance.now();
  setJob(job, { status: "uploading", progress: 0 });
  const response = await postTranscription(job.file, { response_format: "verbose_json", prompt: job.prompt },
    (fraction, uploaded) => {
      if (uploaded) setJob(job, { status: "transcribing" });
      else if (job.status === "uploading") setJob(job, { progress: fraction });
    });
  job.finishedAt = performance.now();
  job.httpStatus = response.status;
  job.serverMs = response.serverMs;
  if (response.status === 200) {
    try {
      setJob(job, { status: "done", result: JSON.parse(response.body) });
    } catch (_) {
      setJob(job, { status: "error", retryable: false, error: t("files.notJson") });
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
  setJob(job, { status: "error", retryable: worthRetrying(response.status), error: errorMessage(response.status, response.body, response.statusText) });
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

// What the server accepts, under the drop zone (once /info has said).
function showLimits(limits) {
  const parts = [];
  if (limits.formats && limits.formats.length) parts.push(t("files.limits.formats", { formats: limits.formats.join(", ") }));
  if (limits.maxUploadMb) parts.push(t("files.limits.size", { mb: limits.maxUploadMb }));
  if (limits.maxAudioS) parts.push(t("files.limits.length", { span: formatSpan(limits.maxAudioS) }));
  if (parts.length) $("#files-limits").textContent = `${parts.join(" · ")}.`;
}

export function setUpFiles() {
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
  onLimitsChange(showLimits);
  onLanguageChange(() => {
    showLimits(serverLimits());
    for (const job of jobs) updateJobRow(job);
    updateFilesSummary();
  });
  updateFilesSummary();
}
