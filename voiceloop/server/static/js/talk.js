// Talking to the loop through this browser (WebSocket /v1/session/talk, see
// voiceloop/server/talk.py): the mic goes up as 16 kHz Int16 chunks, the assistant's voice
// comes back the same way and plays at once; {"type": "flush"} means the user talked over
// it. The counters on <body data-talk-…> let people and tests see that audio really flows.

import { t } from "./i18n.js";
import { wsUrl } from "./api.js";
import {
  PcmPlayer,
  TALK_RATE,
  describeMediaError,
  makeTalkContext,
  microphoneProblem,
  startCapture,
} from "./audio.js";
import { $ } from "./dom.js";

const talk = {
  socket: null,
  stream: null,
  context: null,
  player: null,
  capture: null,
  ready: false, // the server has started the session: mic audio may go
  refused: false,
  sent: 0,
  received: 0,
  voiced: 0, // received samples in chunks that are not silence: the server streams silence too
  flushes: 0,
};
let hooks = { onError: () => {}, onChange: () => {} };

// onError(message): for the live tab's banner; onChange(): talking started or stopped.
export function setUpTalk({ onError, onChange }) {
  hooks = { onError, onChange };
  setTalkCounters();
}

export function isTalking() {
  return talk.socket !== null;
}

function setTalkCounters() {
  const data = document.body.dataset;
  data.talkSentSamples = String(talk.sent);
  data.talkReceivedSamples = String(talk.received);
  data.talkReceivedVoicedSamples = String(talk.voiced);
  data.talkFlushes = String(talk.flushes);
  data.talking = String(talk.socket !== null);
}

export async function startTalking() {
  const problem = microphoneProblem();
  if (problem) {
    hooks.onError(problem);
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
    hooks.onError(`Cannot talk: ${describeMediaError(error)}.`);
    return;
  }
  talk.context = makeTalkContext();
  talk.player = new PcmPlayer(talk.context);
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
    if (event.code !== 1000 && event.code !== 1005 && event.reason && !talk.refused) hooks.onError(`Talk ended: ${event.reason}`);
    stopTalking();
  });

  try {
    talk.capture = await startCapture(talk.context, talk.stream, sendChunk);
  } catch (error) {
    hooks.onError(`Cannot capture audio: ${error.message || error}`);
    stopTalking();
    return;
  }
  button.textContent = t("live.stopTalking");
  button.setAttribute("aria-pressed", "true");
  button.classList.add("recording");
  button.disabled = false;
  setTalkCounters();
  hooks.onChange();
}

function sendChunk(chunk) {
  const socket = talk.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN || !talk.ready) return;
  // If the network stalls, drop mic audio rather than let it pile up and arrive late.
  if (socket.bufferedAmount > TALK_RATE * 2 * 2) return;
  socket.send(chunk.buffer);
  talk.sent += chunk.length;
  setTalkCounters();
}

function onTalkMessage(data) {
  if (data instanceof ArrayBuffer) {
    playReply(new Int16Array(data));
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
    hooks.onError(`Talk: ${message.message || "error"}`);
  }
}

function playReply(samples) {
  if (!talk.player || !samples.length) return;
  talk.received += samples.length;
  let peak = 0;
  for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
  if (peak > 328) talk.voiced += samples.length; // louder than -40 dBFS
  setTalkCounters();
  talk.player.play(samples);
}

// The user talked over the reply (or stopped talking): silence it now, including what is
// scheduled ahead.
function flushPlayback({ interrupted = false } = {}) {
  if (talk.player) talk.player.flush();
  if (interrupted) talk.flushes++;
  setTalkCounters();
}

export function stopTalking() {
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
  talk.player = null;
  const button = $("#talk");
  button.textContent = t("live.talk");
  button.setAttribute("aria-pressed", "false");
  button.classList.remove("recording");
  button.disabled = false;
  setTalkCounters();
  hooks.onChange();
}
