import { Connection, ConnectionOptions } from "./connection.js";
export type NotifyServerMessage = {
    type: "authenticated";
    userId: string;
} | {
    type: "notification";
    timestamp: number;
    [field: string]: unknown;
} | {
    type: "broadcast";
    timestamp: number;
    [field: string]: unknown;
} | {
    type: "error";
    message: string;
};
export type NotifyClientMessage = {
    type: "auth";
    userId: string;
};
export interface NotifyOptions extends ConnectionOptions {
    /** Register for this user on every (re)connect. */
    userId?: string;
}
export declare class NotifyClient extends Connection<NotifyServerMessage, NotifyClientMessage> {
    userId: string | null;
    constructor(url: string, options?: NotifyOptions);
    /** Registers for a user now and after every reconnect. */
    auth(userId: string): Promise<void>;
    protected handshake(): Promise<void>;
}
