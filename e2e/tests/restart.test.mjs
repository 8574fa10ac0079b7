// The server is killed and restarted on the same ports: the pages show the
// reconnect and carry on.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, withBrowser, waitState, roomCode } from "./harness.mjs";

let srv;
before(async () => (srv = await startServer()));
after(async () => srv?.stop());

test("kill -9 and restart: team pages reconnect, re-register and talk; party pages get their room back and keep their log", async () => {
  await withBrowser("restart", async (b) => {
    const one = await b.page(`${srv.httpBase}/teams/1`);
    const two = await b.page(`${srv.httpBase}/teams/2`);
    const party = await b.page(`${srv.httpBase}/party`);
    const friend = await b.page(`${srv.httpBase}/party`);
    for (const p of [one, two, party, friend]) await waitState(p, "open");
    await party.getByLabel("Your name (clientId)").fill("survivor");
    await party.getByRole("button", { name: "Create room" }).click();
    const code = await roomCode(party);
    await friend.getByLabel("Your name (clientId)").fill("friend");
    await friend.getByLabel("Room code").fill(code);
    await friend.getByRole("button", { name: "Join" }).click();
    await party.locator("#peer-count", { hasText: "2" }).waitFor();
    await friend.getByLabel("Message", { exact: true }).fill("party before the crash");
    await friend.getByLabel("Message", { exact: true }).press("Enter");
    await party.locator("#log li.in", { hasText: "party before the crash" }).waitFor();

    await one.getByLabel("Message", { exact: true }).fill("before the crash");
    await one.getByLabel("Message", { exact: true }).press("Enter");
    await two.locator("#log li.in", { hasText: "before the crash" }).waitFor();

    await srv.kill("SIGKILL");
    // Every page shows that it lost the server and is retrying, with a countdown and a button.
    for (const p of [one, two, party]) {
      await waitState(p, "reconnecting");
      await p.locator(".status .text", { hasText: /Reconnecting in \d+\.\d s \(attempt \d+\)/ }).waitFor();
      assert.equal(await p.getByRole("button", { name: "Reconnect now" }).isVisible(), true);
      await p.locator("#log li", { hasText: "Connection lost" }).waitFor();
    }
    // The HTTP side is down too: the pages stay usable and keep retrying.
    await one.waitForTimeout(1500);

    await srv.restart();
    for (const p of [one, two, party]) {
      await waitState(p, "open", 20_000);
      await p.locator("#log li", { hasText: "Reconnected" }).waitFor();
      assert.equal(await p.getByRole("button", { name: "Reconnect now" }).isVisible(), false);
    }
    // The team pages re-registered by themselves and carry on.
    await one.locator(".status .text", { hasText: "Team 1 registered" }).waitFor();
    await two.getByLabel("Message", { exact: true }).fill("after the restart");
    await two.getByLabel("Message", { exact: true }).press("Enter");
    await one.locator("#log li.in", { hasText: "after the restart" }).waitFor();
    await two.locator('#log li.out[data-delivery="delivered"]', { hasText: "after the restart" }).waitFor();

    // Party rooms are persisted in --data-dir: both pages take their seats back
    // with their tokens (recovered, unless the crash took the last interval).
    for (const p of [party, friend]) {
      await waitState(p, "open", 20_000);
      await p.locator("#log li.system", { hasText: `Rejoined room ${code}:` }).waitFor();
      assert.equal(await p.locator("#room-code").innerText(), code);
    }
    await friend.getByLabel("Message", { exact: true }).fill("party after the restart");
    await friend.getByLabel("Message", { exact: true }).press("Enter");
    await party.locator("#log li.in", { hasText: "party after the restart" }).waitFor();
    await party.locator('#peers li[data-peer="friend"]:not(.away)').waitFor();
    // A reload after all that shows the same log, each message once.
    await party.reload();
    await party.locator("#room-code", { hasText: code }).waitFor();
    await waitState(party, "open");
    await party.waitForTimeout(300);
    for (const text of ["party before the crash", "party after the restart"]) {
      assert.equal(await party.locator("#log li.in", { hasText: text }).count(), 1, text);
    }
  });
});

test("'Reconnect now' skips the backoff wait", async () => {
  await withBrowser("reconnect now", async (b) => {
    const one = await b.page(`${srv.httpBase}/teams/1`);
    await waitState(one, "open");
    await srv.kill("SIGKILL");
    // Let the backoff grow past several seconds.
    await one.locator(".status .text", { hasText: /attempt [5-9]/ }).waitFor({ timeout: 20_000 });
    await srv.restart();
    const t0 = Date.now();
    await one.getByRole("button", { name: "Reconnect now" }).click();
    await waitState(one, "open", 5000);
    assert.ok(Date.now() - t0 < 3000, "reconnected at once, not after the backoff");
  });
});
