// Choosing the WebSocket URL from a page's location and /config.json.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dialectURL, urlFromConfig } from "../dist/index.js";

const page = { protocol: "http:", hostname: "game.example" };

test("dialectURL appends the dialect and an encoded channel name", () => {
  assert.equal(dialectURL("ws://h:8080", "party"), "ws://h:8080/party");
  assert.equal(dialectURL("ws://h:8080/", "teams"), "ws://h:8080/teams");
  assert.equal(dialectURL("wss://h", "channels", "fish & chips"), "wss://h/channels/fish%20%26%20chips");
});

test("a path-routing listener is preferred; the page's host name is used", () => {
  const cfg = {
    dialects: ["party", "chat"],
    listeners: [
      { port: 4000, host: "", dialect: "chat" },
      { port: 8080, host: "0.0.0.0", dialect: "" },
    ],
  };
  assert.equal(urlFromConfig(cfg, "chat", page), "ws://game.example:8080/chat");
  assert.equal(urlFromConfig(cfg, "party", { protocol: "https:", hostname: "::1" }), "wss://[::1]:8080/party");
});

test("without a path-routing listener, a listener bound to the dialect serves it at /", () => {
  const cfg = {
    dialects: ["chat", "presence", "channels"],
    listeners: [
      { port: 4000, host: "", dialect: "chat" },
      { port: 5000, host: "", dialect: "presence" },
      { port: 6000, host: "", dialect: "channels" },
    ],
  };
  assert.equal(urlFromConfig(cfg, "presence", page), "ws://game.example:5000/");
  assert.equal(urlFromConfig(cfg, "channels", page, "fishing"), "ws://game.example:6000/fishing");
  assert.throws(() => urlFromConfig(cfg, "party", page), /no listener for the party dialect/);
});
