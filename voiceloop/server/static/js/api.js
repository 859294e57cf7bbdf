// Talking to the server: requests, websocket addresses, error messages, and the token.
// The HTTP/websocket contract is in the server code (voiceloop/server); everything here talks
// to the same origin.

// Auth: opening the page as `/?token=…` makes the server set an HttpOnly cookie that every
// same-origin request and websocket then carries, so no script here ever holds the token.
// The token is taken out of the address bar so it does not linger in history, bookmarks or
// screenshots of a kiosk.
export function forgetTokenInAddress() {
  const url = new URL(location.href);
  if (!url.searchParams.has("token") || !history.replaceState) return;
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// The server answers every failure as {"error": {"message": …}}; fall back to the status line
// when a proxy in between answered instead.
export function errorMessage(status, bodyText, statusText = "") {
  let message = "";
  try {
    const body = JSON.parse(bodyText);
    message = (body && body.error && body.error.message) || (body && body.detail) || "";
    if (typeof message !== "string") message = JSON.stringify(message);
  } catch (_) {
    message = (bodyText || "").trim().slice(0, 300);
  }
  if (status === 401) message = `not authorised: open this page as /?token=… (${message || "401"})`;
  return status ? `HTTP ${status}${statusText ? " " + statusText : ""}: ${message || "request failed"}` : message;
}

export async function fetchJson(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    credentials: "same-origin",
  });
  const text = await response.text();
  if (!response.ok) throw new Error(errorMessage(response.status, text, response.statusText));
  return text ? JSON.parse(text) : null;
}

// XMLHttpRequest rather than fetch: fetch cannot report upload progress.
// Resolves (never rejects) with {status, statusText, body, retryAfter}; status 0 when no
// answer came.
export function postTranscription(file, fields, onProgress) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", file, file.name);
    for (const [key, value] of Object.entries(fields)) if (value) form.append(key, value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/audio/transcriptions");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total, false);
    });
    xhr.upload.addEventListener("load", () => onProgress && onProgress(1, true));
    xhr.addEventListener("load", () => resolve({
      status: xhr.status, statusText: xhr.statusText, body: xhr.responseText,
      retryAfter: xhr.getResponseHeader("Retry-After"),
      serverMs: serverTimingMs(xhr.getResponseHeader("Server-Timing")),
    }));
    xhr.addEventListener("error", () => resolve({ status: 0, body: "network error: the server could not be reached" }));
    xhr.addEventListener("abort", () => resolve({ status: 0, body: "upload aborted" }));
    xhr.send(form);
  });
}

// The server's own time for a request, from `Server-Timing: app;dur=<ms>` (null if absent).
export function serverTimingMs(header) {
  const match = /(?:^|,)\s*app\s*;[^,]*dur=([\d.]+)/.exec(header || "");
  return match ? Number(match[1]) : null;
}

// Whether asking again could help: no answer at all, a busy or failing server. A 4xx is the
// request's own fault (empty, undecodable, too long) and would fail the same way again.
export function worthRetrying(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

// Sent as typed: the server splits at commas where there are any (so a hotword may hold
// spaces, "Li Wei, FunASR"), else at spaces.
export function hotwordsFrom(input) {
  return input.value.trim();
}
