// The live tab's per-turn latency figures, every stage of the feed's timings_ms as a number:
// the chart makes proportions visible, but a stage of 3 ms next to an end-of-speech wait of
// 700 ms is a sliver there; here it reads as "3".

import { el } from "./dom.js";
import { CHART_PARTS } from "./latency-chart.js";

const TABLE_MAX_ROWS = 12;
// [key, full name (the legend's), short column heading]: five columns fit a phone's width.
const SHORT = { endpoint: "End", asr: "ASR", llm_ttft: "LLM", tts_first_audio: "TTS", voice_to_voice: "V2V" };
const COLUMNS = [...CHART_PARTS.map(([key, label]) => [key, label]), ["voice_to_voice", "Voice to voice"]];

function ms(value) {
  return Number.isFinite(value) ? String(Math.round(value)) : "–";
}

// turns: [{turn, outcome, timings}] oldest first; the newest TABLE_MAX_ROWS are listed, newest on top.
export function renderLatencyTable(table, turns, label = (key, english) => english) {
  const head = el("tr", {}, el("th", { scope: "col", text: "#" }),
    ...COLUMNS.map(([key, english]) => el("th", { scope: "col", class: "num", "data-stage": key, title: label(key, english), text: SHORT[key] })));
  const rows = turns.slice(-TABLE_MAX_ROWS).reverse().map((turn) => el("tr", { dataset: { turn: turn.turn, outcome: turn.outcome || "" } },
    el("th", { scope: "row", text: `#${turn.turn}` }),
    ...COLUMNS.map(([key]) => el("td", { class: "num", "data-stage": key, text: ms(turn.timings[key]) }))));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  table.dataset.rows = String(rows.length);
}
