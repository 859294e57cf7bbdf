// The "System info" tab: /info and /health as tables (device, models, CUDA, memory, limits,
// queue, versions). The keys come from the server as they are; humanKey/humanValue make any
// new ones readable without a change here.

import { fetchJson } from "./api.js";
import { $, el } from "./dom.js";
import { formatSpan } from "./format.js";
import { hasText, onLanguageChange, t } from "./i18n.js";
import { applyLimits } from "./limits.js";

function humanKey(key) {
  const words = { mb: "MB", s: "s", ms: "ms", asr: "ASR", tts: "TTS", llm: "LLM", cuda: "CUDA", rss: "RSS", id: "ID" };
  return key.split("_").map((word, i) => words[word] || (i === 0 ? word[0].toUpperCase() + word.slice(1) : word)).join(" ");
}

function humanValue(key, value) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value === "boolean") return t(value ? "yes" : "no");
  if (Array.isArray(value) && !value.length) return t("none");
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
  if (!rows.length) table.append(el("tr", {}, el("td", { class: "hint", text: t("info.nothing") })));
}

// The unit moves from the key to the value: "max_upload_mb: 50" reads "Max upload: 50 MB".
// With idPrefix each value cell gets an id ("info-requests-failed"); a key with a text under
// labelPrefix ("info.req.failed") is named by it, any other by its own words.
function objectRows(object, idPrefix = null, labelPrefix = null) {
  return Object.entries(object || {}).map(([key, value]) => [
    labelPrefix && hasText(`${labelPrefix}.${key}`) ? t(`${labelPrefix}.${key}`) : humanKey(key.replace(/_(mb|s)$/, "")),
    humanValue(key, value),
    idPrefix ? `${idPrefix}-${key.replace(/_/g, "-")}` : undefined,
  ]);
}


function cpuRows(cpu) {
  if (!cpu) return [];
  const of = cpu.count ? ` ${t("info.cpus", { n: cpu.count })}` : "";
  const load = [cpu.load_1m, cpu.load_5m, cpu.load_15m].map((value) => humanValue("load", value)).join(" / ");
  return [
    [t("info.cpuUse"), `${humanValue("percent", cpu.percent)} %${of}`, "info-cpu-percent"],
    [t("info.cpuProcess"), `${humanValue("percent", cpu.process_percent)} %`, "info-cpu-process"],
    [t("info.cpuLoad"), load, "info-cpu-load"],
  ];
}

let shown = null; // the last [info, health], drawn again when the language changes

function renderInfo(info, health) {
  shown = [info, health];
  fillTable($("#info-overview"), [
    [t("info.device"), humanValue("device", info.device), "info-device"],
    ["voiceloop", humanValue("version", info.version), "info-version"],
    ["Python", humanValue("python", info.python)],
    ["Platform", humanValue("platform", info.platform)],
    ...(health ? [[t("info.status"), humanValue("status", health.status)], [t("info.uptime"), formatSpan(health.uptime_s)]] : []),
  ]);
  const models = [];
  for (const part of ["asr", "tts", "llm"]) {
    for (const [key, value] of Object.entries(info[part] || {})) {
      models.push([`${part.toUpperCase()} ${humanKey(key).toLowerCase()}`, humanValue(key, value)]);
    }
  }
  fillTable($("#info-models"), models);

  const cuda = info.cuda || {};
  const cudaRows = [[t("info.available"), humanValue("available", cuda.available), "info-cuda-available"]];
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
  fillTable($("#info-cpu"), cpuRows(info.cpu));
  fillTable($("#info-limits"), objectRows(info.limits));
  fillTable($("#info-requests"), objectRows(info.requests, "info-requests", "info.req"));
  fillTable($("#info-queue"), objectRows(info.queue, "info-queue", "info.queue"));
  fillTable($("#info-versions"), Object.entries(info.versions || {}).map(([name, version]) => [name, version || t("info.notInstalled")]));
}

let infoLoading = null;

export function loadInfo() {
  // One request at a time: tab switches and the refresh button can overlap.
  if (infoLoading) return infoLoading;
  const updated = $("#info-updated");
  updated.textContent = t("info.loading");
  infoLoading = Promise.all([fetchJson("/info"), fetchJson("/health").catch(() => null)])
    .then(([info, health]) => {
      renderInfo(info, health);
      applyLimits(info);
      $("#info-error").hidden = true;
      updated.textContent = t("info.updated", { time: new Date().toLocaleTimeString() });
      document.body.dataset.infoLoaded = "true";
    })
    .catch((error) => {
      $("#info-error").textContent = t("info.failed", { message: error.message });
      $("#info-error").hidden = false;
      updated.textContent = "";
    })
    .finally(() => { infoLoading = null; });
  return infoLoading;
}

export function setUpInfo() {
  $("#info-refresh").addEventListener("click", loadInfo);
  onLanguageChange(() => { if (shown) renderInfo(...shown); });
}
