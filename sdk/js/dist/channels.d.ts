import { Connection, ConnectionOptions } from "./connection.js";
export type ChannelsServerMessage = {
    type: "connection";
    id: string;
} | {
    type: "heartbeat";
    authenticated: "true" | "false";
} | {
    type: "identity";
    success: "true" | "false";
} | {
    type: "message";
    text: string;
    timestamp: number;
    user: string;
} | {
    type: "error";
    message: string;
};
export type ChannelsClientMessage = {
    type: "heartbeat";
} | {
    type: "identity";
    user: string;
} | {
    type: "message";
    text: string;
};
export interface ChannelsOptions extends ConnectionOptions {
    /** Claim this name on every (re)connect. */
    user?: string;
    /** Answer heartbeats automatically (default true). */
    heartbeat?: boolean;
}
export declare class ChannelsClient extends Connection<ChannelsServerMessage, ChannelsClientMessage> {
    user: string | null;
    /** The server's view, from its latest heartbeat: may this connection post? */
    authenticated: boolean;
    private readonly autoHeartbeat;
    constructor(url: string, options?: ChannelsOptions);
    /** Claims a name in the channel; resolves true if it was free. */
    identify(user: string): Promise<boolean>;
    /** Posts text to the channel (only accepted once authenticated). */
    post(text: string): boolean;
    protected observe(msg: ChannelsServerMessage): void;
    /**
     * Claims the name again. Right after a drop the server may still hold it
     * for the old socket until that one misses its heartbeats, so a refusal
     * is retried every second until handshakeTimeout.
     */
    protected handshake(reconnected: boolean): Promise<void>;
}
