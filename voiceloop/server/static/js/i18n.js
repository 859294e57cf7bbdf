// The page's language: English or Chinese, as the browser prefers (navigator.languages), or as
// chosen with the header's switch (remembered in localStorage). Words live in one table per
// language (lang-en.js, lang-zh.js); t(key, {name: value}) looks one up and fills it in.
// Static text in index.html names its key with data-i18n (text), data-i18n-title,
// data-i18n-placeholder or data-i18n-label (aria-label); dynamic text is re-rendered by whoever
// registered with onLanguageChange.

import en from "./lang-en.js";
import zh from "./lang-zh.js";

const TABLES = { en, zh };
const STORAGE_KEY = "voiceloop.lang";
let current = "en";
const listeners = [];

function preferred() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (stored && TABLES[stored]) return stored;
  } catch (_) { /* storage may be off: follow the browser */ }
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (TABLES[primary]) return primary;
  }
  return "en";
}

export function language() {
  return current;
}

export function t(key, vars = {}) {
  const text = TABLES[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

export function hasText(key) {
  return key in TABLES[current] || key in en;
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

export function translateStatic(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of root.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
}

export function setLanguage(lang, { remember = true } = {}) {
  if (!TABLES[lang]) lang = "en";
  current = lang;
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.body.dataset.lang = lang;
  if (remember) {
    try { localStorage.setItem(STORAGE_KEY, lang); } catch (_) { /* not remembered, still switched */ }
  }
  translateStatic();
  const select = document.querySelector("#lang-switch");
  if (select) select.value = lang;
  for (const listener of listeners) listener(lang);
}

// The switch in the header lists every language by its own name.
export function setUpLanguage() {
  const select = document.querySelector("#lang-switch");
  for (const [code, table] of Object.entries(TABLES)) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = table["lang.name"];
    select.append(option);
  }
  select.addEventListener("change", () => setLanguage(select.value));
  setLanguage(preferred(), { remember: false });
}
