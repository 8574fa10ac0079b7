// The teams, rooms, echo, notify, channels, chat and presence helpers
// against a real partyline process: each one's own traffic, and that it
// re-registers / re-joins / re-authenticates by itself after a drop.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import {
  TeamsClient, RoomsClient, EchoClient, NotifyClient, ChannelsClient, ChatClient, PresenceClient,
  dialectURL, chatIdFor, tokenUsername,
} from "../dist/index.js";
import { startServer, startProxy, speaks, nextEvent, nextMessage, until, sleep } from "./server.mjs";
import { hs256 } from "./jwt.mjs";

const SECRET = "sdk-test-secret-0123456789abcdef";
let srv, proxy;
const have = {};
const clients = new Set();
const fast = { minDelay: 50, maxDelay: 300 };
const opts = (o = {}) => ({ WebSocket, reconnect: fast, ...o });
const track = (c) => (clients.add(c), c);

before(async () => {
  srv = await startServer([
    "--jwt-secret", SECRET,
    "--channels-heartbeat", "100ms",
    "--channels-auth-delay", "200ms",
    "--channels-heartbeat-timeout", "1s",
    "--presence-grace", "300ms",
  ]);
  proxy = await startProxy(srv.wsPort);
  for (const d of ["teams", "rooms", "echo", "notify", "channels", "chat", "presence"]) {
    have[d] = await speaks(srv, d, WebSocket);
  }
});
after(async () => {
  for (const c of clients) c.close();
  proxy?.close();
  await srv?.stop();
});

const skip = (d) => (have[d] ? false : `the ${d} dialect is not in this build`);

test("teams: register, deliver with a status, re-register after a drop", async (t) => {
  if (skip("teams")) return t.skip(skip("teams"));
  const one = track(new TeamsClient(dialectURL(proxy.base, "teams"), opts({ team: 1 })));
  const two = track(new TeamsClient(dialectURL(srv.wsBase, "teams"), opts()));
  await nextEvent(one, "open");
  assert.equal(one.registered, true);
  const connected = nextMessage(one, "status", 3000, (m) => m.data === "Team 2 connected");
  assert.equal(await two.register(2), "Team 2 registered successfully");
  await connected;

  const got = nextMessage(two, "message");
  const status = nextMessage(one, "status", 3000, (m) => /delivered/.test(m.data));
  one.sendTo(2, "hi from 1");
  assert.deepEqual(await got, { type: "message", from: 1, to: 2, message: "hi from 1" });
  assert.equal((await status).data, "Message delivered to Team 2");

  // Drop team 1's socket: it comes back registered without being asked.
  const back = nextEvent(one, "open", 5000, (e) => e.reconnected);
  proxy.cutClients();
  await back;
  assert.equal(one.registered, true);
  const again = nextMessage(two, "message");
  one.sendTo(2, "still here");
  assert.equal((await again).message, "still here");

  // A server error reply surfaces as an error event.
  const err = nextEvent(two, "error", 3000, (e) => e.kind === "server");
  two.sendTo(7, "nobody");
  assert.ok((await err).message.length > 0);
});

test("rooms: join, message, typing, re-join every room after a drop", async (t) => {
  if (skip("rooms")) return t.skip(skip("rooms"));
  const a = track(new RoomsClient(dialectURL(proxy.base, "rooms"), opts()));
  const b = track(new RoomsClient(dialectURL(srv.wsBase, "rooms"), opts()));
  await nextEvent(a, "open");
  await until(() => a.clientId, 2000, "connected");
  const firstId = a.clientId;
  await a.join("lobby", "ann");
  await a.join("games", "ann");
  const joined = nextMessage(a, "userJoined", 3000, (m) => m.user === "ben");
  await b.join("lobby", "ben");
  assert.equal((await joined).userCount, 2);

  const atA = nextMessage(a, "message");
  b.message("lobby", "hello");
  const m = await atA;
  assert.equal(m.user, "ben");
  assert.equal(m.content, "hello");
  assert.equal(typeof m.timestamp, "number");

  const typing = nextMessage(b, "typing");
  assert.equal(a.typing("lobby"), true);
  assert.equal((await typing).user, "ann");

  const back = nextEvent(a, "open", 5000, (e) => e.reconnected);
  proxy.cutClients();
  await back;
  assert.notEqual(a.clientId, firstId, "a new socket, a new server id");
  const inGames = nextMessage(a, "message", 3000, (x) => x.room === "games");
  a.message("games", "rejoined");
  assert.equal((await inGames).content, "rejoined");
  const inLobby = nextMessage(b, "message", 3000, (x) => x.content === "me too");
  a.message("lobby", "me too");
  assert.equal((await inLobby).user, "ann");
});

test("echo: every message comes back", async (t) => {
  if (skip("echo")) return t.skip(skip("echo"));
  const e = track(new EchoClient(dialectURL(srv.wsBase, "echo"), opts()));
  const welcome = await nextMessage(e, "welcome");
  assert.equal(welcome.message, "Connected to server");
  assert.deepEqual(await e.echo({ a: [1, 2] }), { a: [1, 2] });
});

test("notify: auth, a notification posted over HTTP, re-auth after a drop", async (t) => {
  if (skip("notify")) return t.skip(skip("notify"));
  const n = track(new NotifyClient(dialectURL(proxy.base, "notify"), opts({ userId: "u1" })));
  await nextEvent(n, "open");
  const post = (body) =>
    fetch(`${srv.httpBase}/api/notify`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
  const got = nextMessage(n, "notification");
  const res = await post({ userId: "u1", notification: { title: "hi" } });
  assert.deepEqual(res, { delivered: true, connections: 1 });
  const m = await got;
  assert.equal(m.title, "hi");
  assert.equal(typeof m.timestamp, "number");

  const back = nextEvent(n, "open", 5000, (e) => e.reconnected);
  proxy.cutClients(); // the server keeps the old socket until its keepalive gives up
  await back;
  const again = nextMessage(n, "notification", 3000, (x) => x.title === "again");
  const res2 = await post({ userId: "u1", notification: { title: "again" } });
  assert.equal(res2.delivered, true);
  await again; // the new socket is registered for u1
});

test("channels: answers heartbeats, becomes authenticated, posts, reclaims its name after a drop", async (t) => {
  if (skip("channels")) return t.skip(skip("channels"));
  const url = dialectURL(proxy.base, "channels", "fishing");
  const c = track(new ChannelsClient(url, opts()));
  const conn = await nextMessage(c, "connection");
  assert.equal(conn.id, "fishing");
  assert.equal(await c.identify("fishing_beast"), true);
  await until(() => c.authenticated, 3000, "authenticated");
  const mine = nextMessage(c, "message");
  c.post("caught one");
  const m = await mine;
  assert.equal(m.user, "fishing_beast");
  assert.equal(m.text, "caught one");
  // Heartbeats keep it authenticated well past the 5 s default timeout would matter here (100 ms beats).
  await sleep(500);
  assert.equal(c.authenticated, true);

  const back = nextEvent(c, "open", 12000, (e) => e.reconnected);
  proxy.cutClients(); // the old socket holds the name until it misses heartbeats (1 s here)
  await back; // the handshake re-claimed the name (retrying while it was held)
  await until(() => c.authenticated, 5000, "authenticated again");
  const again = nextMessage(c, "message");
  c.post("back");
  assert.equal((await again).user, "fishing_beast");
});

test("chat: AUTH on connect, 1:1 and group messages, history, re-AUTH after a drop, 4401 is final", async (t) => {
  if (skip("chat")) return t.skip(skip("chat"));
  const alice = track(new ChatClient(dialectURL(proxy.base, "chat"), opts({ token: hs256(SECRET, { username: "alice" }) })));
  const bob = track(new ChatClient(dialectURL(srv.wsBase, "chat"), opts({ token: () => hs256(SECRET, { sub: "bob" }) })));
  assert.equal(alice.username, "alice", "known from the token before the server confirms");
  await Promise.all([nextEvent(alice, "open"), nextEvent(bob, "open")]);
  assert.equal(bob.username, "bob");

  const atBob = nextMessage(bob, "ONE_TO_ONE_CHAT");
  const ack = nextMessage(alice, "SUCCESS", 3000, (m) => m.msg === "Message sent");
  alice.sendDirect("bob", "hi bob");
  const dm = await atBob;
  assert.equal(dm.from, "alice");
  assert.equal(dm.chatId, chatIdFor("alice", "bob"));
  assert.ok((await ack).messageId);

  bob.joinGroup("g1");
  await nextMessage(bob, "SUCCESS");
  const info = nextMessage(bob, "INFO");
  alice.joinGroup("g1");
  assert.match((await info).msg, /alice joined group g1/);
  const inGroup = nextMessage(bob, "GROUP_CHAT");
  alice.sendGroup("g1", "hello group");
  assert.equal((await inGroup).content, "hello group");

  const h = await bob.history("alice");
  assert.deepEqual(h.messages.map((x) => x.content), ["hi bob"]);
  const gh = await alice.groupHistory("g1");
  assert.deepEqual(gh.messages.map((x) => x.content), ["hello group"]);

  // Drop alice: she re-authenticates before her queued message goes out.
  const reconnecting = nextEvent(alice, "reconnecting");
  proxy.cutClients();
  await reconnecting;
  const later = nextMessage(bob, "ONE_TO_ONE_CHAT", 8000, (m) => m.content === "sent while offline");
  alice.sendDirect("bob", "sent while offline");
  await later;

  // A bad token: ERROR, close 4401, never retried.
  const mallory = track(new ChatClient(dialectURL(srv.wsBase, "chat"), opts({ token: hs256("wrong-secret-wrong-secret-000000", { username: "mallory" }) })));
  const closed = await nextEvent(mallory, "close");
  assert.equal(closed.code, 4401);
  assert.equal(closed.willReconnect, false);
  await sleep(300);
  assert.equal(mallory.state, "closed");
});

test("chat: replies are matched to their requests (a second device joining a group it is in)", async (t) => {
  if (skip("chat")) return t.skip(skip("chat"));
  const first = track(new ChatClient(dialectURL(srv.wsBase, "chat"), opts({ token: hs256(SECRET, { username: "erin" }) })));
  await nextEvent(first, "open");
  await first.join("g2");
  await first.request({ type: "GROUP_CHAT", from: "erin", groupId: "g2", content: "before the second device" });

  // A second device: queued while connecting, the JOIN_GROUP fails (already a
  // member) and the history request behind it still gets its page.
  const second = track(new ChatClient(dialectURL(srv.wsBase, "chat"), opts({ token: hs256(SECRET, { username: "erin" }) })));
  const errors = [];
  second.onEvent("error", (e) => errors.push(e.message));
  second.joinGroup("g2");
  const h = await second.groupHistory("g2");
  assert.deepEqual(h.messages.map((x) => x.content), ["before the second device"]);
  await until(() => errors.length > 0, 3000, "the JOIN_GROUP error event");
  assert.deepEqual(errors, ["Already a member of group g2"], "the unawaited request's ERROR is an error event, once");

  // An awaited request's ERROR rejects its promise and is no error event.
  await assert.rejects(second.join("g2"), /Already a member of group g2/);
  await assert.rejects(second.groupHistory("nope"), /Not a member of group nope/);
  const h2 = await second.groupHistory("g2", { limit: 1 });
  assert.equal(h2.groupId, "g2");
  assert.equal(errors.length, 1, `no error event for awaited requests: ${errors}`);

  // Many requests at once: each reply goes to its own request.
  const pages = await Promise.all(["g2", "none1", "g2", "none2"].map((g) => second.groupHistory(g).then((r) => r.groupId, (e) => e.message)));
  assert.deepEqual(pages, ["g2", "Not a member of group none1", "g2", "Not a member of group none2"]);
});

test("presence: AUTH, subscriptions, online/offline, re-subscribe after a drop", async (t) => {
  if (skip("presence")) return t.skip(skip("presence"));
  const watcher = track(new PresenceClient(dialectURL(proxy.base, "presence"), opts({ token: hs256(SECRET, { username: "watcher" }) })));
  await nextEvent(watcher, "open");
  assert.equal(watcher.username, "watcher");
  watcher.subscribe(["dora"]);
  await until(() => watcher.statuses.get("dora") === "offline", 3000, "dora offline");
  const dora = track(new PresenceClient(dialectURL(srv.wsBase, "presence"), opts({ token: hs256(SECRET, { username: "dora" }) })));
  await until(() => watcher.statuses.get("dora") === "online", 3000, "dora online");

  const back = nextEvent(watcher, "open", 5000, (e) => e.reconnected);
  proxy.cutClients();
  await back;
  dora.close();
  await until(() => watcher.statuses.get("dora") === "offline", 5000, "dora offline after the grace period, seen on the new socket");
});

test("tokenUsername reads username, else sub", () => {
  assert.equal(tokenUsername(hs256("k", { username: "u", sub: "s" })), "u");
  assert.equal(tokenUsername(hs256("k", { sub: "s" })), "s");
  assert.equal(tokenUsername("garbage"), null);
});
