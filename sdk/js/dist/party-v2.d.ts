import { Connection, ConnectionEvents, ConnectionOptions } from "./connection.js";
export type PartyV2ServerMessage = {
    type: "created";
    room: string;
    instance: string;
    region: string;
    index: number;
    url?: string;
} | {
    type: "joined";
    room: string;
    index: number;
    peers: number[];
    url?: string;
} | {
    type: "peer_joined";
    index: number;
} | {
    type: "peer_left";
    index: number;
} | {
    type: "message";
    from: number;
    data?: unknown;
}
/** The host's retained state: pushed to the others on set_state, and to a joiner right after `joined`. */
 | {
    type: "state";
    data: unknown;
} | {
    type: "error";
    message: string;
};
export type PartyV2ClientMessage = {
    type: "create";
    clientId: string;
    maxClients: number;
    url?: string;
} | {
    type: "join";
    clientId: string;
    room: string;
} | {
    type: "send";
    data?: unknown;
    to?: number;
} | {
    type: "set_state";
    data: unknown;
} | {
    type: "close_room";
};
export interface PartyV2Options extends ConnectionOptions {
    /** This client's id, the secret that reclaims its slot; a random UUID by default. Keep it to rejoin after a page reload. */
    clientId?: string;
}
/** What `create` and `join` resolve with. */
export interface PartyV2Room {
    room: string;
    /** This client's slot index (0: the host). */
    index: number;
    /** The other connected members' indices, ascending. */
    peers: number[];
    /** The controller URL resolved by the server, if the host gave a template. */
    url?: string;
}
export declare class PartyV2Client extends Connection<PartyV2ServerMessage, PartyV2ClientMessage, ConnectionEvents<PartyV2ClientMessage>> {
    private id;
    /** The room this client is in, or null. */
    room: string | null;
    /** This client's slot index, or null. */
    index: number | null;
    /** The other connected members' indices, ascending. */
    peers: number[];
    /** The room's retained state (undefined until the host sets one; null is a value). */
    roomState: unknown;
    /** The controller URL of the room, if any. */
    controllerUrl: string | undefined;
    constructor(url: string, options?: PartyV2Options);
    /** This client's id. */
    get clientId(): string;
    /** True when this client is the room's host (slot 0). */
    get isHost(): boolean;
    /** Creates a room (this client becomes its host) for up to maxClients connected members. */
    create(maxClients: number, url?: string): Promise<PartyV2Room & {
        instance: string;
        region: string;
    }>;
    /** Joins a room by its code (case-sensitive); with this clientId's earlier slot, reclaims it. */
    join(room: string): Promise<PartyV2Room>;
    /** Sends data to every other connected member. */
    broadcast(data: unknown): boolean;
    /** Sends data to the member at slot index (one's own index included). */
    sendTo(index: number, data: unknown): boolean;
    /** Host only: replaces the room's retained state; the others get it, this client does not. */
    setState(data: unknown): boolean;
    /** Host only: closes the room; every member, this one included, is closed with 4001. */
    closeRoom(): boolean;
    protected observe(msg: PartyV2ServerMessage): boolean;
    protected handshake(reconnected: boolean): Promise<void>;
    private forget;
}
