// Regenerates the screenshots in docs/img/ (npm run screenshots): starts
// the real binary, drives the pages into a typical state, saves PNGs.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { launch, startServer, repoRoot, SECRET } from "./tests/harness.mjs";
import { hs256 } from "../sdk/js/test/jwt.mjs";

const out = path.join(repoRoot, "docs", "img");
mkdirSync(out, { recursive: true });
const srv = await startServer(["--jwt-secret", SECRET]);
const browser = await launch();
const desktop = { width: 900, height: 600 };
const phone = { width: 375, height: 667 };
async function page(p, viewport = desktop) {
  const ctx = await browser.newContext({ viewport });
  const pg = await ctx.newPage();
  await pg.goto(srv.httpBase + p);
  return pg;
}
const shot = (pg, name) => pg.screenshot({ path: path.join(out, name) });
const type = async (pg, label, text) => {
  await pg.getByLabel(label, { exact: true }).fill(text);
  await pg.getByLabel(label, { exact: true }).press("Enter");
};

try {
  const index = await page("/");
  await index.locator("#listeners", { hasText: "ws://" }).waitFor();
  await shot(index, "index.png");

  const one = await page("/teams/1");
  const two = await page("/teams/2", phone);
  await two.locator('.status[data-state="open"]').waitFor();
  await one.locator("#log li", { hasText: "Team 2 connected" }).waitFor();
  await type(one, "Message", "Hello from Team 1! Ready for the briefing?");
  await two.locator("#log li.in").waitFor();
  await type(two, "Message", "Hi purple team, all set here.");
  await one.locator("#log li.in").waitFor();
  await type(one, "Message", "Great, starting in 5.");
  await two.locator("#log li.in", { hasText: "starting" }).waitFor();
  await shot(one, "teams-1.png");
  await shot(two, "teams-2-phone.png");

  const url = "/party";
  const [a, b, c] = [await page(url), await page(url), await page(url)];
  await a.locator('.status[data-state="open"]').waitFor();
  await a.getByLabel("Your name (clientId)").fill("alice");
  await a.getByRole("button", { name: "Create room" }).click();
  const code = (await a.locator("#room-code").innerText()).trim();
  for (const [p, n] of [[b, "bob"], [c, "carol"]]) {
    await p.getByLabel("Your name (clientId)").fill(n);
    await p.getByLabel("Room code").fill(code);
    await p.getByRole("button", { name: "Join" }).click();
  }
  await a.locator("#peer-count", { hasText: "3" }).waitFor();
  await type(b, "Message", "gg, one more round?");
  await c.getByLabel("New state (JSON)").fill('{"round": 2, "turn": "alice", "scores": {"alice": 3, "bob": 2, "carol": 4}}');
  await c.getByRole("button", { name: "Set state" }).click();
  await a.locator("#state", { hasText: "scores" }).waitFor();
  await type(a, "Message", "yes! my turn");
  await b.locator("#log li.in", { hasText: "my turn" }).waitFor();
  await a.setViewportSize({ width: 900, height: 820 });
  await shot(a, "party.png");

  // The admin page (no --api-key here: a loopback server answers it without
  // one): a few more rooms a matchmaker made, then the party room's detail.
  for (const [max, meta] of [[2, { mode: "duel" }], [8, { mode: "ffa", map: "docks" }], [4, null]]) {
    await fetch(`${srv.httpBase}/api/rooms`, { method: "POST", body: JSON.stringify({ maxClients: max, public: !!meta, metadata: meta ?? undefined }) });
  }
  const admin = await page("/admin", { width: 900, height: 1000 });
  await admin.locator("#c-in", { hasText: /\d\.\d/ }).waitFor();
  await admin.locator(`#rooms tr[data-code="${code}"]`).waitFor();
  await shot(admin, "admin.png");
  await admin.getByRole("button", { name: `Open room ${code}` }).click();
  await admin.locator("#d-clients li", { hasText: "carol" }).waitFor();
  await admin.locator("#detail").scrollIntoViewIfNeeded();
  await admin.locator("#detail").screenshot({ path: path.join(out, "admin-room.png") });

  const alice = await page("/chat");
  const bob = await page("/chat");
  for (const [p, n] of [[alice, "alice"], [bob, "bob"]]) {
    await p.getByLabel(/^Token/).fill(hs256(SECRET, { username: n }));
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.locator('.status[data-state="open"]').waitFor();
  }
  await bob.getByLabel("Join group (id)").fill("hikers");
  await bob.getByLabel("Join group (id)").press("Enter");
  await alice.getByLabel("Join group (id)").fill("hikers");
  await alice.getByLabel("Join group (id)").press("Enter");
  await type(bob, "Message", "Trail at 9 tomorrow?");
  await alice.locator("#log li.in", { hasText: "Trail" }).waitFor();
  await alice.getByLabel("Chat with (username)").fill("bob");
  await alice.getByLabel("Chat with (username)").press("Enter");
  await type(alice, "Message", "Bringing the map, see you there");
  await bob.getByRole("button", { name: /alice, online, 1 unread/ }).waitFor();
  await bob.getByRole("button", { name: /alice/ }).click();
  await type(bob, "Message", "Perfect, see you!");
  await alice.locator("#log li.in", { hasText: "Perfect" }).waitFor();
  await alice.getByRole("button", { name: /bob, online/ }).waitFor();
  await alice.setViewportSize({ width: 900, height: 700 });
  await shot(alice, "chat.png");

  // The reconnect, as the user sees it.
  await srv.kill("SIGKILL");
  await one.locator(".status .text", { hasText: /attempt 2/ }).waitFor();
  await shot(one, "teams-1-reconnecting.png");
} finally {
  await browser.close();
  await srv.stop();
}
console.log("screenshots in", out);
