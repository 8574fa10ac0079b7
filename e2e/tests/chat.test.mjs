// The chat page: sign in with a token, one-to-one and group conversations,
// history, presence dots.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, withBrowser, waitState, SECRET } from "./harness.mjs";
import { hs256 } from "../../sdk/js/test/jwt.mjs";

let srv;
before(async () => (srv = await startServer(["--jwt-secret", SECRET, "--presence-grace", "300ms"])));
after(async () => srv?.stop());

async function signIn(page, username) {
  await page.getByLabel(/^Token/).fill(hs256(SECRET, { username }));
  await page.getByRole("button", { name: "Sign in" }).click();
  await waitState(page, "open");
  await page.locator("#whoami", { hasText: username }).waitFor();
}

test("two users: direct messages with presence, history after a reload, a group", async () => {
  await withBrowser("chat", async (b) => {
    const url = `${srv.httpBase}/chat`;
    const alice = await b.page(url);
    const bob = await b.page(url, { viewport: { width: 390, height: 844 } });
    await signIn(alice, "alice");

    // Alice opens a chat with Bob, who is offline: grey dot.
    await alice.getByLabel("Chat with (username)").fill("bob");
    await alice.getByLabel("Chat with (username)").press("Enter");
    await alice.getByRole("heading", { name: "Chat with bob" }).waitFor();
    await alice.getByRole("button", { name: "bob, offline" }).waitFor();

    await signIn(bob, "bob");
    await alice.getByRole("button", { name: "bob, online" }).waitFor();
    assert.equal(await alice.locator('.presence[data-status="online"]').count(), 1);

    await alice.getByLabel("Message", { exact: true }).fill("hi bob, it's alice");
    await alice.getByLabel("Message", { exact: true }).press("Enter");
    await alice.locator('#log li.out[data-delivery="sent"]', { hasText: "hi bob, it's alice" }).waitFor();

    // Bob gets a new conversation with an unread badge; opening it shows the history.
    await bob.getByRole("button", { name: "alice, online, 1 unread" }).click();
    await bob.locator("#log li.in", { hasText: "hi bob, it's alice" }).waitFor();
    await bob.getByLabel("Message", { exact: true }).fill("hey alice");
    await bob.getByRole("button", { name: "Send" }).click();
    await alice.locator("#log li.in", { hasText: "hey alice" }).waitFor();

    // Reload: the token is kept for the tab, the conversation list and history come back.
    await alice.reload();
    await waitState(alice, "open");
    await alice.getByRole("button", { name: /^bob, / }).click();
    await alice.locator("#log li.out", { hasText: "hi bob, it's alice" }).waitFor();
    await alice.locator("#log li.in", { hasText: "hey alice" }).waitFor();

    // A group.
    await bob.getByLabel("Join group (id)").fill("hikers");
    await bob.getByLabel("Join group (id)").press("Enter");
    await bob.getByRole("heading", { name: "Group hikers" }).waitFor();
    await alice.getByLabel("Join group (id)").fill("hikers");
    await alice.getByLabel("Join group (id)").press("Enter");
    await bob.locator("#log li", { hasText: "alice joined group hikers" }).waitFor();
    await alice.getByLabel("Message", { exact: true }).fill("trail at 9?");
    await alice.getByLabel("Message", { exact: true }).press("Enter");
    await bob.locator("#log li.in", { hasText: "trail at 9?" }).waitFor();

    // Bob signs out: Alice sees him go offline.
    await bob.getByRole("button", { name: "Sign out" }).click();
    await alice.getByRole("button", { name: "bob, offline" }).waitFor({ timeout: 10_000 });
  });
});

test("a long conversation pages back with 'Load older messages'", async () => {
  await withBrowser("chat paging", async (b) => {
    const page = await b.page(`${srv.httpBase}/chat`);
    await signIn(page, "pager");
    // 55 messages to dan through the page's own SDK client, each acknowledged.
    await page.evaluate(async () => {
      const { chat } = window.partyline;
      for (let i = 0; i < 55; i++) {
        const ack = chat.next("SUCCESS");
        chat.sendDirect("dan", `m${i}`);
        await ack;
      }
    });
    await page.getByLabel("Chat with (username)").fill("dan");
    await page.getByLabel("Chat with (username)").press("Enter");
    await page.locator("#log li", { hasText: "m54" }).waitFor();
    const texts = async () => (await page.locator("#log li").allInnerTexts()).map((t) => t.split("\n").pop().trim());
    assert.equal((await texts()).length, 50, "the newest 50 first");
    assert.equal((await texts())[0], "m5");
    await page.getByRole("button", { name: "Load older messages" }).click();
    await page.locator("#log li", { hasText: "m0" }).waitFor();
    const all = await texts();
    assert.deepEqual(all, Array.from({ length: 55 }, (_, i) => `m${i}`));
    await page.locator("#older-p").waitFor({ state: "hidden" });
  });
});

test("a token with a bad signature is refused and the page says so", async () => {
  await withBrowser("chat bad token", async (b) => {
    const page = await b.page(`${srv.httpBase}/chat`);
    await page.getByLabel(/^Token/).fill(hs256("not-the-server-secret-0000000000", { username: "mallory" }));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#signin-err", { hasText: /authentication failed|4401/i }).waitFor();
    assert.equal(await page.locator("#app").isHidden(), true);
  });
});

test("a second device joins a group it is already in: the history, no error; one time format; the token hint", async () => {
  await withBrowser("chat second device", async (b) => {
    const url = `${srv.httpBase}/chat`;
    const one = await b.page(url);
    const two = await b.page(url);
    assert.match(await two.locator("#signin").innerText(), /partyline token --user NAME/);
    await signIn(one, "dana");
    await one.getByLabel("Join group (id)").fill("climbers");
    await one.getByLabel("Join group (id)").press("Enter");
    await one.getByRole("heading", { name: "Group climbers" }).waitFor();
    await one.getByLabel("Message", { exact: true }).fill("from the first device");
    await one.getByLabel("Message", { exact: true }).press("Enter");
    await one.locator('#log li.out[data-delivery="sent"]', { hasText: "from the first device" }).waitFor();

    await signIn(two, "dana");
    await two.getByLabel("Join group (id)").fill("climbers");
    await two.getByLabel("Join group (id)").press("Enter");
    // The JOIN_GROUP's reply comes before the history page: once the
    // history shows, an error for the join would be shown too.
    await two.locator("#log li.out", { hasText: "from the first device" }).waitFor();
    assert.equal(await two.locator("#log li.error").count(), 0, await two.locator("#log").innerText());

    // A live message looks like one from the history.
    await one.getByLabel("Message", { exact: true }).fill("live now");
    await one.getByLabel("Message", { exact: true }).press("Enter");
    await two.locator("#log li.out", { hasText: "live now" }).waitFor();
    const shape = async (text) => {
      const meta = await two.locator("#log li", { hasText: text }).locator(".meta").innerText();
      return meta.replace(/\d/g, "9");
    };
    assert.equal(await shape("live now"), await shape("from the first device"));
    assert.deepEqual(one.consoleErrors, []);
    assert.deepEqual(two.consoleErrors, []);
  });
});
