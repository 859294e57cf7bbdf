// The "Live session" tab: the conversation the server runs (a demo room, the machine's own
// devices, or this browser talking), followed over the events feed: the loop's state, each
// side's words, a latency chart per turn, and the buttons that start and stop it. Also the
// kiosk view: only this tab, in large type.

import { fetchJson } from "./api.js";
import { $, el } from "./dom.js";
import { connectEventsFeed } from "./events-feed.js";
import { onLanguageChange, t } from "./i18n.js";
import { drawLatencyChart, renderLegend } from "./latency-chart.js";
import { renderLatencyTable } from "./latency-table.js";
import { showTab } from "./tabs.js";
import { isTalking, setUpTalk, startTalking, stopTalking } from "./talk.js";

const STATES = ["idle", "listening", "user_speaking", "transcribing", "thinking", "speaking"];

const live = {
  sessionSeq: 0, // turn numbers restart with each session, so lines are keyed by session too
  turns: [], // {key, turn, outcome, timings} in arrival order, for the chart
  running: false,
};
let errorTimer = null;

export function redrawChart() {
  drawLatencyChart($("#latency-chart"), live.turns, t("chart.empty"));
  renderLatencyTable($("#latency-table"), live.turns, (key) => t(`stage.${key}`));
}

// status: "connecting", "connected" or "reconnecting" (then with the seconds until it tries).
function setFeedStatus(status, seconds) {
  const node = $("#ws-status");
  node.dataset.status = status;
  node.dataset.seconds = seconds ?? "";
  node.textContent = t(`feed.${status}`, { s: seconds });
  document.body.dataset.eventsConnected = String(status === "connected");
}

// One branch per event kind of voiceloop/server/events.py.
function handleEvent(event) {
  switch (event.type) {
    case "snapshot": return applySnapshot(event);
    case "session": return onSessionEvent(event);
    case "state": return setLoopState(event.state);
    case "partial": return onPartialEvent(event);
    case "user": return onUserEvent(event);
    case "detector": return onDetectorEvent(event);
    case "turn": return onTurnEvent(event);
    case "error": return onErrorEvent(event);
    case "note": return addLine("system", event.message || "");
    case "attention": return onAttention(event);
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
  showSource(status.running ? status.source || "running" : null);
  updateSessionButtons();
}

function onSessionEvent(event) {
  if (event.status === "started") {
    // A new conversation starts a new view: its turns count from #1 again, and drawn after
    // the last session's they would read as one conversation of both.
    const seq = live.sessionSeq;
    resetLiveView();
    live.sessionSeq = seq + 1;
    live.running = true;
    addLine("system", `${t("line.started", { source: event.source || "?" })}${event.detail ? ": " + event.detail : ""}`);
    showSource(event.source || "running");
  } else if (event.status === "ended") {
    live.running = false;
    addLine("system", `${t("line.ended")}${event.detail ? ": " + event.detail : ""}`);
    showSource(null);
    setLoopState(null);
  }
  updateSessionButtons();
}

// The source's name ("demo", "devices", "browser") is the API's word and stays as it is.
function showSource(source) {
  const node = $("#session-source");
  node.dataset.source = source || "";
  node.textContent = source === "running" ? t("live.running") : source || t("live.none");
}

function setLoopState(state) {
  const badge = $("#live-state");
  const key = state && STATES.includes(state) ? state : "idle";
  badge.dataset.state = key;
  badge.textContent = t(`state.${key}`);
  document.body.dataset.liveState = key;
}

// The turn detector's verdict on a pause: "incomplete" means the loop is still listening.
function onDetectorEvent(event) {
  const badge = $("#live-state");
  if (event.complete || !["user_speaking", "listening"].includes(badge.dataset.state)) return;
  badge.textContent = t("state.incomplete", { p: event.probability.toFixed(2) });
}

function turnKey(turn) {
  return `${live.sessionSeq}:${turn}`;
}

// Live text while the user speaks (asr.streaming): one provisional line per utterance, removed
// when the recogniser's final words arrive (they, not the partials, are the turn's text).
function onPartialEvent(event) {
  const key = `${live.sessionSeq}:partial:${event.utterance}`;
  const existing = document.querySelector(`#transcript .line.partial[data-key="${CSS.escape(key)}"]`);
  if (existing) $(".line-text", existing).textContent = `${event.text}…`;
  else addLine("user partial", `${event.text}…`, { key });
}

function onUserEvent(event) {
  for (const line of document.querySelectorAll("#transcript .line.partial")) line.remove();
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
    addLine("system", t("line.noise"), { key, turn: event.turn, outcome });
  } else if (outcome === "merged") {
    addLine("system", t("line.merged"), { key, turn: event.turn, outcome });
  } else if (event.reply || outcome !== "answered") {
    // A turn with no user words is the assistant's greeting (cut short when the user spoke).
    const text = event.reply || (outcome === "interrupted" ? t("line.cutOff") : t("line.noReply"));
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
  const who = { user: t("who.user"), assistant: t(greeting ? "who.greeting" : "who.assistant"), system: "", error: t("who.error") }[kind.split(" ")[0]];
  const line = el("li", { class: `line ${kind}${outcome && outcome !== "answered" ? " " + outcome : ""}`,
    dataset: { key: key || "", turn: turn ?? "", outcome: outcome || "" } });
  if (who) line.append(el("span", { class: "line-who", text: who }));
  line.append(el("span", { class: placeholder ? "line-text placeholder" : "line-text", text }));
  if (outcome === "interrupted") line.append(el("span", { class: "tag", text: t("tag.interrupted") }));
  if (outcome === "error") line.append(el("span", { class: "tag tag-error", text: t("tag.failed") }));
  // Follow the conversation only if the reader has not scrolled up to read something.
  const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
  transcript.append(line);
  // A kiosk runs for days: keep the page light.
  while (transcript.children.length > 400) transcript.firstElementChild.remove();
  transcript.dataset.lines = String(transcript.children.length);
  if (atBottom) transcript.scrollTop = transcript.scrollHeight;
}

function recordTurnTimings(key, event) {
  const timings = event.timings_ms || {};
  const entry = { key, turn: event.turn, outcome: event.outcome, timings };
  const index = live.turns.findIndex((turn) => turn.key === key);
  if (index >= 0) live.turns[index] = entry;
  else live.turns.push(entry);
  $("#turn-count").textContent = String(live.turns.length);
  const v2v = timings.voice_to_voice;
  $("#v2v-last").textContent = Number.isFinite(v2v) ? `${Math.round(v2v)} ms` : "–";
  redrawChart();
}

function showLiveError(message) {
  const banner = $("#live-error");
  banner.textContent = message;
  banner.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { banner.hidden = true; }, 15_000);
}

function resetLiveView() {
  $("#transcript").replaceChildren();
  $("#transcript").dataset.lines = "0";
  live.turns = [];
  live.sessionSeq = 0;
  $("#turn-count").textContent = "0";
  $("#v2v-last").textContent = "–";
  redrawChart();
}

function updateSessionButtons() {
  const talking = isTalking();
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
    showLiveError(t("live.startFailed", { message: error.message }));
  } finally {
    updateSessionButtons();
  }
}

async function stopSession() {
  if (isTalking()) stopTalking(); // closing the talk socket is what ends a browser session
  try {
    const status = await fetchJson("/v1/session", { method: "DELETE" });
    if (status) applyStatus(status);
  } catch (error) {
    showLiveError(t("live.stopFailed", { message: error.message }));
  }
}

// Kiosk mode (loop.wake): the button opens a turn without the wake word, and says whether
// the loop is asleep (only the word or the button wakes it) or awake.
async function pushToTalk() {
  try {
    await fetchJson("/v1/session/push-to-talk", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
  } catch (error) {
    showLiveError(`Push to talk: ${error.message}`);
  }
}

function onAttention(event) {
  const button = $("#push-to-talk");
  button.dataset.attention = event.state;
  button.textContent = event.state === "asleep" ? "Push to talk (asleep)" : "Push to talk (awake)";
}

// Kiosk: only the live view, in large type, for a screen seen from across a room. `?kiosk`
// in the address starts in it (for a browser started in kiosk mode); Escape leaves it.
export function setKiosk(on) {
  document.body.classList.toggle("kiosk", on);
  $("#kiosk-toggle").setAttribute("aria-pressed", String(on));
  $("#kiosk-toggle").textContent = t(on ? "live.exitKiosk" : "live.kiosk");
  if (on) showTab("live");
  redrawChart();
}

// The words already in the transcript stay as they were written; what is drawn from state is
// drawn again in the new language.
function relabel() {
  renderLegend($("#latency-legend"), (key) => t(`stage.${key}`), t("chart.tick"));
  setLoopState($("#live-state").dataset.state);
  showSource($("#session-source").dataset.source || null);
  const feed = $("#ws-status");
  setFeedStatus(feed.dataset.status, feed.dataset.seconds);
  $("#kiosk-toggle").textContent = t(document.body.classList.contains("kiosk") ? "live.exitKiosk" : "live.kiosk");
  $("#talk").textContent = t(isTalking() ? "live.stopTalking" : "live.talk");
  redrawChart();
}

export function setUpLive() {
  onLanguageChange(relabel);
  renderLegend($("#latency-legend"), (key) => t(`stage.${key}`), t("chart.tick"));
  $("#start-demo").addEventListener("click", startDemo);
  $("#stop-session").addEventListener("click", stopSession);
  $("#talk").addEventListener("click", () => (isTalking() ? stopTalking() : startTalking()));
  $("#push-to-talk").addEventListener("click", pushToTalk);
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
    resizeTimer = setTimeout(redrawChart, 100);
  });
  setUpTalk({ onError: showLiveError, onChange: updateSessionButtons });
  updateSessionButtons();
  connectEventsFeed({ onEvent: handleEvent, onStatus: setFeedStatus });
}
