// README.md "Try it": each ```js snippet, pasted whole into a browser
// console as a reader would, against the built binary. Snippet n runs in
// tab n (the README's "in a second tab"); the room code the first tab got
// replaces the README's example code.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { startServer, withBrowser, repoRoot } from "./harness.mjs";

let srv;
before(async () => (srv = await startServer()));
after(async () => srv?.stop());

/** The ```js blocks of README.md, in order. */
function snippets() {
  const md = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  return [...md.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

/** Resolves with the first console.log object of page that pred accepts. */
function logged(page, pred, what) {
  const p = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no console.log of ${what} within 10 s`)), 10_000);
    page.on("console", async (m) => {
      const v = await m.args()[0]?.jsonValue().catch(() => undefined);
      if (v && typeof v === "object" && pred(v)) {
        clearTimeout(timer);
        resolve(v);
      }
    });
  });
  p.catch(() => {}); // a test that failed earlier does not await it
  return p;
}

/** Pastes code into page's console: DevTools' own evaluation (REPL mode, not subject to the page's CSP). */
async function paste(page, code) {
  const cdp = await page.context().newCDPSession(page);
  const r = await cdp.send("Runtime.evaluate", { expression: code, replMode: true });
  if (r.exceptionDetails) throw new Error(`the snippet threw: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
  return cdp;
}

test("README 'Try it': every snippet works pasted whole", async () => {
  const [create, join, ...rest] = snippets();
  assert.ok(create && join, "README.md has the two 'Try it' snippets");
  assert.deepEqual(rest, [], "a new ```js snippet in README.md needs a step in this test");
  const local = (code) => code.replaceAll("ws://localhost:8080", srv.wsBase);

  await withBrowser("readme snippets", async (b) => {
    const first = await b.page(`${srv.httpBase}/`);
    const created = logged(first, (m) => m.type === "created", "created");
    const firstConsole = await paste(first, local(create));
    const { room } = await created;
    assert.match(room, /^[A-Z0-9]{4}$/);

    const second = await b.page(`${srv.httpBase}/`);
    const joined = logged(second, (m) => m.type === "joined", "joined");
    const moved = logged(first, (m) => m.type === "message", "the second tab's message");
    assert.ok(/"k7qx"/.test(join), "the join snippet names the example code k7qx");
    const secondConsole = await paste(second, local(join).replaceAll('"k7qx"', JSON.stringify(room.toLowerCase())));
    const j = await joined;
    assert.equal(j.room, room);
    assert.equal(j.clients.length, 2);
    const m = await moved;
    assert.deepEqual(m.data, { move: "left" });
    assert.equal(m.from, j.clients[1]);
    for (const [p, cdp] of [[first, firstConsole], [second, secondConsole]]) {
      assert.deepEqual(p.consoleErrors, [], "no error (InvalidStateError: Still in CONNECTING state ...)");
      const { result } = await cdp.send("Runtime.evaluate", { expression: "ws.readyState", replMode: true });
      assert.equal(result.value, 1, "the socket stays open");
    }
  });
});
