// PartyV2Client (Party-Sockets 2.x) against a real partyline process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { PartyV2Client, dialectURL } from "../dist/index.js";
import { startServer, startProxy, nextEvent, nextMessage, until, sleep } from "./server.mjs";

let srv;
const clients = new Set();
const fast = { minDelay: 50, maxDelay: 300 };
function party(base, opts = {}) {
  const c = new PartyV2Client(dialectURL(base, "party-v2"), { WebSocket, reconnect: fast, ...opts });
  clients.add(c);
  return c;
}

before(async () => {
  srv = await startServer(["--instance-id", "sdk-test"]);
});
after(async () => {
  for (const c of clients) c.close();
  await srv?.stop();
});

test("create with a controller URL, join, broadcast, send to an index, host state", async () => {
  const host = party(srv.wsBase, { clientId: "host" });
  const a = party(srv.wsBase, { clientId: "a" });
  const b = party(srv.wsBase, { clientId: "b" });
  const created = await host.create(3, "https://ctl.example/{room}?i={instance}");
  assert.match(created.room, /^[1-9A-HJ-NP-Za-km-z]{6}$/);
  assert.equal(created.index, 0);
  assert.equal(created.instance, "sdk-test");
  assert.equal(created.url, `https://ctl.example/${created.room}?i=sdk-test`);
  assert.ok(host.isHost);
  const sawA = nextMessage(host, "peer_joined");
  const ja = await a.join(created.room);
  assert.deepEqual([ja.index, ja.peers, ja.url], [1, [0], created.url]);
  assert.equal((await sawA).index, 1);
  const jb = await b.join(created.room);
  assert.deepEqual([jb.index, jb.peers], [2, [0, 1]]);
  await until(() => host.peers.length === 2 && a.peers.length === 2, 3000, "peers");
  assert.deepEqual(host.peers, [1, 2]);

  const atA = nextMessage(a, "message");
  const atB = nextMessage(b, "message");
  host.broadcast({ go: true });
  assert.deepEqual(await atA, { type: "message", from: 0, data: { go: true } });
  assert.deepEqual((await atB).data, { go: true });

  const onlyB = nextMessage(b, "message");
  a.sendTo(2, "psst");
  assert.deepEqual(await onlyB, { type: "message", from: 1, data: "psst" });

  const st = nextMessage(b, "state");
  host.setState({ round: 1 });
  assert.deepEqual((await st).data, { round: 1 });
  await until(() => a.roomState?.round === 1, 2000, "state at a");
  const refused = nextEvent(a, "error", 3000, (e) => e.kind === "server");
  a.setState({ round: 99 });
  assert.equal((await refused).message, "Only the host can set state");
});

test("a full room and an unknown code fail with Party-Sockets' texts", async () => {
  const host = party(srv.wsBase);
  const { room } = await host.create(1);
  const x = party(srv.wsBase);
  await assert.rejects(x.join(room), /Room is full/);
  await assert.rejects(x.join("zzzzzz"), /Room not found/);
});

test("after a network drop the client takes its slot back; the others see nothing", async () => {
  const proxy = await startProxy(srv.wsPort);
  try {
    const host = party(srv.wsBase, { clientId: "h2" });
    const guest = party(proxy.base, { clientId: "g2" });
    const { room } = await host.create(2); // full: a replacement needs no free place
    await guest.join(room);
    const seen = [];
    host.on("*", (m) => seen.push(m.type));
    const reopened = nextEvent(guest, "open", 5000, (e) => e.reconnected);
    proxy.cutClients(); // the server still holds the old socket: it is replaced (4000)
    await reopened;
    assert.equal(guest.index, 1);
    assert.equal(guest.room, room);
    const atHost = nextMessage(host, "message");
    guest.broadcast("back");
    assert.equal((await atHost).from, 1);
    assert.deepEqual(seen.filter((t) => t !== "message"), [], "no peer_left/peer_joined for a replacement");
  } finally {
    proxy.close();
  }
});

test("close_room closes everyone with 4001 and nobody reconnects", async () => {
  const host = party(srv.wsBase);
  const guest = party(srv.wsBase);
  const { room } = await host.create(2);
  await guest.join(room);
  const gClosed = nextEvent(guest, "close");
  const hClosed = nextEvent(host, "close");
  const gErr = nextEvent(guest, "error", 5000, (e) => e.kind === "room_closed");
  host.closeRoom();
  for (const c of [await gClosed, await hClosed]) {
    assert.equal(c.code, 4001);
    assert.equal(c.willReconnect, false);
  }
  assert.equal((await gErr).code, 4001);
  await sleep(200);
  assert.equal(guest.state, "closed");
});
