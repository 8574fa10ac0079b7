// The party room client: create or join a room by code, see the peers,
// broadcast or send to one, share retained state. The SDK rejoins the room
// with the same clientId and token after a reconnect; a page reload rejoins
// from sessionStorage.
import { PartyClient } from "/sdk/index.js";
import { bindStatus, discoverURL, el, logLine, statusPill } from "/assets/common.js";

const $ = (id) => document.getElementById(id);
const log = $("log");
const saved = JSON.parse(sessionStorage.getItem("partyline.party") || "{}");
const params = new URLSearchParams(location.search);
const clientId = params.get("name") || saved.clientId || `player-${Math.random().toString(36).slice(2, 6)}`;
$("client-id").value = clientId;
if (params.get("room")) $("code").value = params.get("room");

const pill = statusPill();
$("status-slot").append(pill);

let client = null;
const url = await discoverURL("party");

function connect(id) {
  client = new PartyClient(url, { clientId: id });
  window.partyline = client; // for the console and the browser tests
  bindStatus(client, pill, log);
  client.on("peer_joined", (m) => logLine(log, "system", `${m.clientId} joined`));
  client.on("peer_left", (m) => logLine(log, "system", `${m.clientId} left`));
  client.on("message", (m) => logLine(log, "in", typeof m.data === "string" ? m.data : JSON.stringify(m.data), m.from));
  client.on("state", (m) => logLine(log, "system", "Room state updated"));
  client.on("error", (m) => logLine(log, "error", m.message));
  client.on("*", render);
  client.onEvent("state", render);
  client.onEvent("error", (e) => {
    if (e.kind === "handshake") render();
  });
  return client;
}

function remember() {
  sessionStorage.setItem("partyline.party", JSON.stringify(
    client.room ? { clientId: client.clientId, room: client.room, token: client.token } : { clientId: client.clientId }));
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
  $("peers").replaceChildren(...client.peers.map((p) =>
    el("li", { class: p === client.clientId ? "me" : "" }, p, p === client.clientId ? el("span", { class: "muted" }, "you") : null)));
  const to = $("to");
  const keep = to.value;
  to.replaceChildren(new Option("Everyone", ""), ...client.peers.filter((p) => p !== client.clientId).map((p) => new Option(p, p)));
  if ([...to.options].some((o) => o.value === keep)) to.value = keep;
  $("state").textContent = client.roomState === undefined ? "(none)" : JSON.stringify(client.roomState, null, 2);
}

async function enter(action) {
  const id = $("client-id").value.trim();
  if (!id) return $("client-id").focus();
  if (client.clientId !== id) client.clientId = id; // not in a room here
  try {
    const r = await action();
    logLine(log, "system", `You are in room ${r.room}`);
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
  logLine(log, ok ? "out" : "error", text, `You → ${to || "everyone"}${queued ? " · queued" : ""}${ok ? "" : " · dropped"}`);
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
  // A reload: take our place in the room again (the token proves it is us).
  enter(() => client.join(saved.room, saved.token));
}
render();
