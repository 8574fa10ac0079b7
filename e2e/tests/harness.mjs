// Browser-test harness: Debian's Chromium through playwright-core, the real
// partyline binary (sdk/js/test/server.mjs builds and starts it), and a
// screenshot of every open page into test-output/ when a test fails.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startServer, repoRoot, flags } from "../../sdk/js/test/server.mjs";

export { startServer, repoRoot, flags };
export const outDir = path.join(repoRoot, "test-output");
export const SECRET = "e2e-secret-e2e-secret-e2e-secret-0";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

/** Launches headless Chromium with the flags this machine needs (no network beyond loopback). */
export function launch() {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Runs fn(ctx) with a fresh browser; ctx.page(url, opts) opens a page in a
 * new context (its own storage). On failure every page is saved to
 * test-output/<name>-<n>.png, then the error is rethrown.
 */
export async function withBrowser(name, fn) {
  const browser = await launch();
  const pages = [];
  const ctx = {
    browser,
    pages,
    async page(url, { viewport = { width: 1000, height: 760 } } = {}) {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      page.consoleErrors = [];
      page.on("console", (m) => m.type() === "error" && page.consoleErrors.push(m.text()));
      page.on("pageerror", (e) => page.consoleErrors.push(String(e)));
      pages.push(page);
      if (url) await page.goto(url);
      return page;
    },
  };
  try {
    await fn(ctx);
  } catch (e) {
    mkdirSync(outDir, { recursive: true });
    const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
    for (const [i, p] of pages.entries()) {
      try {
        const file = path.join(outDir, `${slug}-${i + 1}.png`);
        await p.screenshot({ path: file, fullPage: true });
        console.error(`screenshot: ${file} (${p.url()})`);
      } catch {
        /* page already gone */
      }
    }
    throw e;
  } finally {
    await browser.close();
  }
}

/** The text of a page's log (one line per entry). */
export const logText = (page, sel = "#log") => page.locator(sel).innerText();

/** Waits until the status pill says `state` (open, reconnecting, ...). */
export async function waitState(page, state, timeout = 10_000) {
  await page.locator(`.status[data-state="${state}"]`).waitFor({ timeout });
}

/**
 * The party page's room code, once the server's "created" or "joined" has
 * filled it in (the element exists, empty, before that).
 */
export async function roomCode(page, timeout = 10_000) {
  const el = page.locator("#room-code", { hasText: /^\s*[A-HJKMNP-Z2-9]{4}\s*$/ });
  await el.waitFor({ timeout });
  return (await el.innerText()).trim();
}
