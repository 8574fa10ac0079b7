// The team client of seed 000: registers as team N (from /teams/N), shows
// status and messages, sends to another team, and re-registers by itself
// after a reconnect.
import { TeamsClient } from "/sdk/index.js";
import { bindStatus, discoverURL, logLine, statusPill } from "/assets/common.js";

const team = Number(location.pathname.split("/").pop());
const cfg = await fetch("/config.json").then((r) => (r.ok ? r.json() : {}), () => ({}));
const teams = Math.max(cfg.teams ?? 2, team);
document.body.classList.add(`team-${team}`);
document.title = `Team ${team} — partyline`;
document.getElementById("title").textContent = `Team ${team}`;

const log = document.getElementById("log");
const form = document.getElementById("send");
const input = document.getElementById("text");
const to = document.getElementById("to");
for (let t = 1; t <= teams; t++) {
  if (t !== team) to.append(new Option(`Team ${t}`, String(t)));
}

const pill = statusPill();
document.getElementById("status-slot").append(pill);

const client = new TeamsClient(await discoverURL("teams"), { team });
window.partyline = client; // for the console and the browser tests
bindStatus(client, pill, log);

// Outgoing bubbles wait for the server's verdict, in order.
const pending = [];
client.on("status", (m) => {
  if (/^Message delivered/.test(m.data) && pending.length) {
    const li = pending.shift();
    li.dataset.delivery = "delivered";
    li.querySelector(".meta").textContent += " · delivered";
  }
  logLine(log, "system", m.data);
});
client.on("error", (m) => {
  if (pending.length && !/registered|Invalid JSON/.test(m.data)) {
    const li = pending.shift();
    li.dataset.delivery = "failed";
    li.querySelector(".meta").textContent += " · not delivered";
  }
  logLine(log, "error", m.data);
});
client.on("message", (m) => logLine(log, "in", m.message, `Team ${m.from}`));
client.onEvent("open", () => {
  pill.querySelector(".text").textContent = `Connected · Team ${team} registered`;
  for (const li of pending) li.dataset.sent = "1"; // the queue was flushed
});
client.onEvent("close", () => {
  // Sent but unanswered when the socket went: the verdict will never come.
  for (let i = pending.length - 1; i >= 0; i--) {
    if (pending[i].dataset.sent === "1") {
      pending[i].querySelector(".meta").textContent += " · unconfirmed";
      pending.splice(i, 1);
    }
  }
});

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  const target = Number(to.value);
  const queued = client.state !== "open";
  const ok = client.sendTo(target, text);
  const li = logLine(log, "out", text, `You → Team ${target}${queued ? " · queued" : ""}`);
  if (!queued) li.dataset.sent = "1";
  if (ok) pending.push(li);
  else {
    li.dataset.delivery = "failed";
    li.querySelector(".meta").textContent += " · dropped (offline queue full)";
  }
  input.value = "";
  input.focus();
});
