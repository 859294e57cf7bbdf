// The four tabs (WAI-ARIA tabs pattern) and the address's #hash that names the open one.

import { $ } from "./dom.js";

const TABS = ["files", "record", "live", "info"];
let onShow = {}; // tab name → what to do when it is shown (given by setUpTabs)

export function showTab(name, { focus = false } = {}) {
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
  if (onShow[name]) onShow[name]();
}

// showHooks: {info: load it, live: redraw the chart (a canvas has no size while hidden)}.
export function setUpTabs(showHooks) {
  onShow = { ...showHooks };
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
