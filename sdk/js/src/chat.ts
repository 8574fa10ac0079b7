// chat dialect (seed 004): JWT-authenticated one-to-one and group chat with
// durable history. AUTH is sent on every (re)connect before anything
// queued; group membership is kept by the server, so nothing else needs
// re-sending.
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

  constructor(url: string, options: ChatOptions) {
    super(url, options);
    this.tokenSource = options.token;
    if (typeof options.token === "string") this.username = tokenUsername(options.token);
    this.errorType = "ERROR";
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

  leaveGroup(groupId: string): boolean {
    return this.send({ type: "LEAVE_GROUP", groupId, username: this.me() });
  }

  /** Loads a one-to-one history page (oldest first). */
  async history(withUser: string, opts: HistoryOptions & { chatId?: string } = {}) {
    const from = this.me();
    const chatId = opts.chatId ?? chatIdFor(from, withUser);
    const reply = this.waitFor(["ONE_TO_ONE_CHAT_HISTORY"], ["ERROR"], this.handshakeWait, (m) => m.chatId === chatId);
    this.send({ type: "GET_ONE_TO_ONE_HISTORY", from, to: withUser, chatId, ...opts });
    return (await reply) as Extract<ChatServerMessage, { type: "ONE_TO_ONE_CHAT_HISTORY" }>;
  }

  /** Loads a group history page (oldest first). */
  async groupHistory(groupId: string, opts: HistoryOptions = {}) {
    const reply = this.waitFor(["GROUP_CHAT_HISTORY"], ["ERROR"], this.handshakeWait, (m) => m.groupId === groupId);
    this.send({ type: "GET_GROUP_CHAT_HISTORY", groupId, ...opts });
    return (await reply) as Extract<ChatServerMessage, { type: "GROUP_CHAT_HISTORY" }>;
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
    const reply = this.waitFor(["SUCCESS"], ["ERROR"], this.handshakeWait, (m) => authenticatedAs(m.msg) !== null);
    this.sendNow({ type: "AUTH", token });
    const r = await reply;
    this.username = authenticatedAs(r.msg);
  }

  private me(): string {
    if (!this.username) throw new PartylineError("auth", "not authenticated yet: the username is unknown");
    return this.username;
  }
}
