// voiceloop web page: file transcription, recording, a live view of a spoken session, and
// system info. Plain browser JavaScript modules with no build step and no external
// resources: the machines this runs on are often offline. This entry module wires the tabs
// together; each tab's module (js/files.js, js/record.js, js/live.js, js/info.js) keeps its
// own state, and what they share goes through explicit exports (js/limits.js).

import { fetchJson, forgetTokenInAddress } from "./js/api.js";
import { $ } from "./js/dom.js";
import { setUpFiles } from "./js/files.js";
import { onLanguageChange, setUpLanguage, t } from "./js/i18n.js";
import { loadInfo, setUpInfo } from "./js/info.js";
import { applyLimits } from "./js/limits.js";
import { redrawChart, setKiosk, setUpLive } from "./js/live.js";
import { setUpRecord } from "./js/record.js";
import { setUpTabs, showTab } from "./js/tabs.js";

let lastHealth = null; // {health} or {error}: drawn again when the language changes

function showHealth() {
  const badge = $("#server-status");
  if (!lastHealth) {
    badge.textContent = t("server.checking");
  } else if (lastHealth.health) {
    const health = lastHealth.health;
    badge.dataset.status = health.status === "ok" ? "ok" : "degraded";
    badge.textContent = health.status === "ok" ? t("server.ok") : t("server.status", { status: health.status });
    badge.title = t("server.title", { loaded: t(health.asr_loaded ? "yes" : "no"), uptime: Math.round(health.uptime_s || 0) });
  } else {
    badge.dataset.status = "down";
    badge.textContent = t("server.down");
    badge.title = String(lastHealth.error.message || lastHealth.error);
  }
}

// The header's badge: is the server there, and has it loaded its recogniser.
async function checkHealth() {
  try {
    lastHealth = { health: await fetchJson("/health") };
  } catch (error) {
    lastHealth = { error };
  }
  showHealth();
}

function main() {
  forgetTokenInAddress();
  setUpLanguage(); // first: every tab renders its words in the chosen language
  onLanguageChange(showHealth);
  showHealth();
  // The info tab loads when shown; the live tab's canvas has no size while its panel is hidden.
  setUpTabs({ info: loadInfo, live: redrawChart });
  setUpFiles();
  setUpRecord();
  setUpLive();
  setUpInfo();
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
