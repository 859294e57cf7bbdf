// The "Record" tab: record from the microphone with MediaRecorder, then transcribe the
// recording like an uploaded file.

import { errorMessage, hotwordsFrom, postTranscription } from "./api.js";
import { describeMediaError, levelMeter, microphoneProblem } from "./audio.js";
import { $ } from "./dom.js";
import { formatBytes, formatDuration } from "./format.js";
import { onLanguageChange, t } from "./i18n.js";
import { serverLimits } from "./limits.js";

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
  button.textContent = t("record.stop");
  button.setAttribute("aria-pressed", "true");
  button.classList.add("recording");
  document.body.dataset.recording = "true";
  setRecordStatus(t("record.recording"));
}

function tickRecording() {
  const seconds = (performance.now() - recorder.startedAt) / 1000;
  $("#record-time").textContent = formatDuration(seconds);
  // Stop at the server's limit rather than record something it will refuse.
  const { maxAudioS } = serverLimits();
  if (maxAudioS && seconds >= maxAudioS) stopRecording();
}

function stopRecording() {
  if (!recorder.media || recorder.media.state === "inactive") return;
  recorder.media.stop();
  clearInterval(recorder.timer);
  recorder.stream.getTracks().forEach((track) => track.stop());
  if (recorder.meter) recorder.meter.close();
  const button = $("#record-btn");
  button.textContent = t("record.start");
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

  setRecordStatus(t("record.sending", { name: file.name, size: formatBytes(file.size) }));
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
  setRecordStatus(result.text ? t("record.done", { duration: formatDuration(result.duration) }) : t("record.noSpeech"));
}

function setRecordStatus(message, isError = false) {
  const status = $("#record-status");
  status.textContent = message;
  status.dataset.used = "true";
  status.classList.toggle("error", isError);
}

export function setUpRecord() {
  const problem = microphoneProblem();
  if (problem) {
    $("#record-support").textContent = problem;
    $("#record-support").hidden = false;
  }
  const label = () => {
    const button = $("#record-btn");
    button.textContent = t(button.getAttribute("aria-pressed") === "true" ? "record.stop" : "record.start");
    // Until something happened, the status line is the invitation, in the page's language.
    const status = $("#record-status");
    if (!status.dataset.used) status.textContent = t("record.ready");
  };
  label();
  onLanguageChange(label);
  $("#record-btn").addEventListener("click", () => {
    if (recorder.media && recorder.media.state === "recording") stopRecording();
    else startRecording();
  });
}
