// party-v2 dialect (Party-Sockets 2.x): peers are numeric slot indices, the
// creator is the host (slot 0) who alone sets the retained state and may
// close the room, and the clientId is the secret that reclaims a slot.
// After a reconnect the client re-joins its room with its clientId and gets
// its slot (and index) back; close 4000 (replaced) and 4001 (room closed)
// are final.
import { Connection, FINAL_CLOSE_CODES, PartylineError } from "./connection.js";
export class PartyV2Client extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        /** The room this client is in, or null. */
        this.room = null;
        /** This client's slot index, or null. */
        this.index = null;
        /** The other connected members' indices, ascending. */
        this.peers = [];
        /** The room's retained state (undefined until the host sets one; null is a value). */
        this.roomState = undefined;
        /** The controller URL of the room, if any. */
        this.controllerUrl = undefined;
        this.id = options.clientId ?? randomId();
        this.errorType = "error";
        this.finalCloseCodes = new Set([...FINAL_CLOSE_CODES, 4001]);
    }
    /** This client's id. */
    get clientId() {
        return this.id;
    }
    /** True when this client is the room's host (slot 0). */
    get isHost() {
        return this.index === 0;
    }
    /** Creates a room (this client becomes its host) for up to maxClients connected members. */
    async create(maxClients, url) {
        const msg = { type: "create", clientId: this.id, maxClients };
        if (url !== undefined)
            msg.url = url;
        const reply = this.waitFor(["created"], ["error"], 10000);
        this.send(msg);
        const r = await reply;
        const out = {
            room: r.room,
            index: r.index,
            peers: [],
            instance: r.instance,
            region: r.region,
        };
        if (typeof r.url === "string")
            out.url = r.url;
        return out;
    }
    /** Joins a room by its code (case-sensitive); with this clientId's earlier slot, reclaims it. */
    async join(room) {
        const reply = this.waitFor(["joined"], ["error"], 10000);
        this.send({ type: "join", clientId: this.id, room });
        const r = await reply;
        const out = { room: r.room, index: r.index, peers: [...r.peers] };
        if (typeof r.url === "string")
            out.url = r.url;
        return out;
    }
    /** Sends data to every other connected member. */
    broadcast(data) {
        return this.send({ type: "send", data });
    }
    /** Sends data to the member at slot index (one's own index included). */
    sendTo(index, data) {
        return this.send({ type: "send", data, to: index });
    }
    /** Host only: replaces the room's retained state; the others get it, this client does not. */
    setState(data) {
        if (data === undefined)
            throw new Error("partyline party-v2: state data is required (null clears it)");
        this.roomState = data;
        return this.send({ type: "set_state", data });
    }
    /** Host only: closes the room; every member, this one included, is closed with 4001. */
    closeRoom() {
        return this.send({ type: "close_room" });
    }
    observe(msg) {
        switch (msg.type) {
            case "created":
                this.room = msg.room;
                this.index = msg.index;
                this.peers = [];
                this.roomState = undefined;
                this.controllerUrl = msg.url;
                break;
            case "joined":
                if (this.room !== msg.room)
                    this.roomState = undefined;
                this.room = msg.room;
                this.index = msg.index;
                this.peers = [...msg.peers];
                this.controllerUrl = msg.url;
                break;
            case "peer_joined":
                if (!this.peers.includes(msg.index))
                    this.peers = [...this.peers, msg.index].sort((a, b) => a - b);
                break;
            case "peer_left":
                this.peers = this.peers.filter((p) => p !== msg.index);
                break;
            case "state":
                this.roomState = msg.data;
                break;
        }
        return true;
    }
    async handshake(reconnected) {
        if (!reconnected || !this.room)
            return;
        const room = this.room;
        const reply = this.waitFor(["joined"], ["error"], this.handshakeWait);
        this.sendNow({ type: "join", clientId: this.id, room });
        try {
            await reply;
        }
        catch (e) {
            const err = e;
            if (err.kind === "server")
                this.forget(); // the room ended, or it is full
            throw new PartylineError("handshake", `rejoining room ${room} failed: ${err.message}`, err.code, err.retry);
        }
    }
    forget() {
        this.room = null;
        this.index = null;
        this.peers = [];
        this.roomState = undefined;
        this.controllerUrl = undefined;
    }
}
function randomId() {
    const c = globalThis.crypto;
    if (c?.randomUUID)
        return c.randomUUID();
    return Math.random().toString(36).slice(2) + Date.now().toString(36);
}
