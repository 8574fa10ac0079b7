// The admin page in Chromium against the real binary with --api-key: the
// key asked for once, live counts, a room found by its code prefix, its
// detail, kick (the member's socket closes with 4003) and close (4004), the
// API's errors shown on the page. The rooms' members are real party
// WebSocket clients run from Node.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { startServer, withBrowser } from "./harness.mjs";

const KEY = "admin-e2e-key-0123456789";
let srv;
before(async () => (srv = await startServer(["--api-key", KEY])));
after(async () => srv?.stop());

/** A raw party client: send(msg), next(type), and `closed`, which resolves with {code, reason}. */
async function member(base) {
  const ws = new WebSocket(`${base}/party`);
  const inbox = [];
  const waiters = [];
  ws.on("message", (d) => {
    const m = JSON.parse(String(d));
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  const closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return {
    ws,
    closed,
    send: (m) => ws.send(JSON.stringify(m)),
    next(type, ms = 10_000) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        const w = { type, resolve };
        waiters.push(w);
        setTimeout(() => {
          const j = waiters.indexOf(w);
          if (j >= 0) waiters.splice(j, 1), reject(new Error(`no ${type} within ${ms} ms`));
        }, ms);
      });
    },
  };
}

const api = (method, path, body) =>
  fetch(`${srv.httpBase}${path}`, {
    method,
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: body && JSON.stringify(body),
  });

/** The shortest prefix of code that no other code starts with. */
function uniquePrefix(code, others) {
  for (let n = 1; n <= code.length; n++) {
    const p = code.slice(0, n);
    if (!others.some((o) => o !== code && o.startsWith(p))) return p;
  }
  return code;
}

test("admin: key, counts, search, detail, kick 4003, close 4004, errors", async () => {
  await withBrowser("admin", async (b) => {
    const page = await b.page(`${srv.httpBase}/admin`);

    // No key yet: the API answers 401 and the page asks for it.
    await page.getByLabel("API key (--api-key)").waitFor();
    assert.match(await page.locator("#error").innerText(), /missing bearer API key/);
    await page.getByLabel("API key (--api-key)").fill(KEY);
    await page.getByLabel("API key (--api-key)").press("Enter");
    await page.locator('#updated[data-state="open"]').waitFor();
    assert.equal(await page.locator("#key-card").isHidden(), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("partyline.admin.key")), "admin-e2e-key-0123456789");

    // Three members in two rooms, with state and metadata.
    const alice = await member(srv.wsBase);
    alice.send({ type: "create", clientId: "alice", maxClients: 4, public: true, metadata: { map: "dust" } });
    const codeA = (await alice.next("created")).room;
    const bob = await member(srv.wsBase);
    bob.send({ type: "join", clientId: "bob", room: codeA });
    await bob.next("joined");
    alice.send({ type: "set_state", state: { round: 3, scores: { alice: 2, bob: 1 } } });
    await bob.next("state");
    alice.send({ type: "send", data: "gl hf" });
    await bob.next("message");
    const carol = await member(srv.wsBase);
    carol.send({ type: "create", clientId: "carol" });
    const codeB = (await carol.next("created")).room;

    // Live counts follow (the page polls every 2 s).
    await page.locator("#c-connections", { hasText: /^3$/ }).waitFor({ timeout: 15_000 });
    await page.locator('#rooms-by dd[data-dialect="party"]', { hasText: /^2$/ }).waitFor();
    await page.locator("#c-in", { hasText: /^\d+\.\d$/ }).waitFor();

    // Search by prefix (typed in lower case) finds room A and not B.
    const prefix = uniquePrefix(codeA, [codeB]);
    await page.getByLabel("Code starts with").fill(prefix.toLowerCase());
    await page.getByLabel("Code starts with").press("Enter");
    await page.locator(`#rooms tr[data-code="${codeA}"]`).waitFor();
    assert.equal(await page.locator("#rooms tr").count(), 1);
    assert.match(await page.locator(`#rooms tr[data-code="${codeA}"]`).innerText(), /2 \/ 4\s+yes[\s\S]*dust/);

    // Its detail, opened from the keyboard.
    await page.getByRole("button", { name: `Open room ${codeA}` }).focus();
    await page.keyboard.press("Enter");
    await page.locator("#d-code", { hasText: codeA }).waitFor();
    assert.deepEqual(await page.locator("#d-clients li").evaluateAll((ls) => ls.map((l) => l.dataset.client)), ["alice", "bob"]);
    assert.match(await page.locator("#d-state").innerText(), /^\d+ bytes$/);
    assert.match(await page.locator("#d-seq").innerText(), /^[1-9]\d*$/);
    assert.ok((await page.locator("#d-epoch").innerText()).length > 0, "the room's epoch is shown");
    assert.match(await page.locator("#d-meta").innerText(), /"map": "dust"/);
    assert.equal(await page.locator("#d-public").innerText(), "yes");

    // Kick bob: Escape cancels the first try, then a reason is given.
    await page.getByRole("button", { name: "Kick bob" }).click();
    await page.locator("#kick-dialog[open]").waitFor();
    await page.keyboard.press("Escape");
    await page.locator("#kick-dialog:not([open])").waitFor({ state: "attached" });
    await page.getByRole("button", { name: "Kick bob" }).click();
    await page.getByLabel("Reason (shown to the player)").fill("cheating");
    await page.locator("#kick-confirm").click();
    assert.deepEqual(await bob.closed, { code: 4003, reason: "cheating" });
    assert.equal((await alice.next("peer_left")).clientId, "bob");
    await page.locator("#notice", { hasText: `Kicked bob from room ${codeA}` }).waitFor();
    await page.locator("#d-clients li", { hasText: "bob" }).waitFor({ state: "detached" });
    await page.locator(`#rooms tr[data-code="${codeA}"]`, { hasText: "1 / 4" }).waitFor();

    // Close the room: Cancel first, then confirm.
    await page.locator("#d-close").click();
    await page.getByRole("button", { name: "Cancel" }).and(page.locator("#close-dialog button")).click();
    await page.locator("#close-dialog:not([open])").waitFor({ state: "attached" });
    assert.equal(alice.ws.readyState, WebSocket.OPEN);
    await page.locator("#d-close").click();
    await page.locator("#close-confirm").click();
    assert.deepEqual(await alice.closed, { code: 4004, reason: "room closed" });
    await page.locator("#notice", { hasText: `Room ${codeA} closed; 1 member disconnected` }).waitFor();
    assert.equal(await page.locator("#detail").isHidden(), true);
    await page.locator(`#rooms tr[data-code="${codeA}"]`).waitFor({ state: "detached" });
    assert.equal((await api("GET", `/api/rooms/${codeA}`)).status, 404);

    // An API error is shown: room B listed, then closed behind the page's back.
    await page.getByLabel("Code starts with").fill("");
    await page.getByRole("button", { name: "Search" }).click();
    await page.locator(`#rooms tr[data-code="${codeB}"]`).waitFor();
    assert.equal((await api("DELETE", `/api/rooms/${codeB}`)).status, 200);
    assert.equal((await carol.closed).code, 4004);
    await page.getByRole("button", { name: `Open room ${codeB}` }).click();
    await page.locator("#error", { hasText: `room not found: ${codeB}` }).waitFor();
    await page.locator("#c-connections", { hasText: /^0$/ }).waitFor({ timeout: 15_000 });
    assert.deepEqual(page.consoleErrors.filter((e) => !/Failed to load resource/.test(e)), []);

    // A wrong key kept in the tab: 403 "wrong API key" asks for the key again.
    await page.evaluate(() => sessionStorage.setItem("partyline.admin.key", "not-the-key"));
    await page.reload();
    await page.getByLabel("API key (--api-key)").waitFor();
    assert.match(await page.locator("#error").innerText(), /wrong API key/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("partyline.admin.key")), null);
  });
});

test("admin: a server without --api-key answers the page on loopback without one", async () => {
  const open = await startServer();
  try {
    await withBrowser("admin keyless", async (b) => {
      const page = await b.page(`${open.httpBase}/admin`);
      await page.locator('#updated[data-state="open"]').waitFor();
      assert.equal(await page.locator("#key-card").isHidden(), true);
      // 55 rooms: a page of 50, then "Load more" follows the cursor.
      const codes = [];
      for (let i = 0; i < 55; i++) {
        const res = await fetch(`${open.httpBase}/api/rooms`, { method: "POST", body: "{}" });
        assert.equal(res.status, 201);
        codes.push((await res.json()).code);
      }
      codes.sort();
      await page.getByRole("button", { name: "Search" }).click();
      await page.locator("#rooms-summary", { hasText: "50 rooms shown; more match." }).waitFor();
      await page.getByRole("button", { name: "Load more" }).click();
      await page.locator("#rooms-summary", { hasText: "55 rooms shown." }).waitFor();
      assert.equal(await page.locator("#more").isHidden(), true);
      assert.deepEqual(await page.locator("#rooms tr").evaluateAll((rs) => rs.map((r) => r.dataset.code)), codes);
      const code = codes[54];
      await page.getByRole("button", { name: `Open room ${code}` }).click();
      await page.locator("#d-clients li", { hasText: "No members" }).waitFor();
      assert.equal(await page.locator("#error").isHidden(), true);
    });
  } finally {
    await open.stop();
  }
});
