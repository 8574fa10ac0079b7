// The admin page: live counts from GET /api/stats every 2 s, a room list
// searched by code prefix (GET /api/rooms with its filters and cursor), a
// room's detail (GET /api/rooms/{code}), kick and close. The API key is
// asked for once and kept in this tab (sessionStorage); without --api-key a
// loopback server answers without one. Every API error is shown on the
// page; a 401 (or a wrong key) asks for the key again.
import { el, stamp } from "/assets/common.js";

const $ = (id) => document.getElementById(id);
const KEY = "partyline.admin.key";
const POLL_MS = 2000;
const PAGE = 50; // rooms per page
const ROOM_DIALECTS = ["party", "party-v2"]; // the dialects with a rooms API

let key = sessionStorage.getItem(KEY) || "";
let needKey = false;
let pollTimer = null;
let cursor = ""; // the list's nextCursor
let listed = 0;
let open = null; // {code, dialect} of the room shown in detail

class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API with the key; rejects with an APIError carrying the server's text. */
async function api(method, path, body) {
  const headers = {};
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new APIError(0, `Server unreachable (${e.message})`);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON: a 404 of an unmounted route, a proxy's page */
  }
  if (res.ok) return data;
  const msg = data?.error || `${res.status} ${res.statusText || "error"}`;
  // 401: no key; 403 "wrong API key": a stale or mistyped one. Ask again.
  if (res.status === 401 || (res.status === 403 && /wrong API key/i.test(msg))) askKey(msg);
  throw new APIError(res.status, msg);
}

let errorFrom = null; // what put the error banner up ("stats", "action"), to clear it on its next success
function showError(msg, from = "action") {
  $("error").textContent = msg;
  $("error").hidden = false;
  errorFrom = from;
}
function clearError(from) {
  if (from && errorFrom !== from) return;
  $("error").hidden = true;
  $("error").textContent = "";
  errorFrom = null;
}
function notice(msg) {
  $("notice").textContent = msg;
  $("notice").hidden = false;
}

function setUpdated(state, text) {
  $("updated").dataset.state = state;
  $("updated").querySelector(".text").textContent = text;
}

function askKey(msg) {
  needKey = true;
  key = "";
  sessionStorage.removeItem(KEY);
  clearTimeout(pollTimer);
  $("key-card").hidden = false;
  showError(`${msg} — enter the API key.`, "key");
  setUpdated("idle", "Waiting for the API key");
  $("key").focus();
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  key = $("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("key").value = "";
  $("key-card").hidden = true;
  needKey = false;
  clearError("key");
  poll();
  search();
});

// ---- live counts ----

const num = (n) => Number(n ?? 0).toLocaleString("en");
const rate = (n) => Number(n ?? 0).toLocaleString("en", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

function renderStats(s) {
  $("node").textContent = s.node ? `node ${s.node}` : "";
  $("c-connections").textContent = num(s.connections);
  $("c-in").textContent = s.rateWindowSeconds ? rate(s.messagesInPerSecond) : "–";
  $("c-out").textContent = s.rateWindowSeconds ? rate(s.messagesOutPerSecond) : "–";
  const rooms = Object.entries(s.rooms || {}).sort(([a], [b]) => a.localeCompare(b));
  $("rooms-by").replaceChildren(...rooms.map(([d, n]) =>
    el("div", {}, el("dt", {}, d), el("dd", { dataset: { dialect: d } }, num(n)))));
  $("totals").textContent = `${num(s.messagesIn)} messages in and ${num(s.messagesOut)} out since the server started` +
    (s.rateWindowSeconds ? `; rates over the last ${s.rateWindowSeconds.toFixed(1)} s.` : ".");
}

async function poll() {
  clearTimeout(pollTimer);
  if (needKey) return;
  try {
    renderStats(await api("GET", "/api/stats"));
    setUpdated("open", `Updated ${stamp()}`);
    clearError("stats");
  } catch (e) {
    if (needKey) return;
    setUpdated("closed", "Update failed");
    showError(`Live counts: ${e.message}`, "stats");
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

// ---- the room list ----

function filters() {
  const p = new URLSearchParams({ dialect: $("dialect").value, limit: String(PAGE) });
  const prefix = $("prefix").value.trim();
  if (prefix) p.set("prefix", prefix);
  if ($("public").checked) p.set("public", "true");
  if ($("has-space").checked) p.set("has_space", "true");
  return p;
}

const members = (r) => `${r.members} / ${r.maxClients}`;
const short = (v, n = 60) => {
  if (v === undefined) return "";
  const s = JSON.stringify(v);
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
};

function roomRow(r) {
  return el("tr", { dataset: { code: r.code } },
    el("th", { scope: "row" }, el("button", {
      type: "button", class: "link code-btn", "aria-label": `Open room ${r.code}`,
      onclick: () => openRoom(r.code, r.dialect),
    }, r.code)),
    el("td", {}, members(r)),
    el("td", {}, r.public ? "yes" : "no"),
    el("td", {}, stamp(new Date(r.created))),
    el("td", { class: "meta-cell" }, short(r.metadata)));
}

async function search(more = false) {
  if (needKey) return;
  const p = filters();
  if (more && cursor) p.set("cursor", cursor);
  $("more").disabled = true;
  try {
    const res = await api("GET", `/api/rooms?${p}`);
    if (!more) {
      $("rooms").replaceChildren();
      listed = 0;
    }
    $("rooms").append(...res.rooms.map(roomRow));
    listed += res.rooms.length;
    cursor = res.nextCursor || "";
    $("more").hidden = !cursor;
    $("rooms-summary").textContent = listed === 0
      ? "No rooms match."
      : `${listed} room${listed === 1 ? "" : "s"} shown${cursor ? "; more match" : ""}.`;
    clearError("action");
  } catch (e) {
    if (e.status === 404) $("rooms-summary").textContent = "This server has no rooms API (the party dialects are off).";
    else if (!needKey) showError(`Rooms: ${e.message}`);
  } finally {
    $("more").disabled = false;
  }
}

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  search();
});
$("more").addEventListener("click", () => search(true));

// ---- one room ----

const roomPath = (code, dialect, action = "") =>
  `/api/rooms/${encodeURIComponent(code)}${action}?dialect=${encodeURIComponent(dialect)}`;

async function openRoom(code, dialect, focus = true) {
  try {
    const r = await api("GET", roomPath(code, dialect));
    open = { code: r.code, dialect: r.dialect };
    renderDetail(r);
    clearError("action");
    if (focus) $("detail-h").focus();
  } catch (e) {
    if (e.status === 404) hideDetail();
    if (!needKey) showError(`Room ${code}: ${e.message}`);
  }
}

function hideDetail() {
  open = null;
  $("detail").hidden = true;
}

function renderDetail(r) {
  $("detail").hidden = false;
  $("d-code").textContent = r.code;
  $("d-dialect").textContent = r.dialect;
  $("d-members").textContent = members(r);
  $("d-created").textContent = stamp(new Date(r.created));
  $("d-public").textContent = r.public ? "yes" : "no";
  $("d-state").textContent = r.stateBytes ? `${num(r.stateBytes)} bytes` : "none";
  $("d-seq").textContent = String(r.seq ?? "–");
  $("d-epoch").textContent = r.epoch || "";
  $("d-epoch-f").hidden = !r.epoch; // rooms with offsets only (docs/recovery.md)
  $("d-meta").textContent = r.metadata === undefined ? "(none)" : JSON.stringify(r.metadata, null, 2);
  const clients = r.clients || [];
  $("d-clients").replaceChildren(...(clients.length ? clients.map((c) =>
    el("li", { dataset: { client: c.clientId }, class: c.away ? "away" : "" },
      el("span", {}, c.clientId,
        c.index !== undefined ? el("span", { class: "muted" }, ` · slot ${c.index}`) : null,
        c.away ? el("span", { class: "muted" }, " · away") : null),
      el("button", { type: "button", class: "danger small-btn", "aria-label": `Kick ${c.clientId}`, onclick: () => askKick(c.clientId) }, "Kick")))
    : [el("li", { class: "muted" }, "No members (waiting for the first join).")]));
  $("close-text").textContent = `Every member's connection (${clients.length}) closes with code 4004 “room closed” and the room is deleted.`;
}

$("d-refresh").addEventListener("click", () => open && openRoom(open.code, open.dialect, false));

/** Shows a modal dialog and resolves with the button's value ("" on Escape). */
function ask(dialog) {
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
}

async function askKick(clientId) {
  if (!open) return;
  const { code, dialect } = open;
  $("kick-who").textContent = `${clientId} from ${code}`;
  if ((await ask($("kick-dialog"))) !== "kick") return;
  try {
    await api("POST", roomPath(code, dialect, "/kick"), { clientId, reason: $("kick-reason").value });
    notice(`Kicked ${clientId} from room ${code}.`);
    clearError("action");
  } catch (e) {
    if (!needKey) showError(`Kick ${clientId}: ${e.message}`);
  }
  await openRoom(code, dialect, false);
  search();
}

$("d-close").addEventListener("click", async () => {
  if (!open) return;
  const { code, dialect } = open;
  $("close-code").textContent = code;
  if ((await ask($("close-dialog"))) !== "close") return;
  try {
    const r = await api("DELETE", roomPath(code, dialect));
    notice(`Room ${code} closed; ${r.members} member${r.members === 1 ? "" : "s"} disconnected.`);
    clearError("action");
    hideDetail();
    $("prefix").focus();
  } catch (e) {
    if (!needKey) showError(`Close ${code}: ${e.message}`);
  }
  search();
});

// ---- start ----

async function loadDialects() {
  try {
    const res = await fetch("/config.json", { cache: "no-store" });
    const cfg = res.ok ? await res.json() : null;
    const ds = ROOM_DIALECTS.filter((d) => cfg?.dialects?.includes(d));
    if (ds.length) $("dialect").replaceChildren(...ds.map((d) => new Option(d, d)));
  } catch {
    /* keep party */
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !needKey) poll();
});

await loadDialects();
poll();
search();
