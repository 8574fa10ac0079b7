// A party room with three browser contexts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, withBrowser, waitState, roomCode, flags } from "./harness.mjs";

let srv;
before(async () => (srv = await startServer()));
after(async () => srv?.stop());

async function enterAs(page, name) {
  await page.getByLabel("Your name (clientId)").fill(name);
}

test("three players: create, join by code, broadcast, whisper, shared state", async () => {
  await withBrowser("party three players", async (b) => {
    const url = `${srv.httpBase}/party`;
    const alice = await b.page(url);
    const bob = await b.page(url);
    const carol = await b.page(url, { viewport: { width: 390, height: 844 } }); // a phone
    for (const p of [alice, bob, carol]) await waitState(p, "open");

    await enterAs(alice, "alice");
    await alice.getByRole("button", { name: "Create room" }).click();
    const code = await roomCode(alice);
    assert.match(code, /^[A-HJKMNP-Z2-9]{4}$/);

    // Bob joins by mouse with a lower-case code; Carol by keyboard only.
    await enterAs(bob, "bob");
    await bob.getByLabel("Room code").fill(code.toLowerCase());
    await bob.getByRole("button", { name: "Join" }).click();
    await enterAs(carol, "carol");
    await carol.getByLabel("Room code").focus();
    await carol.keyboard.type(code);
    await carol.keyboard.press("Enter");

    for (const p of [alice, bob, carol]) {
      await p.locator("#peer-count", { hasText: "3" }).waitFor();
      assert.deepEqual(await p.locator("#peers li").allInnerTexts().then((t) => t.map((x) => x.split("\n")[0].trim())),
        ["alice", "bob", "carol"]);
    }
    await alice.locator("#log li", { hasText: "carol joined" }).waitFor();

    // Broadcast from Alice reaches both others.
    await alice.getByLabel("Message", { exact: true }).fill("hello everyone");
    await alice.getByLabel("Message", { exact: true }).press("Enter");
    for (const p of [bob, carol]) await p.locator("#log li.in", { hasText: "hello everyone" }).waitFor();

    // Bob whispers to Carol: Alice never sees it.
    await bob.getByLabel("To").selectOption("carol");
    await bob.getByLabel("Message", { exact: true }).fill("just for carol");
    await bob.getByRole("button", { name: "Send" }).click();
    await carol.locator("#log li.in", { hasText: "just for carol" }).waitFor();
    await alice.waitForTimeout(300);
    assert.equal(await alice.locator("#log li", { hasText: "just for carol" }).count(), 0);

    // Carol sets the retained state; everyone sees it, and so does a late joiner.
    await carol.getByLabel("New state (JSON)").fill('{"round": 2, "turn": "bob"}');
    await carol.getByRole("button", { name: "Set state" }).click();
    for (const p of [alice, bob, carol]) await p.locator("#state", { hasText: '"turn": "bob"' }).waitFor();

    // Carol leaves: the others see it.
    await carol.getByRole("button", { name: "Leave room" }).click();
    for (const p of [alice, bob]) {
      await p.locator("#log li", { hasText: "carol left" }).waitFor();
      await p.locator("#peer-count", { hasText: "2" }).waitFor();
    }
    // Invalid JSON state is caught on the page.
    await alice.getByLabel("New state (JSON)").fill("{nope");
    await alice.getByRole("button", { name: "Set state" }).click();
    await alice.locator("#state-err", { hasText: "Not valid JSON" }).waitFor();
    for (const p of [alice, bob, carol]) assert.deepEqual(p.consoleErrors, []);
  });
});

test("a page reload takes its place in the room again with its token and keeps the message log", async () => {
  await withBrowser("party reload", async (b) => {
    const url = `${srv.httpBase}/party`;
    const host = await b.page(url);
    const guest = await b.page(url);
    await waitState(host, "open");
    await enterAs(host, "host");
    await host.getByRole("button", { name: "Create room" }).click();
    const code = await roomCode(host);
    await enterAs(guest, "guest");
    await guest.getByLabel("Room code").fill(code);
    await guest.getByRole("button", { name: "Join" }).click();
    await host.locator("#peer-count", { hasText: "2" }).waitFor();
    await host.getByLabel("Message", { exact: true }).fill("before the reload");
    await host.getByLabel("Message", { exact: true }).press("Enter");
    await guest.locator("#log li.in", { hasText: "before the reload" }).waitFor();
    await guest.getByLabel("Message", { exact: true }).fill("mine, before");
    await guest.getByLabel("Message", { exact: true }).press("Enter");
    await guest.reload();
    await guest.locator("#room-code", { hasText: code }).waitFor();
    await guest.locator("#peer-count", { hasText: "2" }).waitFor();
    await host.getByLabel("Message", { exact: true }).fill("still there?");
    await host.getByLabel("Message", { exact: true }).press("Enter");
    await guest.locator("#log li.in", { hasText: "still there?" }).waitFor();
    // The log came back from sessionStorage, each line once, in order.
    assert.equal(await guest.locator("#log li.in", { hasText: "before the reload" }).count(), 1);
    assert.equal(await guest.locator("#log li.out", { hasText: "mine, before" }).count(), 1);
    const lines = await guest.locator("#log li").allInnerTexts();
    const at = (t) => lines.findIndex((l) => l.includes(t));
    assert.ok(at("before the reload") < at("mine, before") && at("mine, before") < at("still there?"), lines.join(" | "));
    assert.deepEqual(guest.consoleErrors, []);
  });
});

test("a peer whose socket drops is shown reconnecting… until it is back, then gone after the seat grace; a page shows its own reconnecting state", async () => {
  // Seats kept for a member whose socket dropped (peer_away / peer_back) need
  // a server with party offsets; without them only the page's own state is checked.
  const offsets = flags().has("party-seat-grace");
  const own = await startServer(offsets ? ["--party-seat-grace", "3s"] : []);
  try {
    await withBrowser("party away", async (b) => {
      const url = `${own.httpBase}/party`;
      const host = await b.page(url);
      const guest = await b.page(url);
      await waitState(host, "open");
      await enterAs(host, "host");
      await host.getByRole("button", { name: "Create room" }).click();
      const code = await roomCode(host);
      await enterAs(guest, "guest");
      await guest.getByLabel("Room code").fill(code);
      await guest.getByRole("button", { name: "Join" }).click();
      await host.locator("#peer-count", { hasText: "2" }).waitFor();

      // The guest's network goes away and its socket with it.
      await guest.context().setOffline(true);
      await guest.evaluate(() => window.partyline["ws"].close());
      await guest.locator("#peers li.me", { hasText: "you · reconnecting…" }).waitFor();
      if (offsets) {
        const marker = host.locator('#peers li.away[data-peer="guest"]', { hasText: "reconnecting…" });
        await marker.waitFor();
        await host.locator("#log li", { hasText: "guest lost the connection" }).waitFor();
        assert.equal(await host.locator("#peer-count").innerText(), "2", "the seat is kept");
        await host.getByLabel("Message", { exact: true }).fill("while you were away");
        await host.getByLabel("Message", { exact: true }).press("Enter");
      }
      await guest.context().setOffline(false);
      await waitState(guest, "open");
      await guest.locator("#peers li.me", { hasText: /^\s*guest\s*you\s*$/ }).waitFor();
      if (offsets) {
        await host.locator("#log li", { hasText: "guest is back" }).waitFor();
        assert.equal(await host.locator('#peers li.away[data-peer="guest"]').count(), 0);
        await guest.locator("#log li.in", { hasText: "while you were away" }).waitFor();
        await guest.locator("#log li", { hasText: `Rejoined room ${code}: nothing was lost` }).waitFor();
        await guest.waitForTimeout(300);
        assert.equal(await guest.locator("#log li.in", { hasText: "while you were away" }).count(), 1);

        // The guest's tab goes away for good: marked, then removed when the grace ends.
        await guest.close();
        await host.locator('#peers li.away[data-peer="guest"]').waitFor();
        await host.locator("#log li", { hasText: "guest left" }).waitFor({ timeout: 10_000 });
        await host.locator("#peer-count", { hasText: "1" }).waitFor();
        assert.equal(await host.locator('#peers li[data-peer="guest"]').count(), 0);
      }
      assert.deepEqual(host.consoleErrors, []);
    });
  } finally {
    await own.stop();
  }
});

test("an unknown room code is reported once; the form shows the server's cap; form details", async () => {
  const own = await startServer(["--party-max-clients", "12"]);
  try {
    await withBrowser("party unknown room", async (b) => {
      const page = await b.page(`${own.httpBase}/party`);
      await waitState(page, "open");
      await page.locator('#max[placeholder="up to 12"][max="12"]').waitFor();
      assert.equal(await page.locator("form#join.row.mt").count(), 1, "the join form keeps its margin");

      await enterAs(page, "zed");
      await page.getByLabel("Room code").fill("ZZZZ");
      await page.getByRole("button", { name: "Join" }).click();
      await page.locator("#log li.error").first().waitFor();
      // Anything the failed join would still report comes before the next
      // room is entered: then the error must be there once.
      await page.getByRole("button", { name: "Create room" }).click();
      await page.locator("#log li", { hasText: "You are in room" }).waitFor();
      const errors = await page.locator("#log li.error").allInnerTexts();
      assert.equal(errors.length, 1, errors.join(" | "));
      assert.match(errors[0], /room not found/i);

      // An invalid state is an error, not a muted note, and the button sits within the form.
      await page.getByLabel("New state (JSON)").fill("{nope");
      await page.getByRole("button", { name: "Set state" }).click();
      await page.locator("#state-err", { hasText: "Not valid JSON" }).waitFor();
      const [errColor, mutedColor] = await page.evaluate(() => [
        getComputedStyle(document.getElementById("state-err")).color,
        getComputedStyle(document.querySelector(".muted")).color,
      ]);
      assert.notEqual(errColor, mutedColor, "the state error is styled as an error");
      const area = await page.locator("#state-input").boundingBox();
      const btn = await page.locator("#state-btn").boundingBox();
      assert.ok(btn.x >= area.x && btn.x + btn.width <= area.x + area.width && btn.y >= area.y + area.height,
        `Set state ${JSON.stringify(btn)} lies below and within the textarea ${JSON.stringify(area)}`);
      assert.deepEqual(page.consoleErrors, []);
    });
  } finally {
    await own.stop();
  }
});
