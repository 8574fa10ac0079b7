import { Connection, ConnectionOptions } from "./connection.js";
import { TokenSource } from "./auth.js";
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
export type ChatServerMessage = ChatDirectMessage | ChatGroupMessage | {
    type: "ONE_TO_ONE_CHAT_HISTORY";
    chatId: string;
    messages: ChatDirectMessage[];
    hasMore: boolean;
} | {
    type: "GROUP_CHAT_HISTORY";
    groupId: string;
    messages: ChatGroupMessage[];
    hasMore: boolean;
} | {
    type: "SUCCESS";
    msg: string;
    messageId?: string;
} | {
    type: "ERROR";
    msg: string;
} | {
    type: "INFO";
    msg: string;
};
export type ChatClientMessage = {
    type: "AUTH";
    token: string;
} | {
    type: "ONE_TO_ONE_CHAT";
    from: string;
    to: string;
    content: string;
    chatId?: string;
} | {
    type: "GROUP_CHAT";
    from: string;
    groupId: string;
    content: string;
} | {
    type: "JOIN_GROUP";
    groupId: string;
    username: string;
} | {
    type: "LEAVE_GROUP";
    groupId: string;
    username: string;
} | {
    type: "GET_ONE_TO_ONE_HISTORY";
    from: string;
    to: string;
    chatId?: string;
    limit?: number;
    before?: string;
} | {
    type: "GET_GROUP_CHAT_HISTORY";
    groupId: string;
    limit?: number;
    before?: string;
} | {
    type: "DISCONNECT";
};
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
export declare function chatIdFor(a: string, b: string): string;
export declare class ChatClient extends Connection<ChatServerMessage, ChatClientMessage> {
    private tokenSource;
    /** The authenticated username (known from the token before the server confirms it). */
    username: string | null;
    /** Requests written on the current socket, oldest first. */
    private inflight;
    /** Awaited requests not written yet (offline queue), by message object. */
    private awaited;
    /** The ERROR that the last observe() handed to an awaiting caller. */
    private claimed;
    constructor(url: string, options: ChatOptions);
    /**
     * Sends a request and resolves with its reply (SUCCESS, or the history
     * page), or rejects with the server's ERROR text. Queued while offline;
     * the wait for the reply (the handshakeTimeout option) starts once it is
     * written. Only that promise reports the ERROR: no `error` event repeats it.
     */
    request(msg: Exclude<ChatClientMessage, {
        type: "AUTH" | "DISCONNECT";
    }>): Promise<ChatServerMessage>;
    /** Sends a new token now (refreshing the expiry) and on every later reconnect. */
    refreshToken(token: TokenSource): Promise<void>;
    /** Sends a one-to-one message; chatId defaults to chatIdFor(me, to). */
    sendDirect(to: string, content: string, chatId?: string): boolean;
    /** Sends to a group this user is a member of. */
    sendGroup(groupId: string, content: string): boolean;
    joinGroup(groupId: string): boolean;
    /** Joins a group and resolves with the SUCCESS reply (rejects with the server's ERROR, e.g. "Already a member of group g1"). */
    join(groupId: string): Promise<ChatServerMessage>;
    leaveGroup(groupId: string): boolean;
    /** Loads a one-to-one history page (oldest first). */
    history(withUser: string, opts?: HistoryOptions & {
        chatId?: string;
    }): Promise<{
        type: "ONE_TO_ONE_CHAT_HISTORY";
        chatId: string;
        messages: ChatDirectMessage[];
        hasMore: boolean;
    }>;
    /** Loads a group history page (oldest first). */
    groupHistory(groupId: string, opts?: HistoryOptions): Promise<{
        type: "GROUP_CHAT_HISTORY";
        groupId: string;
        messages: ChatGroupMessage[];
        hasMore: boolean;
    }>;
    /** Asks the server to close (1000) and stops reconnecting. */
    disconnect(): void;
    protected handshake(): Promise<void>;
    private authenticate;
    protected written(msg: ChatClientMessage): void;
    /** Files a written request; an awaited one times out after handshakeWait (its reply, if it comes, is then ignored). */
    private track;
    protected observe(msg: any): boolean | void;
    protected answered(msg: any): boolean;
    private fail;
    private me;
}
