// The party room client: create or join a room by code, see the peers,
// broadcast or send to one, share retained state. The SDK rejoins the room
// with the same clientId, token and stream offset after a reconnect, so
// the server replays what was missed; a page reload rejoins from
// sessionStorage, where the page also keeps the room's message log (the
// offset saved with it means no message is shown twice).
import { PartyClient } from "/sdk/index.js";
import { bindStatus, discoverURL, el, logLine, statusPill } from "/assets/common.js";

const $ = (id) => document.getElementById(id);
const log = $("log");
const saved = readJSON("partyline.party", {});
const LOG_KEEP = 300; // log lines kept per room in sessionStorage
const params = new URLSearchParams(location.search);
const clientId = params.get("name") || saved.clientId || `player-${Math.random().toString(36).slice(2, 6)}`;
$("client-id").value = clientId;
if (params.get("room")) $("code").value = params.get("room");

const pill = statusPill();
$("status-slot").append(pill);

let client = null;
const url = await discoverURL("party");
showMaxClients();

/** The server caps maxClients (--party-max-clients): say so, and let the field refuse more. */
async function showMaxClients() {
  try {
    const res = await fetch("/config.json", { cache: "no-store" });
    const max = res.ok ? (await res.json()).partyMaxClients : 0;
    if (!max) return;
    $("max").max = String(max);
    $("max").placeholder = `up to ${max}`;
    $("max-help").textContent = `Empty: ${max}, the server's maximum.`;
  } catch {
    /* the generic text stays */
  }
}

function readJSON(key, fallback) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null") ?? fallback;
  } catch {
    return fallback;
  }
}

const logKey = (room) => `partyline.party.log.${room}`;
let stored = { room: null, lines: [] }; // the log of the room we are in, as saved

/** Logs a line and, while in a room, keeps it in that room's saved log. */
function note(kind, text, meta) {
  logLine(log, kind, text, meta);
  const room = client?.room;
  if (!room) return;
  if (stored.room !== room) stored = { room, lines: readJSON(logKey(room), []) };
  stored.lines.push({ kind, text, meta, at: Date.now() });
  if (stored.lines.length > LOG_KEEP) stored.lines.splice(0, stored.lines.length - LOG_KEEP);
  try {
    sessionStorage.setItem(logKey(room), JSON.stringify(stored.lines));
  } catch {
    /* storage full: the log just is not kept */
  }
}

/** Shows a room's saved log again (after a reload). */
function restoreLog(room) {
  const lines = readJSON(logKey(room), []);
  stored = { room, lines };
  for (const l of lines) logLine(log, l.kind, l.text, l.meta, new Date(l.at));
}

function connect(id) {
  client = new PartyClient(url, { clientId: id });
  window.partyline = client; // for the console and the browser tests
  bindStatus(client, pill, log);
  client.on("peer_joined", (m) => note("system", `${m.clientId} joined`));
  client.on("peer_left", (m) => note("system", `${m.clientId} left`));
  client.on("peer_away", (m) => note("system", `${m.clientId} lost the connection — reconnecting…`));
  client.on("peer_back", (m) => note("system", `${m.clientId} is back`));
  client.on("message", (m) => note("in", typeof m.data === "string" ? m.data : JSON.stringify(m.data), m.from));
  client.on("state", () => note("system", "Room state updated"));
  // Server errors that answer no awaited request (create and join report
  // theirs through their promise, a failed re-join as a handshake error).
  client.onEvent("error", (e) => {
    if (e.kind === "server") note("error", e.message);
  });
  client.onEvent("rejoined", ({ recovered, since }) => {
    if (!since) return; // a server without offsets: nothing to say beyond "Reconnected"
    note("system", recovered
      ? `Rejoined room ${client.room}: nothing was lost`
      : `Rejoined room ${client.room}: messages sent meanwhile could not be recovered (the room state is current)`);
  });
  client.on("*", render);
  client.onEvent("state", render);
  client.onEvent("error", (e) => {
    if (e.kind === "handshake") render();
  });
  return client;
}

function remember() {
  const off = client.offset;
  sessionStorage.setItem("partyline.party", JSON.stringify(
    client.room
      ? { clientId: client.clientId, room: client.room, token: client.token, epoch: off?.epoch, seq: off?.seq }
      : { clientId: client.clientId }));
}

function render() {
  const inRoom = !!client?.room;
  $("lobby").hidden = inRoom;
  $("room").hidden = !inRoom;
  $("send-btn").disabled = !inRoom;
  $("state-btn").disabled = !inRoom;
  if (client) remember();
  if (!inRoom) return;
  $("room-code").textContent = client.room;
  const link = `${location.origin}/party?room=${client.room}`;
  $("room-link").href = link;
  $("room-link").textContent = link;
  $("peer-count").textContent = client.peers.length;
  const me = client.clientId;
  const down = client.state !== "open";
  $("peers").replaceChildren(...client.peers.map((p) => {
    // Away: the member's socket dropped and the server keeps its seat for a while.
    const away = p === me ? down : client.away.includes(p);
    const tag = p === me ? (down ? "you · reconnecting…" : "you") : away ? "reconnecting…" : null;
    return el("li", { class: [p === me ? "me" : "", away ? "away" : ""].join(" ").trim(), dataset: { peer: p } },
      p, tag ? el("span", { class: "muted" }, tag) : null);
  }));
  const to = $("to");
  const keep = to.value;
  to.replaceChildren(new Option("Everyone", ""), ...client.peers.filter((p) => p !== client.clientId).map((p) => new Option(p, p)));
  if ([...to.options].some((o) => o.value === keep)) to.value = keep;
  $("state").textContent = client.roomState === undefined ? "(none)" : JSON.stringify(client.roomState, null, 2);
}

async function enter(action, announce = true) {
  const id = $("client-id").value.trim();
  if (!id) return $("client-id").focus();
  if (client.clientId !== id) client.clientId = id; // not in a room here
  try {
    const r = await action();
    if (announce) note("system", `You are in room ${r.room}`);
    render();
    $("text").focus();
  } catch (e) {
    logLine(log, "error", e.message);
  }
}

$("name-form").addEventListener("submit", (e) => e.preventDefault());
$("create").addEventListener("submit", (e) => {
  e.preventDefault();
  const max = $("max").value ? Number($("max").value) : undefined;
  enter(() => client.create(max));
});
$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  enter(() => client.join($("code").value.trim()));
});
$("leave").addEventListener("click", () => {
  const room = client.room;
  client.leave();
  sessionStorage.removeItem(logKey(room));
  stored = { room: null, lines: [] };
  logLine(log, "system", `You left room ${room}`);
  render();
  $("code").focus();
});
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !client?.room) return;
  const to = $("to").value;
  const queued = client.state !== "open";
  const ok = to ? client.sendTo(to, text) : client.broadcast(text);
  note(ok ? "out" : "error", text, `You → ${to || "everyone"}${queued ? " · queued" : ""}${ok ? "" : " · dropped"}`);
  $("text").value = "";
  $("text").focus();
});
$("state-form").addEventListener("submit", (e) => {
  e.preventDefault();
  let v;
  try {
    v = JSON.parse($("state-input").value);
  } catch (err) {
    $("state-err").textContent = "Not valid JSON: " + err.message;
    return;
  }
  $("state-err").textContent = "";
  client.setState(v);
});

connect(clientId);
if (saved.room && saved.token && saved.clientId === clientId) {
  // A reload: show the room's log again and take our place in the room (the
  // token proves it is us); with the saved offset the server replays only
  // what this page has not shown yet.
  restoreLog(saved.room);
  const since = typeof saved.epoch === "string" && typeof saved.seq === "number" ? { epoch: saved.epoch, seq: saved.seq } : null;
  enter(() => client.join(saved.room, saved.token, since), !since);
}
render();
