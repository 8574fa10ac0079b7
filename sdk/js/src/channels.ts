// channels dialect (seed 001, ws-chat-server): one channel per URL path.
// The client answers the server's heartbeats by itself (or the identity is
// lost) and claims its identity again after a reconnect.
import { Connection, ConnectionOptions, PartylineError } from "./connection.js";

export type ChannelsServerMessage =
  | { type: "connection"; id: string }
  | { type: "heartbeat"; authenticated: "true" | "false" }
  | { type: "identity"; success: "true" | "false" }
  | { type: "message"; text: string; timestamp: number; user: string }
  | { type: "error"; message: string };

export type ChannelsClientMessage =
  | { type: "heartbeat" }
  | { type: "identity"; user: string }
  | { type: "message"; text: string };

export interface ChannelsOptions extends ConnectionOptions {
  /** Claim this name on every (re)connect. */
  user?: string;
  /** Answer heartbeats automatically (default true). */
  heartbeat?: boolean;
}

export class ChannelsClient extends Connection<ChannelsServerMessage, ChannelsClientMessage> {
  user: string | null;
  /** The server's view, from its latest heartbeat: may this connection post? */
  authenticated = false;
  private readonly autoHeartbeat: boolean;

  constructor(url: string, options: ChannelsOptions = {}) {
    super(url, options);
    this.user = options.user ?? null;
    this.autoHeartbeat = options.heartbeat ?? true;
    this.errorType = "error";
    this.onEvent("close", () => {
      this.authenticated = false;
    });
  }

  /** Claims a name in the channel; resolves true if it was free. */
  async identify(user: string): Promise<boolean> {
    this.user = user;
    const reply = this.waitFor(["identity"], [], this.handshakeWait);
    this.send({ type: "identity", user });
    const r = await reply;
    return r.success === "true";
  }

  /** Posts text to the channel (only accepted once authenticated). */
  post(text: string): boolean {
    return this.send({ type: "message", text });
  }

  protected override observe(msg: ChannelsServerMessage): void {
    if (msg.type === "heartbeat") {
      this.authenticated = msg.authenticated === "true";
      if (this.autoHeartbeat) this.sendNow({ type: "heartbeat" });
    }
  }

  /**
   * Claims the name again. Right after a drop the server may still hold it
   * for the old socket until that one misses its heartbeats, so a refusal
   * is retried every second until handshakeTimeout.
   */
  protected override async handshake(reconnected: boolean): Promise<void> {
    if (!reconnected || this.user === null) return;
    const user = this.user;
    const end = Date.now() + this.handshakeWait;
    for (;;) {
      const reply = this.waitFor(["identity"], [], Math.max(1, end - Date.now()));
      this.sendNow({ type: "identity", user });
      const r = await reply;
      if (r.success === "true") return;
      if (Date.now() + 1000 >= end || !this.socketOpen) {
        throw new PartylineError("handshake", `the name ${user} is taken in this channel`);
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
  }
}
