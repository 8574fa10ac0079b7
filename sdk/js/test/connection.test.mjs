// Core Connection behaviour against a scripted `ws` server: backoff,
// offline queue, close codes, listeners, handshake timeout.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket, { WebSocketServer } from "ws";
import { Connection, backoff, PartylineError } from "../dist/index.js";
import { nextEvent, sleep, until } from "./server.mjs";

/** A ws server on a free loopback port; `script(sock, n)` runs for the n-th connection (0-based). */
const servers = new Set();
const conns = new Set();
after(async () => {
  for (const c of conns) c.close();
  for (const s of servers) await s.close();
});
// Every Connection made here is closed at the end even when a test fails.
const track = (c) => (conns.add(c), c);

async function scripted(script) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => wss.once("listening", r));
  const s = { wss, count: 0, received: [], url: `ws://127.0.0.1:${wss.address().port}/` };
  wss.on("connection", (sock) => {
    const n = s.count++;
    sock.on("message", (d) => s.received.push({ n, msg: JSON.parse(String(d)) }));
    script(sock, n);
  });
  servers.add(s);
  s.close = () => new Promise((r) => {
    servers.delete(s);
    for (const c of wss.clients) c.terminate();
    wss.close(r);
  });
  return s;
}

const fast = { minDelay: 20, maxDelay: 100, jitter: 0 };

test("backoff grows exponentially, is capped, and jitter only shortens it", () => {
  const o = { maxAttempts: Infinity, minDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoff(n, o, () => 0)), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(backoff(3, o, () => 1), 200); // full jitter takes off half
  for (let i = 0; i < 200; i++) {
    const d = backoff(4, o);
    assert.ok(d >= 400 && d <= 800, `delay ${d} out of [400, 800]`);
  }
});

test("messages sent while offline are queued up to the cap and flushed in order on open", async () => {
  const srv = await scripted(() => {});
  const c = track(new Connection(srv.url, { WebSocket, autoConnect: false, queueLimit: 3 }));
  const drops = [];
  c.onEvent("drop", (d) => drops.push(d));
  const errors = [];
  c.onEvent("error", (e) => errors.push(e.kind));
  assert.equal(c.send({ n: 1 }), true);
  assert.equal(c.send({ n: 2 }), true);
  assert.equal(c.send({ n: 3 }), true);
  assert.equal(c.send({ n: 4 }), false, "over the cap");
  assert.equal(c.queued, 3);
  assert.deepEqual(drops.map((d) => [d.message.n, d.reason]), [[4, "queue_full"]]);
  assert.deepEqual(errors, ["queue_full"]);
  c.connect();
  await until(() => srv.received.length === 3, 3000, "3 messages");
  assert.deepEqual(srv.received.map((r) => r.msg.n), [1, 2, 3]);
  assert.equal(c.queued, 0);
  assert.equal(c.send({ n: 5 }), true);
  await until(() => srv.received.length === 4, 3000, "message 5");
  c.close();
  await srv.close();
});

test("on/off dispatch by type, '*' sees everything, a throwing listener does not stop others", async () => {
  const srv = await scripted((sock) => {
    sock.send(JSON.stringify({ type: "a", v: 1 }));
    sock.send(JSON.stringify({ type: "b", v: 2 }));
    sock.send("not json");
    sock.send(JSON.stringify({ type: "a", v: 3 }));
  });
  const c = track(new Connection(srv.url, { WebSocket }));
  const a = [], all = [], errs = [];
  const onA = (m) => a.push(m.v);
  c.on("a", onA);
  c.on("*", (m) => all.push(m.type));
  c.onEvent("error", (e) => errs.push(e.kind));
  await until(() => all.length === 3, 3000, "three messages");
  assert.deepEqual(a, [1, 3]);
  assert.deepEqual(all, ["a", "b", "a"]);
  assert.deepEqual(errs, ["parse"]);
  c.off("a", onA);
  c.close();
  await srv.close();
});

for (const [code, kind] of [[4000, "replaced"], [4401, "auth"]]) {
  test(`close ${code} is final: a ${kind} error and no reconnect`, async () => {
    const srv = await scripted((sock) => sock.close(code, "bye"));
    const c = track(new Connection(srv.url, { WebSocket, reconnect: fast }));
    const errs = [];
    c.onEvent("error", (e) => errs.push(e));
    const closed = await nextEvent(c, "close");
    assert.equal(closed.code, code);
    assert.equal(closed.willReconnect, false);
    await sleep(300); // several backoff periods
    assert.equal(srv.count, 1, "no second connection");
    assert.equal(c.state, "closed");
    assert.equal(errs.length, 1);
    assert.ok(errs[0] instanceof PartylineError);
    assert.equal(errs[0].kind, kind);
    assert.equal(errs[0].code, code);
    assert.equal(c.send({ x: 1 }), false, "send after a final close is refused");
    await srv.close();
  });
}

for (const [code, kind] of [[1008, "policy"], [1009, "too_big"], [1002, "protocol"]]) {
  test(`close ${code} surfaces as a ${kind} error and reconnects`, async () => {
    const srv = await scripted((sock, n) => {
      if (n === 0) sock.close(code, "nope");
      else sock.send(JSON.stringify({ type: "hello" }));
    });
    const c = track(new Connection(srv.url, { WebSocket, reconnect: fast }));
    const errs = [];
    c.onEvent("error", (e) => errs.push(e));
    const reconnecting = nextEvent(c, "reconnecting");
    const reopened = nextEvent(c, "open", 5000, (e) => e.reconnected);
    const r = await reconnecting;
    assert.equal(r.attempt, 1);
    await reopened;
    assert.equal(srv.count, 2);
    assert.equal(errs.length, 1);
    assert.equal(errs[0].kind, kind);
    assert.equal(errs[0].code, code);
    c.close();
    await srv.close();
  });
}

test("maxAttempts gives up with a give_up error; reconnectNow revives it", async () => {
  // A port with nobody listening: every attempt fails at once.
  const probe = await scripted(() => {});
  const url = probe.url;
  await probe.close();
  const c = track(new Connection(url, { WebSocket, reconnect: { ...fast, maxAttempts: 3 } }));
  const attempts = [];
  c.onEvent("reconnecting", (e) => attempts.push(e.attempt));
  const gaveUp = await nextEvent(c, "error", 5000, (e) => e.kind === "give_up");
  assert.match(gaveUp.message, /3 attempts/);
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.equal(c.state, "closed");
  c.reconnectNow();
  assert.equal(c.state, "connecting");
  c.close();
});

test("close() stops reconnecting and drops the queue", async () => {
  const srv = await scripted((sock) => setTimeout(() => sock.terminate(), 20));
  const c = track(new Connection(srv.url, { WebSocket, reconnect: fast }));
  await nextEvent(c, "reconnecting");
  const drops = [];
  c.onEvent("drop", (d) => drops.push(d.reason));
  c.send({ queued: true });
  c.close();
  assert.equal(c.state, "closed");
  assert.deepEqual(drops, ["closed"]);
  const before = srv.count;
  await sleep(250);
  assert.equal(srv.count, before, "no connection after close()");
  await srv.close();
});

test("a handshake that gets no reply retries on a fresh socket and keeps the queue", async () => {
  class Hello extends Connection {
    handshake() {
      this.sendNow({ type: "hello" });
      return this.waitFor(["welcome"], ["error"], 150);
    }
  }
  // The first socket never answers; the second one welcomes.
  const srv = await scripted((sock, n) => {
    sock.on("message", (d) => {
      if (JSON.parse(String(d)).type === "hello" && n > 0) sock.send(JSON.stringify({ type: "welcome" }));
    });
  });
  const c = track(new Hello(srv.url, { WebSocket, reconnect: fast }));
  c.send({ type: "queued" });
  const errs = [];
  c.onEvent("error", (e) => errs.push(e.kind));
  await nextEvent(c, "open", 5000);
  await until(() => srv.received.some((r) => r.msg.type === "queued"), 3000, "queued message");
  assert.equal(srv.count, 2);
  assert.deepEqual(errs, ["handshake"]);
  // The queued message went out only on the socket that completed its handshake, after hello.
  const second = srv.received.filter((r) => r.n === 1).map((r) => r.msg.type);
  assert.deepEqual(second, ["hello", "queued"]);
  assert.ok(!srv.received.some((r) => r.n === 0 && r.msg.type === "queued"));
  c.close();
  await srv.close();
});

test("a refused handshake drops the queue but keeps the socket", async () => {
  class Hello extends Connection {
    handshake() {
      this.sendNow({ type: "hello" });
      return this.waitFor(["welcome"], ["error"], 2000);
    }
  }
  const srv = await scripted((sock) => {
    sock.on("message", (d) => {
      if (JSON.parse(String(d)).type === "hello") sock.send(JSON.stringify({ type: "error", message: "go away" }));
    });
  });
  const c = track(new Hello(srv.url, { WebSocket, reconnect: fast }));
  c.send({ type: "queued" });
  const drops = [];
  c.onEvent("drop", (d) => drops.push(d.reason));
  const errored = nextEvent(c, "error");
  const opened = nextEvent(c, "open");
  const err = await errored;
  assert.equal(err.kind, "handshake");
  assert.match(err.message, /go away/);
  await opened;
  assert.deepEqual(drops, ["handshake_failed"]);
  assert.equal(c.state, "open");
  c.send({ type: "later" });
  await until(() => srv.received.some((r) => r.msg.type === "later"), 3000, "later");
  assert.equal(srv.count, 1);
  c.close();
  await srv.close();
});

test("the constructor refuses to run without a WebSocket implementation", () => {
  const saved = globalThis.WebSocket;
  try {
    delete globalThis.WebSocket;
    assert.throws(() => new Connection("ws://127.0.0.1:1/"), /no WebSocket implementation/);
  } finally {
    if (saved) globalThis.WebSocket = saved;
  }
});
