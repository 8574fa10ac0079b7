// notify dialect (seed 003's NotificationServer): a connection registers
// for a user with {type:"auth",userId} and receives the notifications the
// HTTP API posts. The registration is re-sent after every reconnect.
import { Connection, ConnectionOptions } from "./connection.js";

export type NotifyServerMessage =
  | { type: "authenticated"; userId: string }
  | { type: "notification"; timestamp: number; [field: string]: unknown }
  | { type: "broadcast"; timestamp: number; [field: string]: unknown }
  | { type: "error"; message: string };

export type NotifyClientMessage = { type: "auth"; userId: string };

export interface NotifyOptions extends ConnectionOptions {
  /** Register for this user on every (re)connect. */
  userId?: string;
}

export class NotifyClient extends Connection<NotifyServerMessage, NotifyClientMessage> {
  userId: string | null;

  constructor(url: string, options: NotifyOptions = {}) {
    super(url, options);
    this.userId = options.userId ?? null;
    this.errorType = "error";
  }

  /** Registers for a user now and after every reconnect. */
  async auth(userId: string): Promise<void> {
    this.userId = userId;
    const reply = this.waitFor(["authenticated"], ["error"], this.handshakeWait);
    // While connecting, the handshake sends the registration; don't send it twice.
    if (this.state === "open") this.sendNow({ type: "auth", userId });
    else this.connect();
    await reply;
  }

  protected override async handshake(): Promise<void> {
    if (this.userId === null) return;
    const reply = this.waitFor(["authenticated"], ["error"], this.handshakeWait);
    this.sendNow({ type: "auth", userId: this.userId });
    await reply;
  }
}
