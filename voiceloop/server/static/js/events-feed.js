// The client of the server's events feed (WebSocket /v1/session/events; the messages are
// defined in voiceloop/server/events.py). It keeps one connection open and reconnects for as
// long as the page lives; every connection starts with a snapshot, so a reconnect loses
// nothing.

import { wsUrl } from "./api.js";

// onEvent(event): each message, parsed; onStatus(status, seconds): "connecting", "connected"
// or "reconnecting" (in `seconds`).
export function connectEventsFeed({ onEvent, onStatus }) {
  let socket = null;
  let backoffMs = 500;
  let reconnectTimer = null;

  function connect() {
    clearTimeout(reconnectTimer);
    onStatus("connecting");
    const current = new WebSocket(wsUrl("/v1/session/events"));
    socket = current;
    current.addEventListener("open", () => {
      backoffMs = 500;
      onStatus("connected");
    });
    current.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      onEvent(event);
    });
    current.addEventListener("close", () => {
      if (socket !== current) return;
      // Exponential backoff with jitter: a restarted server is not hammered by every open page.
      const delay = backoffMs * (0.8 + Math.random() * 0.4);
      backoffMs = Math.min(backoffMs * 2, 10_000);
      onStatus("reconnecting", Math.ceil(delay / 1000));
      reconnectTimer = setTimeout(connect, delay);
    });
  }

  connect();
}
