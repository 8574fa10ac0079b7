// PartyClient against a real partyline process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { PartyClient, dialectURL } from "../dist/index.js";
import { startServer, startProxy, nextEvent, nextMessage, until, sleep } from "./server.mjs";

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
  assert.deepEqual(await atB, { type: "message", from: "alice", data: { move: "left" } });
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
  await assert.rejects(d.join(room), /full/);

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

test("after a server restart the rejoin fails visibly (rooms are in memory) and the client can create again", async () => {
  const own = await startServer();
  try {
    const a = party(own.wsBase, { clientId: "solo" });
    const { room } = await a.create();
    const failed = nextEvent(a, "error", 10_000, (e) => e.kind === "handshake");
    await own.restart();
    const e = await failed;
    assert.match(e.message, new RegExp(`rejoining room ${room} failed: .*not found`));
    assert.equal(a.room, null);
    await until(() => a.state === "open", 5000, "open after restart");
    const again = await a.create();
    assert.equal(a.room, again.room);
  } finally {
    await own.stop();
  }
});
