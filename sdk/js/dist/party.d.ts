import { Connection, ConnectionEvents, ConnectionOptions } from "./connection.js";
/** A position in a room's stream: the room's incarnation and an offset in it. */
export interface PartyOffset {
    /** The id of this incarnation of the room (a server that lost the room makes a new one). */
    epoch: string;
    /** The room's offset: the seq of the last frame processed (0 at creation). */
    seq: number;
}
export type PartyServerMessage = {
    type: "created";
    room: string;
    token: string;
    epoch?: string;
    seq?: number;
} | {
    type: "joined";
    room: string;
    clients: string[];
    token: string;
    epoch?: string;
    seq?: number;
    /** Only when the join carried `since`: true if every frame after it follows. */
    recovered?: boolean;
    /** Members whose socket dropped and whose seat is kept for now. */
    away?: string[];
} | {
    type: "peer_joined";
    clientId: string;
} | {
    type: "peer_left";
    clientId: string;
}
/** A member's socket dropped; its seat is kept for the server's seat-grace period. */
 | {
    type: "peer_away";
    clientId: string;
}
/** A member that was away came back in time. */
 | {
    type: "peer_back";
    clientId: string;
} | {
    type: "message";
    from: string;
    data: unknown;
    seq?: number;
} | {
    type: "state";
    state: unknown;
    seq?: number;
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
    since?: PartyOffset;
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
/** What a join that carried `since` (every automatic re-join) came back with. */
export interface PartyRejoined {
    /**
     * True: every frame for this client after the offset it sent follows, in
     * order, exactly once. False: nothing is replayed (the server no longer
     * has it, the room is a new incarnation, or the server does not keep
     * offsets); resync from the room state that follows.
     */
    recovered: boolean;
    /** The room's epoch now (null if the server sends none). */
    epoch: string | null;
    /** The offset the stream continues from: the one sent if recovered, else the room's current one. */
    seq: number | null;
    /** The offset the join carried, if any. */
    since: PartyOffset | null;
}
/** PartyClient's lifecycle events: the Connection's plus `rejoined`. */
export interface PartyEvents extends ConnectionEvents<PartyClientMessage> {
    /** A re-join (automatic after a reconnect, or `join` with `since`) was accepted. */
    rejoined: PartyRejoined;
}
export interface PartyOptions extends ConnectionOptions {
    /** This client's id (1-128 bytes); a random UUID by default. Keep it to rejoin after a page reload. */
    clientId?: string;
}
export declare class PartyClient extends Connection<PartyServerMessage, PartyClientMessage, PartyEvents> {
    private id;
    /** The room this client is in, or null. */
    room: string | null;
    /** The token the server issued for this clientId in this room. */
    token: string | null;
    /** Every member's clientId in join order, this client included (away members too). */
    peers: string[];
    /** Members whose socket dropped and whose seat the server keeps for now. */
    away: string[];
    /** The room's retained state (undefined until one is set). */
    roomState: unknown;
    /** The room's epoch (its incarnation), or null before a room or from a server without offsets. */
    epoch: string | null;
    /** The highest seq processed in this epoch, or null if unknown. */
    seq: number | null;
    /** The seq of roomState, or null if unknown (then the next retained state is taken as is). */
    private stateSeq;
    /** The join in flight that is a re-join (automatic, or with an offset), and the offset it carried. */
    private rejoin;
    /** The next frame may be the retained state sent right after "joined". */
    private afterJoined;
    constructor(url: string, options?: PartyOptions);
    /** This client's id. */
    get clientId(): string;
    /** Changes the clientId; only while not in a room. */
    set clientId(id: string);
    /** Where this client is in the room's stream, to pass to `join` after a page reload; null if unknown. */
    get offset(): PartyOffset | null;
    /** Creates a room and joins it. */
    create(maxClients?: number): Promise<{
        room: string;
        token: string;
        epoch?: string;
        seq?: number;
    }>;
    /**
     * Joins a room by code (case-insensitive). With the token and the offset
     * of an earlier session (say, saved before a page reload), the server
     * gives this clientId its seat back and replays what it missed
     * (`recovered: true`).
     */
    join(room: string, token?: string, since?: PartyOffset | null): Promise<{
        room: string;
        clients: string[];
        token: string;
        epoch?: string;
        seq?: number;
        recovered?: boolean;
    }>;
    /** Sends data to every other member. */
    broadcast(data: unknown): boolean;
    /** Sends data to one member. */
    sendTo(clientId: string, data: unknown): boolean;
    /** Replaces the room's retained state (every member gets it). */
    setState(state: unknown): boolean;
    /** Leaves the room. */
    leave(): boolean;
    protected observe(msg: PartyServerMessage): boolean;
    private onJoined;
    protected handshake(reconnected: boolean): Promise<void>;
    /** Sends a join (now, for a re-join; else through the queue), noting the offset it carries. */
    private sendJoin;
    private forget;
}
