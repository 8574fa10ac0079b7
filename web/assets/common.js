// Shared page helpers: the connection status pill, log lines, the server URL.
import { discoverURL } from "/sdk/index.js";

export { discoverURL };

/** Creates an element: el("li", {class: "in"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c);
  return e;
}

const time = (d) => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** One format for every time shown: the time of day, with the date when it is not today. */
export function stamp(d = new Date()) {
  return d.toDateString() === new Date().toDateString() ? time(d) : `${d.toLocaleDateString()} ${time(d)}`;
}

/**
 * Appends a line to a log list and keeps it scrolled to the bottom. kind: in | out | system | error.
 * `at` is when it happened (default now; a restored line keeps its time).
 */
export function logLine(log, kind, text, meta, at = new Date()) {
  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const li = el("li", { class: kind }, meta ? el("span", { class: "meta" }, `${meta} · ${stamp(at)}`) : null, text);
  if (!meta && (kind === "in" || kind === "out")) li.prepend(el("span", { class: "meta" }, stamp(at)));
  log.append(li);
  if (stick || kind === "out") log.scrollTop = log.scrollHeight;
  return li;
}

/**
 * Shows a Connection's state in a status pill (.dot, .text, a "Reconnect
 * now" button) and reports reconnects in the log.
 */
export function bindStatus(conn, pill, log) {
  const text = pill.querySelector(".text");
  const button = pill.querySelector("button");
  let countdown = null;
  const render = (s, extra = "") => {
    pill.dataset.state = s;
    const label = {
      idle: "Not connected",
      connecting: "Connecting…",
      handshaking: "Signing in…",
      open: "Connected",
      reconnecting: "Reconnecting",
      closed: "Disconnected",
    }[s];
    text.textContent = label + extra;
    button.hidden = !(s === "reconnecting" || s === "closed");
  };
  conn.onEvent("state", ({ state }) => {
    if (state !== "reconnecting") {
      clearInterval(countdown);
      render(state);
    }
  });
  conn.onEvent("reconnecting", ({ attempt, delay }) => {
    const until = Date.now() + delay;
    clearInterval(countdown);
    const tick = () => {
      const left = Math.max(0, (until - Date.now()) / 1000);
      render("reconnecting", ` in ${left.toFixed(1)} s (attempt ${attempt})`);
    };
    tick();
    countdown = setInterval(tick, 200);
  });
  // Log the loss once, not every failed retry after it.
  let up = false;
  conn.onEvent("close", ({ code, reason, willReconnect }) => {
    if (log && up) logLine(log, "system", `Connection lost (${code}${reason ? " " + reason : ""})${willReconnect ? " — reconnecting" : ""}`);
    up = false;
  });
  conn.onEvent("open", ({ reconnected }) => {
    up = true;
    if (log && reconnected) logLine(log, "system", "Reconnected");
  });
  conn.onEvent("error", (e) => {
    if (log && e.kind !== "server") logLine(log, "error", e.message);
  });
  button.addEventListener("click", () => conn.reconnectNow());
  render(conn.state);
}

/** The status pill markup. */
export function statusPill() {
  return el("div", { class: "status", role: "status", "aria-live": "polite", dataset: { state: "idle" } },
    el("span", { class: "dot", "aria-hidden": "true" }),
    el("span", { class: "text" }, "Not connected"),
    el("button", { type: "button", class: "secondary", hidden: true }, "Reconnect now"));
}
