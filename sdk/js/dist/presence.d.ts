import { Connection, ConnectionOptions } from "./connection.js";
import { TokenSource } from "./auth.js";
export type PresenceStatus = "online" | "offline";
export type PresenceServerMessage = {
    type: "PRESENCE_UPDATE";
    username: string;
    status: PresenceStatus;
    timestamp: string;
} | {
    type: "SUCCESS";
    msg: string;
} | {
    type: "ERROR";
    msg: string;
};
export type PresenceClientMessage = {
    type: "AUTH";
    token: string;
} | {
    type: "SUBSCRIBE_PRESENCE";
    usernames: string[];
};
export interface PresenceOptions extends ConnectionOptions {
    token: TokenSource;
}
export declare class PresenceClient extends Connection<PresenceServerMessage, PresenceClientMessage> {
    private tokenSource;
    username: string | null;
    /** The latest known status of each user. */
    readonly statuses: Map<string, PresenceStatus>;
    private readonly subscribed;
    constructor(url: string, options: PresenceOptions);
    /** Follows these users (kept across reconnects). */
    subscribe(usernames: string[]): boolean;
    protected observe(msg: PresenceServerMessage): void;
    protected handshake(): Promise<void>;
}
