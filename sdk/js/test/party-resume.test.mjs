// PartyClient resuming across flaps, restarts and deploys, against a
// scripted fake party server (`ws`): it only replays frames; the assertions
// are on what the SDK sends and what it hands the app. The real-binary
// tests are in party.test.mjs.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket, { WebSocketServer } from "ws";
import { PartyClient } from "../dist/index.js";
import { nextEvent, sleep, until } from "./server.mjs";

const servers = new Set();
const clients = new Set();
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
});

/**
 * A fake party server on a free loopback port. `script(conn)` runs for every
 * connection; conn.n is its number (0-based), conn.next() resolves with the
 * next frame the client sends, conn.send(obj) sends a JSON frame.
 */
async function fake(script) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((r) => wss.once("listening", r));
  const s = { wss, count: 0, received: [], url: `ws://127.0.0.1:${wss.address().port}/party` };
  wss.on("connection", (sock) => {
    const conn = { n: s.count++, sock, inbox: [], waiting: [] };
    sock.on("message", (d) => {
      const msg = JSON.parse(String(d));
      s.received.push({ n: conn.n, msg });
      const w = conn.waiting.shift();
      if (w) w(msg);
      else conn.inbox.push(msg);
    });
    conn.next = () => (conn.inbox.length ? Promise.resolve(conn.inbox.shift()) : new Promise((r) => conn.waiting.push(r)));
    conn.send = (obj) => sock.send(JSON.stringify(obj));
    // A failed assertion in a script shows in the test's output (the test then times out).
    Promise.resolve(script(conn)).catch((e) => console.error("fake server script:", e));
  });
  servers.add(s);
  s.close = () =>
    new Promise((r) => {
      servers.delete(s);
      for (const c of wss.clients) c.terminate();
      wss.close(r);
    });
  s.joins = () => s.received.filter((r) => r.msg.type === "join");
  return s;
}

const fast = { minDelay: 20, maxDelay: 100, jitter: 0 };
function party(url, opts = {}) {
  const c = new PartyClient(url, { WebSocket, reconnect: fast, clientId: "me", ...opts });
  clients.add(c);
  return c;
}

/** Collects what the app sees: messages (data), states, rejoined events. */
function watch(c) {
  const seen = { messages: [], states: [], rejoined: [] };
  c.on("message", (m) => seen.messages.push(m.data));
  c.on("state", (m) => seen.states.push(m.state));
  c.onEvent("rejoined", (e) => seen.rejoined.push(e));
  return seen;
}

/** Connection 0 creates room ROOM in epoch E1 and delivers messages 1 and 2, then closes with `close(sock)`. */
function firstSession(close) {
  return async (conn) => {
    const create = await conn.next();
    assert.equal(create.type, "create");
    conn.send({ type: "created", room: "ROOM", token: "tok", epoch: "E1", seq: 0 });
    conn.send({ type: "message", from: "bob", data: "m1", seq: 1 });
    conn.send({ type: "message", from: "bob", data: "m2", seq: 2 });
    await sleep(50);
    close(conn.sock);
  };
}

for (const [code, close] of [
  [1001, (s) => s.close(1001, "going away")],
  [1006, (s) => s.terminate()],
  [1012, (s) => s.close(1012, "service restart")],
]) {
  test(`after close ${code} the client re-joins with token and since, and missed frames arrive once`, async () => {
    const srv = await fake(async (conn) => {
      if (conn.n === 0) return firstSession(close)(conn);
      const join = await conn.next();
      assert.equal(join.type, "join");
      // Replay everything after since.seq (2), plus a stray duplicate the SDK must drop.
      conn.send({ type: "joined", room: "ROOM", clients: ["me", "bob"], token: "tok", epoch: "E1", seq: 4, recovered: true });
      conn.send({ type: "message", from: "bob", data: "m2", seq: 2 });
      conn.send({ type: "message", from: "bob", data: "m3", seq: 3 });
      conn.send({ type: "message", from: "bob", data: "m4", seq: 4 });
      conn.send({ type: "message", from: "bob", data: "m3", seq: 3 });
    });
    const c = party(srv.url);
    const seen = watch(c);
    const closed = nextEvent(c, "close");
    assert.deepEqual(await c.create(), { room: "ROOM", token: "tok", epoch: "E1", seq: 0 });
    const cl = await closed;
    assert.equal(cl.code, code);
    assert.equal(cl.willReconnect, true);
    const rejoined = await nextEvent(c, "rejoined", 3000);
    assert.deepEqual(rejoined, { recovered: true, epoch: "E1", seq: 2, since: { epoch: "E1", seq: 2 } });
    await until(() => seen.messages.length >= 4, 3000, "the replay");
    await sleep(50);
    assert.deepEqual(seen.messages, ["m1", "m2", "m3", "m4"], "each message exactly once, in order");
    assert.equal(c.seq, 4);
    const joins = srv.joins();
    assert.equal(joins.length, 1);
    assert.deepEqual(joins[0].msg, { type: "join", clientId: "me", room: "ROOM", token: "tok", since: { epoch: "E1", seq: 2 } });
    assert.equal(c.state, "open");
  });
}

test("close 4000 (replaced: another tab took the seat) does not reconnect", async () => {
  const srv = await fake(async (conn) => {
    await conn.next();
    conn.send({ type: "created", room: "ROOM", token: "tok", epoch: "E1", seq: 0 });
    await sleep(30);
    conn.sock.close(4000, "replaced");
  });
  const c = party(srv.url);
  const errs = [];
  c.onEvent("error", (e) => errs.push(e.kind));
  const closed = nextEvent(c, "close");
  await c.create();
  const cl = await closed;
  assert.deepEqual([cl.code, cl.willReconnect], [4000, false]);
  await sleep(300);
  assert.equal(srv.count, 1, "no second connection");
  assert.equal(c.state, "closed");
  assert.deepEqual(errs, ["replaced"]);
});

test("a new epoch resets the offset: recovered=false, resync from the retained state", async () => {
  const srv = await fake(async (conn) => {
    if (conn.n === 0) {
      await conn.next();
      conn.send({ type: "created", room: "ROOM", token: "tok", epoch: "E1", seq: 0 });
      conn.send({ type: "state", state: { round: 1 }, seq: 1 });
      for (let i = 2; i <= 9; i++) conn.send({ type: "message", from: "bob", data: `old${i}`, seq: i });
      await sleep(50);
      conn.sock.close(1012, "service restart");
      return;
    }
    const join = await conn.next();
    assert.deepEqual(join.since, { epoch: "E1", seq: 9 });
    // The server lost the room's log: a new incarnation, offsets start over.
    conn.send({ type: "joined", room: "ROOM", clients: ["me"], token: "tok", epoch: "E2", seq: 2, recovered: false });
    conn.send({ type: "state", state: { round: 7 }, seq: 1 });
    conn.send({ type: "message", from: "bob", data: "new3", seq: 3 });
  });
  const c = party(srv.url);
  const seen = watch(c);
  await c.create();
  await until(() => seen.messages.length === 8, 3000, "the first session");
  assert.equal(c.seq, 9);
  const rejoined = await nextEvent(c, "rejoined", 3000);
  assert.deepEqual(rejoined, { recovered: false, epoch: "E2", seq: 2, since: { epoch: "E1", seq: 9 } });
  await until(() => seen.messages.length === 9, 3000, "new3");
  assert.equal(seen.messages.at(-1), "new3", "a seq below the old epoch's offset is not a duplicate in a new epoch");
  assert.deepEqual(seen.states, [{ round: 1 }, { round: 7 }]);
  assert.deepEqual(c.roomState, { round: 7 });
  assert.deepEqual({ epoch: c.epoch, seq: c.seq }, { epoch: "E2", seq: 3 });
});

test("recovered=false in the same epoch: nothing replayed, the offset jumps to the room's and the state is re-taken", async () => {
  const srv = await fake(async (conn) => {
    if (conn.n === 0) {
      await conn.next();
      conn.send({ type: "created", room: "ROOM", token: "tok", epoch: "E1", seq: 0 });
      conn.send({ type: "state", state: "s1", seq: 1 });
      await sleep(50);
      conn.sock.terminate();
      return;
    }
    await conn.next();
    conn.send({ type: "joined", room: "ROOM", clients: ["me"], token: "tok", epoch: "E1", seq: 50, recovered: false });
    conn.send({ type: "state", state: "s40", seq: 40 });
    conn.send({ type: "message", from: "bob", data: "m50", seq: 50 }); // at the offset: already counted
    conn.send({ type: "message", from: "bob", data: "m51", seq: 51 });
  });
  const c = party(srv.url);
  const seen = watch(c);
  await c.create();
  const rejoined = await nextEvent(c, "rejoined", 3000);
  assert.equal(rejoined.recovered, false);
  assert.equal(rejoined.seq, 50);
  await until(() => seen.messages.length === 1, 3000, "m51");
  await sleep(50);
  assert.deepEqual(seen.messages, ["m51"]);
  assert.deepEqual(seen.states, ["s1", "s40"]);
  assert.equal(c.seq, 51);
});

test("dedup: a message or state at or below the offset is dropped; the retained state after joined is a snapshot", async () => {
  const srv = await fake(async (conn) => {
    if (conn.n === 0) {
      const join = await conn.next();
      assert.deepEqual(join, { type: "join", clientId: "me", room: "ROOM" });
      conn.send({ type: "joined", room: "ROOM", clients: ["bob", "me"], token: "t", epoch: "E", seq: 10 });
      conn.send({ type: "state", state: "s7", seq: 7 }); // retained: older than the offset, still taken
      conn.send({ type: "message", from: "bob", data: "m9", seq: 9 }); // stale
      conn.send({ type: "message", from: "bob", data: "m11", seq: 11 });
      conn.send({ type: "state", state: "s7", seq: 7 }); // stale
      conn.send({ type: "state", state: "s12", seq: 12 });
      conn.send({ type: "message", from: "bob", data: "m11", seq: 11 }); // duplicate
      conn.send({ type: "message", from: "bob", data: "m13", seq: 13 });
      await sleep(50);
      conn.sock.close(1001, "deploy");
      return;
    }
    const join = await conn.next();
    assert.deepEqual(join.since, { epoch: "E", seq: 13 });
    conn.send({ type: "joined", room: "ROOM", clients: ["bob", "me"], token: "t", epoch: "E", seq: 15, recovered: true });
    conn.send({ type: "state", state: "s15", seq: 15 }); // retained, newer than ours
    conn.send({ type: "message", from: "bob", data: "m14", seq: 14 });
    conn.send({ type: "state", state: "s15", seq: 15 }); // the replayed original: delivered already
    conn.send({ type: "message", from: "bob", data: "m16", seq: 16 });
  });
  const c = party(srv.url);
  const seen = watch(c);
  const any = [];
  c.on("*", (m) => any.push(m.type === "joined" ? "joined" : m.seq));
  const j = await c.join("ROOM");
  assert.deepEqual(j, { room: "ROOM", clients: ["bob", "me"], token: "t", epoch: "E", seq: 10 });
  await until(() => seen.messages.length === 4, 3000, "all messages");
  await sleep(50);
  assert.deepEqual(seen.messages, ["m11", "m13", "m14", "m16"]);
  assert.deepEqual(seen.states, ["s7", "s12", "s15"]);
  assert.deepEqual(any, ["joined", 7, 11, 12, 13, "joined", 15, 14, 16], "duplicates reach no listener at all");
  assert.equal(c.roomState, "s15");
  assert.equal(c.seq, 16);
});

test("a re-join always carries the token; since only once the server has given an epoch", async () => {
  // An older server: no epoch, no seq, no recovered.
  const srv = await fake(async (conn) => {
    if (conn.n === 0) {
      await conn.next();
      conn.send({ type: "created", room: "OLD", token: "tok" });
      conn.send({ type: "message", from: "bob", data: "a" });
      await sleep(50);
      conn.sock.terminate();
      return;
    }
    await conn.next();
    conn.send({ type: "joined", room: "OLD", clients: ["me", "bob"], token: "tok" });
    conn.send({ type: "message", from: "bob", data: "a" });
  });
  const c = party(srv.url);
  const seen = watch(c);
  await c.create();
  assert.equal(c.epoch, null);
  assert.equal(c.offset, null);
  const rejoined = await nextEvent(c, "rejoined", 3000);
  assert.deepEqual(rejoined, { recovered: false, epoch: null, seq: null, since: null });
  await until(() => seen.messages.length === 2, 3000, "messages without seq are never deduplicated");
  assert.deepEqual(srv.joins()[0].msg, { type: "join", clientId: "me", room: "OLD", token: "tok" });
});

test("after a server restart every seat is away; join(room, token, since) reclaims the seat and surfaces recovered", async () => {
  const srv = await fake(async (conn) => {
    const join = await conn.next();
    assert.deepEqual(join, { type: "join", clientId: "me", room: "ROOM", token: "tok", since: { epoch: "E1", seq: 5 } });
    conn.send({ type: "joined", room: "ROOM", clients: ["bob", "me"], token: "tok", epoch: "E1", seq: 6, recovered: true, away: ["bob"] });
    conn.send({ type: "message", from: "carol", data: "m5", seq: 5 }); // seen by the earlier page
    conn.send({ type: "message", from: "bob", data: "m6", seq: 6 });
    conn.send({ type: "peer_back", clientId: "bob" });
    conn.send({ type: "peer_away", clientId: "bob" });
    conn.send({ type: "peer_left", clientId: "bob" });
  });
  // A page reload: a fresh client with what the page saved.
  const c = party(srv.url);
  const seen = watch(c);
  const aways = [];
  let awayAtRejoin;
  c.onEvent("rejoined", () => (awayAtRejoin = [...c.away]));
  c.on("peer_away", (m) => aways.push(["away", m.clientId, [...c.away]]));
  c.on("peer_back", (m) => aways.push(["back", m.clientId, [...c.away]]));
  c.on("peer_left", (m) => aways.push(["left", m.clientId, [...c.away], [...c.peers]]));
  const r = await c.join("ROOM", "tok", { epoch: "E1", seq: 5 });
  assert.equal(r.recovered, true);
  assert.deepEqual(seen.rejoined, [{ recovered: true, epoch: "E1", seq: 5, since: { epoch: "E1", seq: 5 } }]);
  assert.deepEqual(awayAtRejoin, ["bob"]);
  await until(() => aways.length === 3, 3000, "presence");
  assert.deepEqual(aways, [
    ["back", "bob", []],
    ["away", "bob", ["bob"]],
    ["left", "bob", [], ["me"]],
  ]);
  assert.deepEqual(seen.messages, ["m6"]);
});

test("a re-join refused by the server (room gone) forgets the room and its offset", async () => {
  const srv = await fake(async (conn) => {
    if (conn.n === 0) {
      await conn.next();
      conn.send({ type: "created", room: "GONE", token: "tok", epoch: "E1", seq: 0 });
      await sleep(30);
      conn.sock.close(1001);
      return;
    }
    await conn.next();
    conn.send({ type: "error", message: "Room not found" });
  });
  const c = party(srv.url);
  await c.create();
  const e = await nextEvent(c, "error", 3000, (x) => x.kind === "handshake");
  assert.match(e.message, /rejoining room GONE failed: Room not found/);
  assert.deepEqual([c.room, c.epoch, c.seq, c.offset], [null, null, null, null]);
});

test("a join with since that is refused leaves no offset behind, and the next join is not a re-join", async () => {
  const srv = await fake(async (conn) => {
    const first = await conn.next();
    assert.deepEqual(first.since, { epoch: "OLD", seq: 9 });
    conn.send({ type: "error", message: "Room not found" });
    const second = await conn.next();
    assert.equal(second.since, undefined);
    conn.send({ type: "joined", room: "NEW", clients: ["me"], token: "t", epoch: "E", seq: 3 });
  });
  const c = party(srv.url);
  const seen = watch(c);
  await assert.rejects(c.join("GONE", "tok", { epoch: "OLD", seq: 9 }), /Room not found/);
  assert.deepEqual([c.room, c.epoch, c.seq], [null, null, null]);
  await c.join("NEW");
  assert.deepEqual(seen.rejoined, []);
  assert.deepEqual(c.offset, { epoch: "E", seq: 3 });
});
