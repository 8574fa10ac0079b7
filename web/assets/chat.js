// The chat client of seed 004: sign in with a JWT, one-to-one and group
// conversations with history, presence dots. Two connections (/chat and
// /presence); the SDK re-sends AUTH on each after a reconnect.
import { ChatClient, PresenceClient, tokenUsername } from "/sdk/index.js";
import { bindStatus, discoverURL, el, logLine, statusPill } from "/assets/common.js";

const $ = (id) => document.getElementById(id);
const log = $("log");
const pill = statusPill();
$("status-slot").append(pill);

let chat = null;
let presence = null;
let me = null;
let convos = []; // [{kind: "dm"|"group", id, unread}]
let current = null; // the open conversation
let shown = new Set(); // messageIds rendered in the log
let oldest = null; // messageId of the oldest rendered message
const pending = []; // our bubbles waiting for "Message sent"

const key = () => `partyline.chat.${me}`;
const save = () => localStorage.setItem(key(), JSON.stringify(convos.map(({ kind, id }) => ({ kind, id }))));
const same = (a, b) => a && b && a.kind === b.kind && a.id === b.id;

async function signIn(token) {
  const name = tokenUsername(token);
  if (!name) {
    $("signin-err").textContent = "That does not look like a JWT with a username or sub claim.";
    return;
  }
  me = name;
  convos = JSON.parse(localStorage.getItem(key()) || "[]").map((c) => ({ ...c, unread: 0 }));
  const [chatURL, presenceURL] = await Promise.all([discoverURL("chat"), discoverURL("presence")]);
  // Construct and subscribe in one synchronous run: the clients connect on
  // the next microtask, so no event can be missed.
  chat = new ChatClient(chatURL, { token });
  presence = new PresenceClient(presenceURL, { token });
  window.partyline = { chat, presence }; // for the console and the browser tests
  bindStatus(chat, pill, log);
  chat.onEvent("error", (e) => {
    if (e.kind === "auth" || (e.kind === "handshake" && chat.state !== "open")) {
      $("signin-err").textContent = e.message;
      signOut(false);
    }
  });
  chat.onEvent("open", ({ reconnected }) => {
    sessionStorage.setItem("partyline.chat.token", token);
    $("signin").hidden = true;
    $("app").hidden = false;
    $("whoami").textContent = `· ${chat.username}`;
    renderConvos();
    if (reconnected && current) loadHistory(false); // fill in what we missed
  });
  chat.on("ONE_TO_ONE_CHAT", (m) => incoming({ kind: "dm", id: m.from === me ? m.to : m.from }, m));
  chat.on("GROUP_CHAT", (m) => incoming({ kind: "group", id: m.groupId }, m));
  chat.on("INFO", (m) => {
    const g = /group (\S+)$/.exec(m.msg);
    if (g && same(current, { kind: "group", id: g[1] })) logLine(log, "system", m.msg);
  });
  chat.on("SUCCESS", (m) => {
    if (m.msg === "Message sent" && pending.length) {
      const li = pending.shift();
      li.dataset.delivery = "sent";
      if (m.messageId) shown.add(m.messageId);
      li.querySelector(".meta").textContent += " · sent";
    }
  });
  // ERRORs that answer no awaited request (a rejected message, ...); an
  // awaited request's ERROR rejects its promise instead (history, join).
  chat.onEvent("error", (e) => {
    if (e.kind === "server") logLine(log, "error", e.message);
  });
  presence.on("PRESENCE_UPDATE", renderConvos);
  presence.onEvent("open", () => presence.subscribe(convos.filter((c) => c.kind === "dm").map((c) => c.id)));
}

function signOut(clear = true) {
  chat?.close();
  presence?.close();
  chat = presence = null;
  current = null;
  if (clear) sessionStorage.removeItem("partyline.chat.token");
  $("app").hidden = true;
  $("signin").hidden = false;
  $("whoami").textContent = "";
}

function incoming(conv, m) {
  let c = convos.find((x) => same(x, conv));
  if (!c) {
    c = { ...conv, unread: 0 };
    convos.push(c);
    save();
    if (c.kind === "dm") presence.subscribe([c.id]);
  }
  if (same(current, c)) show(m);
  else c.unread++;
  renderConvos();
}

function show(m, prepend = false) {
  if (m.messageId && shown.has(m.messageId)) return;
  if (m.messageId) shown.add(m.messageId);
  const li = logLine(log, m.from === me ? "out" : "in", m.content, m.from === me ? "You" : m.from, new Date(m.timestamp));
  if (prepend) log.prepend(li);
}

function renderConvos() {
  $("no-convos").hidden = convos.length > 0;
  $("convos").replaceChildren(...convos.map((c) => {
    const status = c.kind === "dm" ? presence?.statuses.get(c.id) ?? "offline" : null;
    const label = c.kind === "dm" ? `${c.id}, ${status}` : `group ${c.id}`;
    return el("li", {},
      el("button", { type: "button", "aria-current": same(c, current) ? "true" : "false", "aria-label": label + (c.unread ? `, ${c.unread} unread` : ""), onclick: () => open(c) },
        c.kind === "dm" ? el("span", { class: "presence", dataset: { status }, "aria-hidden": "true" }) : el("span", { "aria-hidden": "true" }, "#"),
        c.id,
        c.unread ? el("span", { class: "unread", "aria-hidden": "true" }, String(c.unread)) : null));
  }));
  if (current?.kind === "dm") $("conv-sub").textContent = presence?.statuses.get(current.id) === "online" ? "online" : "offline";
}

async function open(c) {
  current = c;
  c.unread = 0;
  shown = new Set();
  oldest = null;
  pending.length = 0;
  log.replaceChildren();
  $("conv-title").textContent = c.kind === "dm" ? `Chat with ${c.id}` : `Group ${c.id}`;
  $("conv-sub").textContent = c.kind === "group" ? "group" : "";
  $("leave-p").hidden = c.kind !== "group";
  $("text").disabled = $("send-btn").disabled = false;
  renderConvos();
  await loadHistory(false);
  $("text").focus();
}

async function loadHistory(older) {
  const c = current;
  const opts = older && oldest ? { before: oldest, limit: 50 } : { limit: 50 };
  try {
    const h = c.kind === "dm" ? await chat.history(c.id, opts) : await chat.groupHistory(c.id, opts);
    if (!same(c, current)) return;
    const msgs = older ? [...h.messages].reverse() : h.messages;
    for (const m of msgs) show(m, older);
    if (h.messages.length && (older || !oldest)) oldest = h.messages[0].messageId;
    $("older-p").hidden = !h.hasMore;
  } catch (e) {
    logLine(log, "error", `History: ${e.message}`);
  }
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  $("signin-err").textContent = "";
  signIn($("token").value.trim());
});
$("signout").addEventListener("click", () => signOut(true));
$("dm-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("dm-user").value.trim();
  if (!id || id === me) return;
  let c = convos.find((x) => same(x, { kind: "dm", id }));
  if (!c) {
    convos.push((c = { kind: "dm", id, unread: 0 }));
    save();
    presence.subscribe([id]);
  }
  $("dm-user").value = "";
  open(c);
});
$("group-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("group-id").value.trim();
  if (!id) return;
  let c = convos.find((x) => same(x, { kind: "group", id }));
  if (!c) {
    // Already a member (from another device) is fine: the history follows.
    chat.join(id).catch((err) => {
      if (!/^Already a member/.test(err.message)) logLine(log, "error", `Join ${id}: ${err.message}`);
    });
    convos.push((c = { kind: "group", id, unread: 0 }));
    save();
  }
  $("group-id").value = "";
  open(c);
});
$("leave-group").addEventListener("click", () => {
  if (current?.kind !== "group") return;
  chat.leaveGroup(current.id);
  convos = convos.filter((x) => !same(x, current));
  save();
  current = null;
  log.replaceChildren();
  $("conv-title").textContent = "Pick a conversation";
  $("leave-p").hidden = true;
  $("older-p").hidden = true;
  $("text").disabled = $("send-btn").disabled = true;
  renderConvos();
});
$("older").addEventListener("click", () => loadHistory(true));
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !current) return;
  const queued = chat.state !== "open";
  const ok = current.kind === "dm" ? chat.sendDirect(current.id, text) : chat.sendGroup(current.id, text);
  const li = logLine(log, ok ? "out" : "error", text, `You${queued ? " · queued" : ""}${ok ? "" : " · dropped"}`);
  if (ok) pending.push(li);
  $("text").value = "";
  $("text").focus();
});

const savedToken = sessionStorage.getItem("partyline.chat.token");
if (savedToken) {
  $("token").value = savedToken;
  signIn(savedToken);
}
