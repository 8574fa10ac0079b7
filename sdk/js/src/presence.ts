// presence dialect (seed 004): online/offline updates for a user's contacts
// and for names it subscribes to. AUTH and the subscriptions are re-sent
// after every reconnect.
import { Connection, ConnectionOptions } from "./connection.js";
import { authenticatedAs, resolveToken, TokenSource } from "./auth.js";

export type PresenceStatus = "online" | "offline";

export type PresenceServerMessage =
  | { type: "PRESENCE_UPDATE"; username: string; status: PresenceStatus; timestamp: string }
  | { type: "SUCCESS"; msg: string }
  | { type: "ERROR"; msg: string };

export type PresenceClientMessage = { type: "AUTH"; token: string } | { type: "SUBSCRIBE_PRESENCE"; usernames: string[] };

export interface PresenceOptions extends ConnectionOptions {
  token: TokenSource;
}

export class PresenceClient extends Connection<PresenceServerMessage, PresenceClientMessage> {
  private tokenSource: TokenSource;
  username: string | null = null;
  /** The latest known status of each user. */
  readonly statuses = new Map<string, PresenceStatus>();
  private readonly subscribed = new Set<string>();

  constructor(url: string, options: PresenceOptions) {
    super(url, options);
    this.tokenSource = options.token;
    this.errorType = "ERROR";
  }

  /** Follows these users (kept across reconnects). */
  subscribe(usernames: string[]): boolean {
    const fresh = usernames.filter((u) => !this.subscribed.has(u));
    for (const u of fresh) this.subscribed.add(u);
    if (fresh.length === 0) return true;
    return this.send({ type: "SUBSCRIBE_PRESENCE", usernames: fresh });
  }

  protected override observe(msg: PresenceServerMessage): void {
    if (msg.type === "PRESENCE_UPDATE") this.statuses.set(msg.username, msg.status);
  }

  protected override async handshake(): Promise<void> {
    const token = await resolveToken(this.tokenSource);
    const reply = this.waitFor(["SUCCESS"], ["ERROR"], this.handshakeWait, (m) => authenticatedAs(m.msg) !== null);
    this.sendNow({ type: "AUTH", token });
    this.username = authenticatedAs((await reply).msg);
    if (this.subscribed.size > 0) this.sendNow({ type: "SUBSCRIBE_PRESENCE", usernames: [...this.subscribed] });
  }
}
