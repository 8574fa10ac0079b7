// rooms dialect (seed 003's ChatServer): named rooms, many per connection.
// After a reconnect the client re-joins every room it was in, with the same
// username, before queued messages go out.
import { Connection, ConnectionOptions } from "./connection.js";

export type RoomsServerMessage =
  | { type: "connected"; clientId: string }
  | { type: "joined"; room: string }
  | { type: "userJoined"; room: string; user: string; userCount: number }
  | { type: "userLeft"; room: string; user: string; userCount: number }
  | { type: "message"; room: string; user: string; content: string; timestamp: number }
  | { type: "typing"; room: string; user: string }
  | { type: "error"; message: string };

export type RoomsClientMessage =
  | { type: "join"; room: string; username: string }
  | { type: "leave"; room: string }
  | { type: "message"; room: string; content: string }
  | { type: "typing"; room: string };

export class RoomsClient extends Connection<RoomsServerMessage, RoomsClientMessage> {
  /** The id the server gave the current socket. */
  clientId: string | null = null;
  /** room -> username, for every room this client is in. */
  readonly rooms = new Map<string, string>();

  constructor(url: string, options: ConnectionOptions = {}) {
    super(url, options);
    this.errorType = "error";
  }

  /** Joins a room under a username; resolves when the server confirms. */
  async join(room: string, username: string): Promise<void> {
    this.rooms.set(room, username);
    const reply = this.waitFor(["joined"], ["error"], this.handshakeWait, (m) => m.room === room);
    this.send({ type: "join", room, username });
    await reply;
  }

  /** Leaves a room. */
  leave(room: string): boolean {
    this.rooms.delete(room);
    return this.send({ type: "leave", room });
  }

  /** Posts to a room (every member, this client included, gets it). */
  message(room: string, content: string): boolean {
    return this.send({ type: "message", room, content });
  }

  /** A typing indicator: sent only while connected, never queued. */
  typing(room: string): boolean {
    return this.state === "open" && this.sendNow({ type: "typing", room });
  }

  protected override observe(msg: RoomsServerMessage): void {
    if (msg.type === "connected") this.clientId = msg.clientId;
  }

  protected override async handshake(reconnected: boolean): Promise<void> {
    if (!reconnected || this.rooms.size === 0) return;
    const waits: Promise<unknown>[] = [];
    for (const [room, username] of this.rooms) {
      waits.push(this.waitFor(["joined"], [], this.handshakeWait, (m) => m.room === room));
      this.sendNow({ type: "join", room, username });
    }
    await Promise.all(waits);
  }
}
