// The live tab's chart: one stacked bar per turn (end of speech, ASR, LLM first token, TTS
// first audio) with the voice-to-voice figure marked and printed above it. Drawing only: the
// live tab keeps the turns and passes them in.

import { el } from "./dom.js";

export const CHART_PARTS = [
  ["endpoint", "End of speech", "--c-endpoint"],
  ["asr", "ASR", "--c-asr"],
  ["llm_ttft", "LLM first token", "--c-llm"],
  ["tts_first_audio", "TTS first audio", "--c-tts"],
];
const CHART_MAX_BARS = 24;
// A stage that took any time at all stays visible however short it is beside the others.
const MIN_PART_PX = 3;

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

// turns: [{turn, outcome, timings}] oldest first; the last CHART_MAX_BARS are drawn.
export function drawLatencyChart(canvas, turns, emptyText = "No turns yet") {
  const bars = turns.slice(-CHART_MAX_BARS);
  canvas.dataset.bars = String(bars.length);
  const last = bars[bars.length - 1];
  canvas.setAttribute("aria-label", last
    ? `Latency of the last ${bars.length} turns; last turn voice to voice ${Math.round(last.timings.voice_to_voice || 0)} ms`
    : emptyText);

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
    ctx.fillText(emptyText, width / 2, height / 2);
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
    let topPx = y(0); // where the stack drawn so far ends
    for (const [key, , color] of CHART_PARTS) {
      const ms = value(bar.timings, key);
      if (!ms) continue;
      const heightPx = Math.max(MIN_PART_PX, y(base) - y(base + ms));
      ctx.fillStyle = cssColor(color);
      ctx.fillRect(x, topPx - heightPx, barW, heightPx);
      topPx -= heightPx;
      base += ms;
    }
    if (bar.outcome === "interrupted" || bar.outcome === "error") {
      ctx.strokeStyle = cssColor(bar.outcome === "error" ? "--danger" : "--warn");
      ctx.lineWidth = 2;
      ctx.strokeRect(x - 1, topPx - 1, barW + 2, y(0) - topPx + 2);
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

// label(key) names a stage in the page's language; tick describes the voice-to-voice mark.
export function renderLegend(legend, label = null, tick = "voice to voice (ms, printed above)") {
  legend.replaceChildren();
  for (const [key, english, color] of CHART_PARTS) {
    legend.append(el("li", {}, el("span", { class: "swatch", style: `background: var(${color})` }), label ? label(key) : english));
  }
  legend.append(el("li", {}, el("span", { class: "swatch-tick" }), tick));
}
