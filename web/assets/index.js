const health = document.getElementById("health");
fetch("/healthz").then((r) => r.json()).then(
  (h) => (health.textContent = h.status === "ok" ? "Server healthy" : "Server status: " + h.status),
  () => (health.textContent = "Server unreachable"),
);
fetch("/config.json").then((r) => r.json()).then((cfg) => {
  for (const li of document.querySelectorAll("#pages li")) {
    if (li.dataset.dialect && !cfg.dialects.includes(li.dataset.dialect)) li.remove();
  }
  // More than two teams (--teams N): link the others too (up to 12).
  const two = document.querySelector('#pages a[href="/teams/2"]')?.parentElement;
  for (let t = Math.min(cfg.teams ?? 2, 12); two && t > 2; t--) {
    const a = document.createElement("a");
    a.href = `/teams/${t}`;
    a.append(Object.assign(document.createElement("strong"), { textContent: `Team ${t}` }), "Another team client.");
    const li = document.createElement("li");
    li.dataset.dialect = "teams";
    li.append(a);
    two.after(li);
  }
  const host = location.hostname;
  document.getElementById("listeners").textContent = "WebSocket listeners: " + cfg.listeners
    .map((l) => `ws://${host}:${l.port}/` + (l.dialect ? ` (every path is ${l.dialect})` : " (dialect by path)"))
    .join(", ") + ". Dialects: " + cfg.dialects.join(", ") + ".";
}, () => (document.getElementById("listeners").textContent = "Could not load /config.json."));
