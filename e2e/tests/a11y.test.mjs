// Every page on a phone-sized screen: no sideways scrolling, every control
// labelled, keyboard reachable; unknown pages are 404s.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, withBrowser, SECRET } from "./harness.mjs";

let srv;
before(async () => (srv = await startServer(["--jwt-secret", SECRET])));
after(async () => srv?.stop());

const paths = ["/", "/teams/1", "/teams/2", "/party", "/chat", "/admin"];

test("pages fit a phone screen and every control has a label", async () => {
  await withBrowser("a11y", async (b) => {
    for (const p of paths) {
      const page = await b.page(`${srv.httpBase}${p}`, { viewport: { width: 360, height: 640 } });
      await page.waitForLoadState("networkidle");
      const r = await page.evaluate(() => {
        const unlabelled = [...document.querySelectorAll("input, select, textarea")]
          .filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label"))
          .map((e) => e.id || e.outerHTML);
        const nameless = [...document.querySelectorAll("button")]
          .filter((e) => !(e.innerText.trim() || e.getAttribute("aria-label")))
          .map((e) => e.outerHTML);
        return {
          lang: document.documentElement.lang,
          title: document.title,
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          unlabelled,
          nameless,
          h1: document.querySelectorAll("h1").length,
        };
      });
      assert.equal(r.lang, "en", p);
      assert.ok(r.title, `${p} has a title`);
      assert.ok(r.overflow <= 0, `${p} scrolls sideways by ${r.overflow}px on a 360px screen`);
      assert.deepEqual(r.unlabelled, [], `${p}: unlabelled controls`);
      assert.deepEqual(r.nameless, [], `${p}: buttons without a name`);
      assert.equal(r.h1, 1, `${p} has one h1`);
      assert.deepEqual(page.consoleErrors, [], `${p}: console errors`);
      await page.context().close();
    }
  });
});

test("the team page's message box is reachable with Tab", async () => {
  await withBrowser("a11y keyboard", async (b) => {
    const page = await b.page(`${srv.httpBase}/teams/1`);
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.id === "text");
    }
    assert.ok(reached, "Tab reaches the message box");
  });
});

test("the HTTP side still answers its own routes, and unknown pages are 404", async () => {
  const get = (p) => fetch(`${srv.httpBase}${p}`);
  assert.equal((await get("/healthz")).status, 200);
  assert.equal((await get("/metrics")).status, 200);
  assert.equal((await get("/api/rooms/ZZZZ")).status, 404);
  assert.equal((await get("/nope")).status, 404);
  assert.equal((await get("/teams/abc")).status, 404);
  const cfg = await (await get("/config.json")).json();
  assert.equal(cfg.listeners[0].port, srv.wsPort);
  assert.ok(cfg.dialects.includes("party"));
  const sdk = await get("/sdk/index.js");
  assert.equal(sdk.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.match(await sdk.text(), /export \* from "\.\/party\.js"/);
  const page = await get("/party");
  assert.match(page.headers.get("content-security-policy"), /connect-src 'self' ws: wss:/);
});
