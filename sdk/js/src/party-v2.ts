// party-v2 dialect (Party-Sockets 2.x): peers are numeric slot indices, the
// creator is the host (slot 0) who alone sets the retained state and may
// close the room, and the clientId is the secret that reclaims a slot.
// After a reconnect the client re-joins its room with its clientId and gets
// its slot (and index) back; close 4000 (replaced) and 4001 (room closed)
// are final.
import { Connection, ConnectionEvents, ConnectionOptions, FINAL_CLOSE_CODES, PartylineError } from "./connection.js";

export type PartyV2ServerMessage =
  | { type: "created"; room: string; instance: string; region: string; index: number; url?: string }
  | { type: "joined"; room: string; index: number; peers: number[]; url?: string }
  | { type: "peer_joined"; index: number }
  | { type: "peer_left"; index: number }
  | { type: "message"; from: number; data?: unknown }
  /** The host's retained state: pushed to the others on set_state, and to a joiner right after `joined`. */
  | { type: "state"; data: unknown }
  | { type: "error"; message: string };

export type PartyV2ClientMessage =
  | { type: "create"; clientId: string; maxClients: number; url?: string }
  | { type: "join"; clientId: string; room: string }
  | { type: "send"; data?: unknown; to?: number }
  | { type: "set_state"; data: unknown }
  | { type: "close_room" };

export interface PartyV2Options extends ConnectionOptions {
  /** This client's id, the secret that reclaims its slot; a random UUID by default. Keep it to rejoin after a page reload. */
  clientId?: string;
}

/** What `create` and `join` resolve with. */
export interface PartyV2Room {
  room: string;
  /** This client's slot index (0: the host). */
  index: number;
  /** The other connected members' indices, ascending. */
  peers: number[];
  /** The controller URL resolved by the server, if the host gave a template. */
  url?: string;
}

export class PartyV2Client extends Connection<PartyV2ServerMessage, PartyV2ClientMessage, ConnectionEvents<PartyV2ClientMessage>> {
  private id: string;
  /** The room this client is in, or null. */
  room: string | null = null;
  /** This client's slot index, or null. */
  index: number | null = null;
  /** The other connected members' indices, ascending. */
  peers: number[] = [];
  /** The room's retained state (undefined until the host sets one; null is a value). */
  roomState: unknown = undefined;
  /** The controller URL of the room, if any. */
  controllerUrl: string | undefined = undefined;

  constructor(url: string, options: PartyV2Options = {}) {
    super(url, options);
    this.id = options.clientId ?? randomId();
    this.errorType = "error";
    this.finalCloseCodes = new Set([...FINAL_CLOSE_CODES, 4001]);
  }

  /** This client's id. */
  get clientId(): string {
    return this.id;
  }

  /** True when this client is the room's host (slot 0). */
  get isHost(): boolean {
    return this.index === 0;
  }

  /** Creates a room (this client becomes its host) for up to maxClients connected members. */
  async create(maxClients: number, url?: string): Promise<PartyV2Room & { instance: string; region: string }> {
    const msg: PartyV2ClientMessage = { type: "create", clientId: this.id, maxClients };
    if (url !== undefined) msg.url = url;
    const reply = this.waitFor(["created"], ["error"], 10_000);
    this.send(msg);
    const r = await reply;
    const out: PartyV2Room & { instance: string; region: string } = {
      room: r.room,
      index: r.index,
      peers: [],
      instance: r.instance,
      region: r.region,
    };
    if (typeof r.url === "string") out.url = r.url;
    return out;
  }

  /** Joins a room by its code (case-sensitive); with this clientId's earlier slot, reclaims it. */
  async join(room: string): Promise<PartyV2Room> {
    const reply = this.waitFor(["joined"], ["error"], 10_000);
    this.send({ type: "join", clientId: this.id, room });
    const r = await reply;
    const out: PartyV2Room = { room: r.room, index: r.index, peers: [...r.peers] };
    if (typeof r.url === "string") out.url = r.url;
    return out;
  }

  /** Sends data to every other connected member. */
  broadcast(data: unknown): boolean {
    return this.send({ type: "send", data });
  }

  /** Sends data to the member at slot index (one's own index included). */
  sendTo(index: number, data: unknown): boolean {
    return this.send({ type: "send", data, to: index });
  }

  /** Host only: replaces the room's retained state; the others get it, this client does not. */
  setState(data: unknown): boolean {
    if (data === undefined) throw new Error("partyline party-v2: state data is required (null clears it)");
    this.roomState = data;
    return this.send({ type: "set_state", data });
  }

  /** Host only: closes the room; every member, this one included, is closed with 4001. */
  closeRoom(): boolean {
    return this.send({ type: "close_room" });
  }

  protected override observe(msg: PartyV2ServerMessage): boolean {
    switch (msg.type) {
      case "created":
        this.room = msg.room;
        this.index = msg.index;
        this.peers = [];
        this.roomState = undefined;
        this.controllerUrl = msg.url;
        break;
      case "joined":
        if (this.room !== msg.room) this.roomState = undefined;
        this.room = msg.room;
        this.index = msg.index;
        this.peers = [...msg.peers];
        this.controllerUrl = msg.url;
        break;
      case "peer_joined":
        if (!this.peers.includes(msg.index)) this.peers = [...this.peers, msg.index].sort((a, b) => a - b);
        break;
      case "peer_left":
        this.peers = this.peers.filter((p) => p !== msg.index);
        break;
      case "state":
        this.roomState = msg.data;
        break;
    }
    return true;
  }

  protected override async handshake(reconnected: boolean): Promise<void> {
    if (!reconnected || !this.room) return;
    const room = this.room;
    const reply = this.waitFor(["joined"], ["error"], this.handshakeWait);
    this.sendNow({ type: "join", clientId: this.id, room });
    try {
      await reply;
    } catch (e) {
      const err = e as PartylineError;
      if (err.kind === "server") this.forget(); // the room ended, or it is full
      throw new PartylineError("handshake", `rejoining room ${room} failed: ${err.message}`, err.code, err.retry);
    }
  }

  private forget(): void {
    this.room = null;
    this.index = null;
    this.peers = [];
    this.roomState = undefined;
    this.controllerUrl = undefined;
  }
}

function randomId(): string {
  const c = (globalThis as any).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}
