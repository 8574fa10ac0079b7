// PartyClient against a real partyline process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { PartyClient, dialectURL } from "../dist/index.js";
import { startServer, startProxy, nextEvent, nextMessage, until, sleep, flags } from "./server.mjs";

let srv;
const clients = new Set();
const fast = { minDelay: 50, maxDelay: 300 };
function party(base, opts = {}) {
  const c = new PartyClient(dialectURL(base, "party"), { WebSocket, reconnect: fast, ...opts });
  clients.add(c);
  return c;
}

before(async () => {
  srv = await startServer(["--max-message-size", "4096"]);
});
after(async () => {
  for (const c of clients) c.close();
  await srv?.stop();
});

test("create, join, broadcast, targeted send, state and peers", async () => {
  const a = party(srv.wsBase, { clientId: "alice" });
  const b = party(srv.wsBase, { clientId: "bob" });
  const c = party(srv.wsBase, { clientId: "carol" });
  const { room, token } = await a.create(3);
  assert.match(room, /^[A-HJKMNP-Z2-9]{4}$/);
  assert.ok(token);
  const bobJoined = nextMessage(a, "peer_joined");
  const j = await b.join(room.toLowerCase());
  assert.deepEqual(j.clients, ["alice", "bob"]);
  assert.equal((await bobJoined).clientId, "bob");
  await c.join(room);
  await until(() => a.peers.length === 3 && b.peers.length === 3, 3000, "three peers");
  assert.deepEqual(a.peers, ["alice", "bob", "carol"]);

  const atB = nextMessage(b, "message");
  const atC = nextMessage(c, "message");
  a.broadcast({ move: "left" });
  const { seq, ...atBrest } = await atB;
  assert.deepEqual(atBrest, { type: "message", from: "alice", data: { move: "left" } });
  assert.ok(seq === undefined || Number.isInteger(seq), "seq, if the server sends offsets, is an integer");
  assert.deepEqual((await atC).data, { move: "left" });

  const gotC = [];
  c.on("message", (m) => gotC.push(m));
  const onlyB = nextMessage(b, "message");
  a.sendTo("bob", "psst");
  assert.equal((await onlyB).data, "psst");
  await sleep(100);
  assert.equal(gotC.length, 0, "a targeted send reaches only its target");

  const st = nextMessage(c, "state");
  b.setState({ score: 7 });
  assert.deepEqual((await st).state, { score: 7 });
  await until(() => a.roomState?.score === 7, 2000, "state at alice");

  // A fourth client is refused: the room holds 3.
  const d = party(srv.wsBase, { clientId: "dave" });
  await assert.rejects(d.join(room), /Room is full/);

  const left = nextMessage(a, "peer_left");
  c.leave();
  assert.equal((await left).clientId, "carol");
  assert.equal(c.room, null);
  assert.deepEqual(a.peers, ["alice", "bob"]);
});

test("after a network drop the client rejoins with its clientId and token; peers see nothing", async () => {
  const proxy = await startProxy(srv.wsPort);
  try {
    const host = party(srv.wsBase, { clientId: "host" });
    const guest = party(proxy.base, { clientId: "guest" });
    const { room } = await host.create();
    const hostSawGuest = nextMessage(host, "peer_joined");
    const first = await guest.join(room);
    await hostSawGuest; // the first join's announcement is not part of what follows
    const seen = [];
    host.on("*", (m) => seen.push(m.type));
    const reopened = nextEvent(guest, "open", 5000, (e) => e.reconnected);
    proxy.cutClients(); // the server still holds the old socket
    await reopened;
    assert.equal(guest.room, room);
    assert.equal(guest.token, first.token, "the token belongs to the clientId");
    assert.deepEqual(guest.peers, ["host", "guest"]);
    // Messages flow both ways on the new socket.
    const atHost = nextMessage(host, "message");
    guest.broadcast("back");
    assert.equal((await atHost).data, "back");
    const atGuest = nextMessage(guest, "message");
    host.broadcast("welcome back");
    assert.equal((await atGuest).data, "welcome back");
    assert.deepEqual(seen.filter((t) => t !== "message"), [], "no peer_left/peer_joined for a replacement");
  } finally {
    proxy.close();
  }
});

test("messages sent while disconnected are delivered after the rejoin", async () => {
  const proxy = await startProxy(srv.wsPort);
  try {
    const host = party(srv.wsBase, { clientId: "h2" });
    const guest = party(proxy.base, { clientId: "g2" });
    const { room } = await host.create();
    await guest.join(room);
    const reconnecting = nextEvent(guest, "reconnecting");
    proxy.cutClients();
    await reconnecting;
    guest.broadcast(1);
    guest.broadcast(2);
    assert.equal(guest.queued, 2);
    const got = [];
    host.on("message", (m) => got.push(m.data));
    await until(() => got.length === 2, 5000, "queued messages");
    assert.deepEqual(got, [1, 2]);
  } finally {
    proxy.close();
  }
});

test("a second connection with the same clientId and token replaces the first: 4000, no reconnect", async () => {
  const host = party(srv.wsBase, { clientId: "h3" });
  const one = party(srv.wsBase, { clientId: "twin" });
  const { room } = await host.create();
  const { token } = await one.join(room);
  const errs = [];
  one.onEvent("error", (e) => errs.push(e.kind));
  const closed = nextEvent(one, "close");
  const two = party(srv.wsBase, { clientId: "twin" });
  await two.join(room, token);
  const c = await closed;
  assert.equal(c.code, 4000);
  assert.equal(c.willReconnect, false);
  await sleep(400);
  assert.equal(one.state, "closed");
  assert.deepEqual(errs, ["replaced"]);
  // The replacement is still in the room and reachable.
  const at2 = nextMessage(two, "message");
  host.broadcast("hi twin");
  assert.equal((await at2).data, "hi twin");
});

test("a message over --max-message-size is a too_big error (1009); the client reconnects and rejoins", async () => {
  const host = party(srv.wsBase, { clientId: "h4" });
  const big = party(srv.wsBase, { clientId: "big" });
  const { room } = await host.create();
  await big.join(room);
  const err = nextEvent(big, "error", 5000, (e) => e.kind === "too_big");
  const back = nextEvent(big, "open", 5000, (e) => e.reconnected);
  big.broadcast("x".repeat(10_000));
  assert.equal((await err).code, 1009);
  await back;
  assert.equal(big.room, room);
  const atHost = nextMessage(host, "message");
  big.broadcast("small");
  assert.equal((await atHost).data, "small");
});

test("after a server restart without persistence the rejoin fails visibly and the client can create again", async () => {
  // Rooms kept in memory only: the room is gone after the restart.
  const own = await startServer(flags().has("party-persist") ? ["--party-persist=false"] : []);
  try {
    const a = party(own.wsBase, { clientId: "solo" });
    const errors = [];
    a.onEvent("error", (e) => errors.push(`${e.kind}: ${e.message}`));
    const { room } = await a.create();
    const failed = nextEvent(a, "error", 10_000, (e) => e.kind === "handshake");
    await own.restart();
    const e = await failed;
    assert.match(e.message, new RegExp(`rejoining room ${room} failed: .*not found`));
    assert.equal(a.room, null);
    await until(() => a.state === "open", 5000, "open after restart");
    // A join the caller awaits reports its error through the promise alone.
    await assert.rejects(a.join("ZZZZ"), /not found/i);
    const again = await a.create();
    assert.equal(a.room, again.room);
    assert.deepEqual(errors.filter((x) => !x.startsWith("socket") && !x.startsWith("give_up")), [e.kind + ": " + e.message],
      "the failed re-join is one handshake error, not also a server error; the awaited join none");
  } finally {
    await own.stop();
  }
});

// Resuming with offsets (epoch/seq, join since, seat grace, persistence):
// only on a binary that has them.
const noOffsets = !flags().has("party-seat-grace") && "this binary has no --party-seat-grace (party offsets)";

/** Server flags for the resume tests: a 5 s seat grace, and rooms kept in --data-dir when the build can. */
function resumeArgs() {
  const args = ["--party-seat-grace", "5s"];
  if (flags().has("party-persist")) args.push("--party-persist");
  return args;
}

test("a member whose socket is cut re-joins with since: recovered, what it missed arrives exactly once", { skip: noOffsets }, async () => {
  const own = await startServer(resumeArgs());
  const proxy = await startProxy(own.wsPort);
  try {
    const host = party(own.wsBase, { clientId: "host" });
    // A slow first retry, so the host's sends fall while the guest is away.
    const guest = party(proxy.base, { clientId: "guest", reconnect: { minDelay: 800, maxDelay: 800, jitter: 0 } });
    const { room, epoch } = await host.create();
    assert.equal(typeof epoch, "string");
    const got = [];
    guest.on("message", (m) => got.push(m.data));
    const hostSawGuest = nextMessage(host, "peer_joined");
    await guest.join(room);
    await hostSawGuest; // the first join's announcement is not part of what follows
    const hostSaw = [];
    host.on("*", (m) => hostSaw.push(m.type));
    const m1 = nextMessage(guest, "message");
    host.broadcast("m1");
    await m1;
    const before = guest.offset;
    assert.equal(before.epoch, epoch);
    const rejoined = nextEvent(guest, "rejoined", 10_000);
    const reconnecting = nextEvent(guest, "reconnecting");
    proxy.cutClients();
    await reconnecting;
    host.broadcast("m2");
    host.sendTo("guest", "m3");
    host.setState({ round: 2 });
    host.broadcast("m4");
    const r = await rejoined;
    assert.deepEqual(r, { recovered: true, epoch, seq: before.seq, since: before });
    await until(() => got.length >= 4, 5000, "the missed messages");
    host.broadcast("m5");
    await until(() => got.length >= 5, 5000, "m5");
    await sleep(200);
    assert.deepEqual(got, ["m1", "m2", "m3", "m4", "m5"], "each message once, in order");
    assert.deepEqual(guest.roomState, { round: 2 });
    assert.ok(guest.seq > before.seq);
    assert.deepEqual(hostSaw.filter((t) => t === "peer_left" || t === "peer_joined"), [], "the seat was never given up");
  } finally {
    proxy.close();
    await own.stop();
  }
});

test("a graceful server restart (SIGTERM, same --data-dir): both re-join with recovered=true; what was sent meanwhile arrives once", { skip: noOffsets }, async () => {
  const own = await startServer(resumeArgs());
  try {
    // Alice retries slowly: Bob is back and sends before she is.
    const alice = party(own.wsBase, { clientId: "alice", reconnect: { minDelay: 4000, maxDelay: 4000, jitter: 0 } });
    const bob = party(own.wsBase, { clientId: "bob" });
    const { room } = await alice.create();
    await bob.join(room);
    const got = [];
    alice.on("message", (m) => got.push(m.data));
    const first = nextMessage(alice, "message");
    bob.broadcast("before");
    await first;
    const aliceClosed = nextEvent(alice, "close", 10_000);
    const bobBack = nextEvent(bob, "rejoined", 15_000);
    await own.restart("SIGTERM");
    const c = await aliceClosed;
    assert.ok([1001, 1006, 1012].includes(c.code), `close code ${c.code}`);
    assert.equal(c.willReconnect, true);
    const rb = await bobBack;
    assert.equal(rb.recovered, true, "bob's seat and offset survived the restart");
    assert.equal(bob.room, room);
    assert.notEqual(alice.state, "open", "alice is not back yet");
    const aliceRejoined = nextEvent(alice, "rejoined", 15_000);
    const aliceBack = nextMessage(bob, "peer_back", 15_000, (m) => m.clientId === "alice");
    bob.broadcast("while you were away 1");
    bob.sendTo("alice", "while you were away 2");
    const ra = await aliceRejoined;
    assert.equal(ra.recovered, true, "alice's missed messages are replayed");
    await aliceBack;
    await until(() => got.length >= 3, 5000, "the missed messages");
    bob.broadcast("after");
    await until(() => got.length >= 4, 5000, "after");
    await sleep(200);
    assert.deepEqual(got, ["before", "while you were away 1", "while you were away 2", "after"]);
    assert.deepEqual(bob.away, []);
  } finally {
    await own.stop();
  }
});
