// party dialect (Party-Sockets): rooms with short codes. After a reconnect
// the client re-joins its room with its clientId and token, so the server
// swaps the new socket in without peer_left/peer_joined.
import { Connection, PartylineError } from "./connection.js";
export class PartyClient extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        /** The room this client is in, or null. */
        this.room = null;
        /** The token the server issued for this clientId in this room. */
        this.token = null;
        /** Every member's clientId in join order, this client included. */
        this.peers = [];
        /** The room's retained state (undefined until one is set). */
        this.roomState = undefined;
        this.id = options.clientId ?? randomId();
        this.errorType = "error";
    }
    /** This client's id. */
    get clientId() {
        return this.id;
    }
    /** Changes the clientId; only while not in a room. */
    set clientId(id) {
        if (this.room)
            throw new Error("partyline party: leave the room before changing the clientId");
        this.id = id;
    }
    /** Creates a room and joins it. */
    async create(maxClients) {
        const msg = { type: "create", clientId: this.clientId };
        if (maxClients !== undefined)
            msg.maxClients = maxClients;
        const reply = this.waitFor(["created"], ["error"], 10000);
        this.send(msg);
        const r = await reply;
        return { room: r.room, token: r.token };
    }
    /** Joins a room by code (case-insensitive). */
    async join(room, token) {
        const msg = { type: "join", clientId: this.clientId, room };
        if (token)
            msg.token = token;
        const reply = this.waitFor(["joined"], ["error"], 10000);
        this.send(msg);
        const r = await reply;
        return { room: r.room, clients: r.clients, token: r.token };
    }
    /** Sends data to every other member. */
    broadcast(data) {
        return this.send({ type: "send", data });
    }
    /** Sends data to one member. */
    sendTo(clientId, data) {
        return this.send({ type: "send", data, to: clientId });
    }
    /** Replaces the room's retained state (every member gets it). */
    setState(state) {
        return this.send({ type: "set_state", state });
    }
    /** Leaves the room. */
    leave() {
        this.forget();
        return this.send({ type: "leave" });
    }
    observe(msg) {
        switch (msg.type) {
            case "created":
                this.room = msg.room;
                this.token = msg.token;
                this.peers = [this.clientId];
                this.roomState = undefined;
                break;
            case "joined":
                if (this.room !== msg.room)
                    this.roomState = undefined;
                this.room = msg.room;
                this.token = msg.token;
                this.peers = [...msg.clients];
                break;
            case "peer_joined":
                if (!this.peers.includes(msg.clientId))
                    this.peers.push(msg.clientId);
                break;
            case "peer_left":
                this.peers = this.peers.filter((p) => p !== msg.clientId);
                break;
            case "state":
                this.roomState = msg.state;
                break;
        }
    }
    async handshake(reconnected) {
        if (!reconnected || !this.room)
            return;
        const room = this.room;
        const msg = { type: "join", clientId: this.clientId, room };
        if (this.token)
            msg.token = this.token;
        const reply = this.waitFor(["joined"], ["error"], this.handshakeWait);
        this.sendNow(msg);
        try {
            await reply;
        }
        catch (e) {
            const err = e;
            if (err.kind === "server")
                this.forget(); // the room is gone (server restart) or full
            throw new PartylineError("handshake", `rejoining room ${room} failed: ${err.message}`, err.code, err.retry);
        }
    }
    forget() {
        this.room = null;
        this.token = null;
        this.peers = [];
        this.roomState = undefined;
    }
}
function randomId() {
    const c = globalThis.crypto;
    if (c?.randomUUID)
        return c.randomUUID();
    return Math.random().toString(36).slice(2) + Date.now().toString(36);
}
