// The two team pages exchange messages in a real browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, withBrowser, waitState } from "./harness.mjs";

let srv;
before(async () => (srv = await startServer()));
after(async () => srv?.stop());

test("Team 1 (purple) and Team 2 (pink) exchange messages", async () => {
  await withBrowser("teams exchange", async (b) => {
    const one = await b.page(`${srv.httpBase}/teams/1`);
    const two = await b.page(`${srv.httpBase}/teams/2`);
    for (const p of [one, two]) await waitState(p, "open");
    await one.getByText("Connected · Team 1 registered").waitFor();
    // Team 1 hears that Team 2 came online.
    await one.locator("#log li", { hasText: "Team 2 connected" }).waitFor();

    // The themes: purple header for Team 1, pink for Team 2.
    const bg = (p) => p.locator("header.bar").evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(await bg(one), "rgb(107, 33, 168)");
    assert.equal(await bg(two), "rgb(190, 24, 93)");
    assert.equal(await one.locator("h1").innerText(), "Team 1");

    // Keyboard only: the message box is labelled; Enter sends.
    await one.getByLabel("Message", { exact: true }).fill("Hello from Team 1!");
    await one.getByLabel("Message", { exact: true }).press("Enter");
    await two.locator("#log li.in", { hasText: "Hello from Team 1!" }).waitFor();
    assert.match(await two.locator("#log li.in").last().innerText(), /Team 1/);
    await one.locator("#log li", { hasText: "Message delivered to Team 2" }).waitFor();
    await one.locator('#log li.out[data-delivery="delivered"]', { hasText: "Hello from Team 1!" }).waitFor();

    await two.getByLabel("Message", { exact: true }).fill("Hi back from pink");
    await two.getByRole("button", { name: "Send" }).click();
    await one.locator("#log li.in", { hasText: "Hi back from pink" }).waitFor();

    // Team 2 leaves: Team 1 is told, and a message to it is refused visibly.
    await two.context().close();
    await one.locator("#log li", { hasText: "Team 2 disconnected" }).waitFor();
    await one.getByLabel("Message", { exact: true }).fill("anyone?");
    await one.getByLabel("Message", { exact: true }).press("Enter");
    await one.locator("#log li.error", { hasText: "Team 2 is not connected" }).waitFor();
    await one.locator('#log li.out[data-delivery="failed"]', { hasText: "anyone?" }).waitFor();
    assert.deepEqual(one.consoleErrors, []);
  });
});

test("with --teams 3 the index links Team 3 and its page can send to teams 1 and 2", async () => {
  const three = await startServer(["--teams", "3"]);
  try {
    await withBrowser("teams three", async (b) => {
      const index = await b.page(`${three.httpBase}/`);
      await index.getByRole("link", { name: /Team 3/ }).waitFor();
      const p3 = await b.page(`${three.httpBase}/teams/3`);
      const p1 = await b.page(`${three.httpBase}/teams/1`);
      await p3.getByText("Connected · Team 3 registered").waitFor();
      await waitState(p1, "open");
      assert.deepEqual(await p3.getByLabel("To").locator("option").allInnerTexts(), ["Team 1", "Team 2"]);
      await p3.getByLabel("To").selectOption("1");
      await p3.getByLabel("Message", { exact: true }).fill("from the third team");
      await p3.getByLabel("Message", { exact: true }).press("Enter");
      await p1.locator("#log li.in", { hasText: "from the third team" }).waitFor();
    });
  } finally {
    await three.stop();
  }
});
