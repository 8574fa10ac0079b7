// chat dialect (seed 004): JWT-authenticated one-to-one and group chat with
// durable history. AUTH is sent on every (re)connect before anything
// queued; group membership is kept by the server, so nothing else needs
// re-sending.
//
// Replies carry no request id, but a connection serves its requests one at
// a time, in order, and answers each with one reply (SUCCESS, ERROR or a
// history page). So the client correlates by order: every request written
// to the socket joins a FIFO, and each reply settles the oldest. Two ERRORs
// are not replies in order: "Too many requests in flight" answers the
// newest request at once, and "Authentication timeout" / "Token expired"
// answer none (a close follows).
import { Connection, ConnectionOptions, PartylineError } from "./connection.js";
import { authenticatedAs, resolveToken, TokenSource, tokenUsername } from "./auth.js";

export interface ChatDirectMessage {
  type: "ONE_TO_ONE_CHAT";
  from: string;
  to: string;
  content: string;
  chatId: string;
  timestamp: string;
  messageId: string;
}

export interface ChatGroupMessage {
  type: "GROUP_CHAT";
  from: string;
  groupId: string;
  content: string;
  timestamp: string;
  messageId: string;
}

export type ChatServerMessage =
  | ChatDirectMessage
  | ChatGroupMessage
  | { type: "ONE_TO_ONE_CHAT_HISTORY"; chatId: string; messages: ChatDirectMessage[]; hasMore: boolean }
  | { type: "GROUP_CHAT_HISTORY"; groupId: string; messages: ChatGroupMessage[]; hasMore: boolean }
  | { type: "SUCCESS"; msg: string; messageId?: string }
  | { type: "ERROR"; msg: string }
  | { type: "INFO"; msg: string };

export type ChatClientMessage =
  | { type: "AUTH"; token: string }
  | { type: "ONE_TO_ONE_CHAT"; from: string; to: string; content: string; chatId?: string }
  | { type: "GROUP_CHAT"; from: string; groupId: string; content: string }
  | { type: "JOIN_GROUP"; groupId: string; username: string }
  | { type: "LEAVE_GROUP"; groupId: string; username: string }
  | { type: "GET_ONE_TO_ONE_HISTORY"; from: string; to: string; chatId?: string; limit?: number; before?: string }
  | { type: "GET_GROUP_CHAT_HISTORY"; groupId: string; limit?: number; before?: string }
  | { type: "DISCONNECT" };

export interface ChatOptions extends ConnectionOptions {
  /** The JWT, or a function returning a fresh one before each (re)connect. */
  token: TokenSource;
}

/** A request written to the socket, waiting for its reply. */
interface Inflight {
  type: string;
  resolve?: (msg: any) => void;
  reject?: (err: PartylineError) => void;
  timer?: ReturnType<typeof setTimeout>;
}

const replyTypes = new Set(["SUCCESS", "ERROR", "ONE_TO_ONE_CHAT_HISTORY", "GROUP_CHAT_HISTORY"]);

export interface HistoryOptions {
  limit?: number;
  /** A messageId: page back from it. */
  before?: string;
}

/** A stable chatId for a pair of users (the same whichever side computes it). */
export function chatIdFor(a: string, b: string): string {
  return [a, b].sort().join(":");
}

export class ChatClient extends Connection<ChatServerMessage, ChatClientMessage> {
  private tokenSource: TokenSource;
  /** The authenticated username (known from the token before the server confirms it). */
  username: string | null = null;

  /** Requests written on the current socket, oldest first. */
  private inflight: Inflight[] = [];
  /** Awaited requests not written yet (offline queue), by message object. */
  private awaited = new WeakMap<object, Inflight>();
  /** The ERROR that the last observe() handed to an awaiting caller. */
  private claimed: unknown = null;

  constructor(url: string, options: ChatOptions) {
    super(url, options);
    this.tokenSource = options.token;
    if (typeof options.token === "string") this.username = tokenUsername(options.token);
    this.errorType = "ERROR";
    this.onEvent("drop", ({ message, reason }) => {
      const e = this.awaited.get(message);
      if (e) {
        this.awaited.delete(message);
        e.reject?.(new PartylineError(reason === "queue_full" ? "queue_full" : "handshake", `${message.type} dropped before it was sent (${reason})`));
      }
    });
    // A socket that closes answers nothing more: fail what it still owed.
    this.onEvent("close", ({ code }) => {
      for (const e of this.inflight.splice(0)) this.fail(e, new PartylineError("handshake", `connection closed (${code}) before the reply`, code));
    });
  }

  /**
   * Sends a request and resolves with its reply (SUCCESS, or the history
   * page), or rejects with the server's ERROR text. Queued while offline;
   * the wait for the reply (the handshakeTimeout option) starts once it is
   * written. Only that promise reports the ERROR: no `error` event repeats it.
   */
  request(msg: Exclude<ChatClientMessage, { type: "AUTH" | "DISCONNECT" }>): Promise<ChatServerMessage> {
    return new Promise((resolve, reject) => {
      this.awaited.set(msg, { type: msg.type, resolve, reject });
      if (!this.send(msg)) this.awaited.delete(msg); // the drop event rejected it
    });
  }

  /** Sends a new token now (refreshing the expiry) and on every later reconnect. */
  async refreshToken(token: TokenSource): Promise<void> {
    this.tokenSource = token;
    if (this.state === "open") await this.authenticate();
  }

  /** Sends a one-to-one message; chatId defaults to chatIdFor(me, to). */
  sendDirect(to: string, content: string, chatId?: string): boolean {
    const from = this.me();
    return this.send({ type: "ONE_TO_ONE_CHAT", from, to, content, chatId: chatId ?? chatIdFor(from, to) });
  }

  /** Sends to a group this user is a member of. */
  sendGroup(groupId: string, content: string): boolean {
    return this.send({ type: "GROUP_CHAT", from: this.me(), groupId, content });
  }

  joinGroup(groupId: string): boolean {
    return this.send({ type: "JOIN_GROUP", groupId, username: this.me() });
  }

  /** Joins a group and resolves with the SUCCESS reply (rejects with the server's ERROR, e.g. "Already a member of group g1"). */
  join(groupId: string): Promise<ChatServerMessage> {
    return this.request({ type: "JOIN_GROUP", groupId, username: this.me() });
  }

  leaveGroup(groupId: string): boolean {
    return this.send({ type: "LEAVE_GROUP", groupId, username: this.me() });
  }

  /** Loads a one-to-one history page (oldest first). */
  async history(withUser: string, opts: HistoryOptions & { chatId?: string } = {}) {
    const from = this.me();
    const chatId = opts.chatId ?? chatIdFor(from, withUser);
    const reply = await this.request({ type: "GET_ONE_TO_ONE_HISTORY", from, to: withUser, chatId, ...opts });
    return reply as Extract<ChatServerMessage, { type: "ONE_TO_ONE_CHAT_HISTORY" }>;
  }

  /** Loads a group history page (oldest first). */
  async groupHistory(groupId: string, opts: HistoryOptions = {}) {
    const reply = await this.request({ type: "GET_GROUP_CHAT_HISTORY", groupId, ...opts });
    return reply as Extract<ChatServerMessage, { type: "GROUP_CHAT_HISTORY" }>;
  }

  /** Asks the server to close (1000) and stops reconnecting. */
  disconnect(): void {
    if (this.state === "open") this.sendNow({ type: "DISCONNECT" });
    this.close(1000, "bye");
  }

  protected override async handshake(): Promise<void> {
    await this.authenticate();
  }

  private async authenticate(): Promise<void> {
    const token = await resolveToken(this.tokenSource);
    this.username ??= tokenUsername(token);
    const reply = new Promise<any>((resolve, reject) => {
      const e: Inflight = { type: "AUTH", resolve, reject };
      if (!this.sendNow({ type: "AUTH", token })) {
        reject(new PartylineError("handshake", "the socket closed before AUTH went out", undefined, true));
        return;
      }
      this.track(e);
    });
    const r = await reply;
    this.username = authenticatedAs(r.msg);
  }

  protected override written(msg: ChatClientMessage): void {
    if (msg.type === "DISCONNECT") return; // answered by the close
    const e = this.awaited.get(msg);
    if (e) this.awaited.delete(msg);
    this.track(e ?? { type: msg.type });
  }

  /** Files a written request; an awaited one times out after handshakeWait (its reply, if it comes, is then ignored). */
  private track(e: Inflight): void {
    this.inflight.push(e);
    if (!e.resolve) return;
    e.timer = setTimeout(() => {
      const { reject } = e;
      e.resolve = e.reject = undefined;
      reject?.(new PartylineError("handshake", `no reply to ${e.type} within ${this.handshakeWait} ms`, undefined, true));
    }, this.handshakeWait);
  }

  protected override observe(msg: any): boolean | void {
    this.claimed = null;
    if (!replyTypes.has(msg.type)) return;
    const text = typeof msg.msg === "string" ? msg.msg : "";
    let e: Inflight | undefined;
    if (msg.type === "ERROR" && /^(Authentication timeout|Token expired)/.test(text)) return; // answers no request
    if (msg.type === "ERROR" && text.startsWith("Too many requests in flight")) e = this.inflight.pop(); // the newest, refused at once
    else if (msg.type === "SUCCESS" && authenticatedAs(text) !== null && this.inflight[0]?.type !== "AUTH") return; // the handshake token's SUCCESS
    else e = this.inflight.shift();
    if (!e) return;
    if (e.timer) clearTimeout(e.timer);
    if (msg.type !== "ERROR") e.resolve?.(msg);
    else if (e.reject) {
      this.claimed = msg;
      e.reject(new PartylineError("server", text));
    }
  }

  protected override answered(msg: any): boolean {
    return msg === this.claimed;
  }

  private fail(e: Inflight, err: PartylineError): void {
    if (e.timer) clearTimeout(e.timer);
    e.reject?.(err);
  }

  private me(): string {
    if (!this.username) throw new PartylineError("auth", "not authenticated yet: the username is unknown");
    return this.username;
  }
}
