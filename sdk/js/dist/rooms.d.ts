import { Connection, ConnectionOptions } from "./connection.js";
export type RoomsServerMessage = {
    type: "connected";
    clientId: string;
} | {
    type: "joined";
    room: string;
} | {
    type: "userJoined";
    room: string;
    user: string;
    userCount: number;
} | {
    type: "userLeft";
    room: string;
    user: string;
    userCount: number;
} | {
    type: "message";
    room: string;
    user: string;
    content: string;
    timestamp: number;
} | {
    type: "typing";
    room: string;
    user: string;
} | {
    type: "error";
    message: string;
};
export type RoomsClientMessage = {
    type: "join";
    room: string;
    username: string;
} | {
    type: "leave";
    room: string;
} | {
    type: "message";
    room: string;
    content: string;
} | {
    type: "typing";
    room: string;
};
export declare class RoomsClient extends Connection<RoomsServerMessage, RoomsClientMessage> {
    /** The id the server gave the current socket. */
    clientId: string | null;
    /** room -> username, for every room this client is in. */
    readonly rooms: Map<string, string>;
    constructor(url: string, options?: ConnectionOptions);
    /** Joins a room under a username; resolves when the server confirms. */
    join(room: string, username: string): Promise<void>;
    /** Leaves a room. */
    leave(room: string): boolean;
    /** Posts to a room (every member, this client included, gets it). */
    message(room: string, content: string): boolean;
    /** A typing indicator: sent only while connected, never queued. */
    typing(room: string): boolean;
    protected observe(msg: RoomsServerMessage): void;
    protected handshake(reconnected: boolean): Promise<void>;
}
