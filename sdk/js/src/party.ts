// party dialect (Party-Sockets): rooms with short codes. After a reconnect
// the client re-joins its room with its clientId and token, so the server
// swaps the new socket in without peer_left/peer_joined.
import { Connection, ConnectionOptions, PartylineError } from "./connection.js";

export type PartyServerMessage =
  | { type: "created"; room: string; token: string }
  | { type: "joined"; room: string; clients: string[]; token: string }
  | { type: "peer_joined"; clientId: string }
  | { type: "peer_left"; clientId: string }
  | { type: "message"; from: string; data: unknown }
  | { type: "state"; state: unknown }
  | { type: "error"; message: string };

export type PartyClientMessage =
  | { type: "create"; clientId: string; maxClients?: number }
  | { type: "join"; clientId: string; room: string; token?: string }
  | { type: "send"; data: unknown; to?: string }
  | { type: "leave" }
  | { type: "set_state"; state: unknown };

export interface PartyOptions extends ConnectionOptions {
  /** This client's id (1-128 bytes); a random UUID by default. Keep it to rejoin after a page reload. */
  clientId?: string;
}

export class PartyClient extends Connection<PartyServerMessage, PartyClientMessage> {
  private id: string;
  /** The room this client is in, or null. */
  room: string | null = null;
  /** The token the server issued for this clientId in this room. */
  token: string | null = null;
  /** Every member's clientId in join order, this client included. */
  peers: string[] = [];
  /** The room's retained state (undefined until one is set). */
  roomState: unknown = undefined;

  constructor(url: string, options: PartyOptions = {}) {
    super(url, options);
    this.id = options.clientId ?? randomId();
    this.errorType = "error";
  }

  /** This client's id. */
  get clientId(): string {
    return this.id;
  }

  /** Changes the clientId; only while not in a room. */
  set clientId(id: string) {
    if (this.room) throw new Error("partyline party: leave the room before changing the clientId");
    this.id = id;
  }

  /** Creates a room and joins it. */
  async create(maxClients?: number): Promise<{ room: string; token: string }> {
    const msg: PartyClientMessage = { type: "create", clientId: this.clientId };
    if (maxClients !== undefined) msg.maxClients = maxClients;
    const reply = this.waitFor(["created"], ["error"], 10_000);
    this.send(msg);
    const r = await reply;
    return { room: r.room, token: r.token };
  }

  /** Joins a room by code (case-insensitive). */
  async join(room: string, token?: string): Promise<{ room: string; clients: string[]; token: string }> {
    const msg: PartyClientMessage = { type: "join", clientId: this.clientId, room };
    if (token) msg.token = token;
    const reply = this.waitFor(["joined"], ["error"], 10_000);
    this.send(msg);
    const r = await reply;
    return { room: r.room, clients: r.clients, token: r.token };
  }

  /** Sends data to every other member. */
  broadcast(data: unknown): boolean {
    return this.send({ type: "send", data });
  }

  /** Sends data to one member. */
  sendTo(clientId: string, data: unknown): boolean {
    return this.send({ type: "send", data, to: clientId });
  }

  /** Replaces the room's retained state (every member gets it). */
  setState(state: unknown): boolean {
    return this.send({ type: "set_state", state });
  }

  /** Leaves the room. */
  leave(): boolean {
    this.forget();
    return this.send({ type: "leave" });
  }

  protected override observe(msg: PartyServerMessage): void {
    switch (msg.type) {
      case "created":
        this.room = msg.room;
        this.token = msg.token;
        this.peers = [this.clientId];
        this.roomState = undefined;
        break;
      case "joined":
        if (this.room !== msg.room) this.roomState = undefined;
        this.room = msg.room;
        this.token = msg.token;
        this.peers = [...msg.clients];
        break;
      case "peer_joined":
        if (!this.peers.includes(msg.clientId)) this.peers.push(msg.clientId);
        break;
      case "peer_left":
        this.peers = this.peers.filter((p) => p !== msg.clientId);
        break;
      case "state":
        this.roomState = msg.state;
        break;
    }
  }

  protected override async handshake(reconnected: boolean): Promise<void> {
    if (!reconnected || !this.room) return;
    const room = this.room;
    const msg: PartyClientMessage = { type: "join", clientId: this.clientId, room };
    if (this.token) msg.token = this.token;
    const reply = this.waitFor(["joined"], ["error"], this.handshakeWait);
    this.sendNow(msg);
    try {
      await reply;
    } catch (e) {
      const err = e as PartylineError;
      if (err.kind === "server") this.forget(); // the room is gone (server restart) or full
      throw new PartylineError("handshake", `rejoining room ${room} failed: ${err.message}`, err.code, err.retry);
    }
  }

  private forget(): void {
    this.room = null;
    this.token = null;
    this.peers = [];
    this.roomState = undefined;
  }
}

function randomId(): string {
  const c = (globalThis as any).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}
