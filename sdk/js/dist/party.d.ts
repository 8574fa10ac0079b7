import { Connection, ConnectionOptions } from "./connection.js";
export type PartyServerMessage = {
    type: "created";
    room: string;
    token: string;
} | {
    type: "joined";
    room: string;
    clients: string[];
    token: string;
} | {
    type: "peer_joined";
    clientId: string;
} | {
    type: "peer_left";
    clientId: string;
} | {
    type: "message";
    from: string;
    data: unknown;
} | {
    type: "state";
    state: unknown;
} | {
    type: "error";
    message: string;
};
export type PartyClientMessage = {
    type: "create";
    clientId: string;
    maxClients?: number;
} | {
    type: "join";
    clientId: string;
    room: string;
    token?: string;
} | {
    type: "send";
    data: unknown;
    to?: string;
} | {
    type: "leave";
} | {
    type: "set_state";
    state: unknown;
};
export interface PartyOptions extends ConnectionOptions {
    /** This client's id (1-128 bytes); a random UUID by default. Keep it to rejoin after a page reload. */
    clientId?: string;
}
export declare class PartyClient extends Connection<PartyServerMessage, PartyClientMessage> {
    private id;
    /** The room this client is in, or null. */
    room: string | null;
    /** The token the server issued for this clientId in this room. */
    token: string | null;
    /** Every member's clientId in join order, this client included. */
    peers: string[];
    /** The room's retained state (undefined until one is set). */
    roomState: unknown;
    constructor(url: string, options?: PartyOptions);
    /** This client's id. */
    get clientId(): string;
    /** Changes the clientId; only while not in a room. */
    set clientId(id: string);
    /** Creates a room and joins it. */
    create(maxClients?: number): Promise<{
        room: string;
        token: string;
    }>;
    /** Joins a room by code (case-insensitive). */
    join(room: string, token?: string): Promise<{
        room: string;
        clients: string[];
        token: string;
    }>;
    /** Sends data to every other member. */
    broadcast(data: unknown): boolean;
    /** Sends data to one member. */
    sendTo(clientId: string, data: unknown): boolean;
    /** Replaces the room's retained state (every member gets it). */
    setState(state: unknown): boolean;
    /** Leaves the room. */
    leave(): boolean;
    protected observe(msg: PartyServerMessage): void;
    protected handshake(reconnected: boolean): Promise<void>;
    private forget;
}
