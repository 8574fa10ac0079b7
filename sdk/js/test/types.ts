// Compile-time checks of the published types (tsc --noEmit -p test): the
// lines marked @ts-expect-error must not compile.
import { PartyClient, PartyV2Client, TeamsClient, ChatClient, Connection, PartylineError } from "../dist/index.js";

declare const party: PartyClient;
party.on("message", (m) => {
  const from: string = m.from;
  void from;
});
party.on("joined", (m) => m.clients.map((c) => c.toUpperCase()));
party.on("*", (m) => m.type);
// @ts-expect-error: no such server message in the party dialect
party.on("bogus", () => {});
// @ts-expect-error: peer_left carries clientId, not from
party.on("peer_left", (m) => m.from);
party.onEvent("error", (e: PartylineError) => e.kind === "replaced");
party.onEvent("reconnecting", ({ attempt, delay }) => attempt + delay);
// @ts-expect-error: not a lifecycle event
party.onEvent("message", () => {});
party.onEvent("rejoined", ({ recovered, epoch, seq }) => (recovered ? epoch?.length : seq));
party.on("peer_away", (m) => m.clientId.length + party.away.length);
party.on("peer_back", (m) => m.clientId);
party.on("message", (m) => m.seq);
party.join("K7QX", "token", party.offset);
party.join("K7QX", "token", { epoch: "e", seq: 3 });
// @ts-expect-error: an offset has an epoch and a seq
party.join("K7QX", "token", { seq: 3 });
// @ts-expect-error: rejoined carries recovered, not reconnected
party.onEvent("rejoined", (e) => e.reconnected);
// @ts-expect-error: rejoined is the party helper's, not every Connection's
new Connection("ws://x/").onEvent("rejoined", () => {});

declare const teams: TeamsClient;
teams.send({ from: 1, to: 2, message: "hi" });
// @ts-expect-error: message must be a string
teams.send({ from: 1, to: 2, message: 5 });

declare const chat: ChatClient;
chat.on("ONE_TO_ONE_CHAT", (m) => m.chatId.length + m.messageId.length);
chat.history("bob").then((h) => h.messages[0].content);

type Mine = { type: "pong"; at: number } | { type: "hello" };
const c = new Connection<Mine, { type: "ping" }>("ws://x/");
c.on("pong", (m) => m.at.toFixed());
// @ts-expect-error: only ping may be sent
c.send({ type: "pang" });

declare const v2: PartyV2Client;
v2.on("message", (m) => m.from.toFixed());
v2.on("joined", (m) => m.peers.map((p) => p + 1));
// @ts-expect-error: party-v2 peers are indices, not clientIds
v2.on("peer_joined", (m) => m.clientId);
v2.sendTo(2, { x: 1 });
// @ts-expect-error: send to an index
v2.sendTo("bob", 1);
v2.create(4, "https://ctl.example/{room}").then((r) => r.instance + r.region + r.room);
v2.onEvent("error", (e) => e.kind === "room_closed");
