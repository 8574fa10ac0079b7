// party dialect (Party-Sockets): rooms with short codes. After a reconnect
// the client re-joins its room with its clientId and token, so the server
// swaps the new socket in without peer_left/peer_joined. It remembers the
// room's epoch and the highest seq it has processed and re-joins with
// `since`, so a server that still has the frames it missed replays them
// (`recovered: true`); frames it has already processed are dropped.
import { Connection, PartylineError } from "./connection.js";
export class PartyClient extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        /** The room this client is in, or null. */
        this.room = null;
        /** The token the server issued for this clientId in this room. */
        this.token = null;
        /** Every member's clientId in join order, this client included (away members too). */
        this.peers = [];
        /** Members whose socket dropped and whose seat the server keeps for now. */
        this.away = [];
        /** The room's retained state (undefined until one is set). */
        this.roomState = undefined;
        /** The room's epoch (its incarnation), or null before a room or from a server without offsets. */
        this.epoch = null;
        /** The highest seq processed in this epoch, or null if unknown. */
        this.seq = null;
        /** The seq of roomState, or null if unknown (then the next retained state is taken as is). */
        this.stateSeq = null;
        /** The join in flight that is a re-join (automatic, or with an offset), and the offset it carried. */
        this.rejoin = null;
        /** The next frame may be the retained state sent right after "joined". */
        this.afterJoined = false;
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
    /** Where this client is in the room's stream, to pass to `join` after a page reload; null if unknown. */
    get offset() {
        return this.epoch !== null && this.seq !== null ? { epoch: this.epoch, seq: this.seq } : null;
    }
    /** Creates a room and joins it. */
    async create(maxClients) {
        const msg = { type: "create", clientId: this.clientId };
        if (maxClients !== undefined)
            msg.maxClients = maxClients;
        const reply = this.waitFor(["created"], ["error"], 10000);
        this.send(msg);
        const r = await reply;
        const out = { room: r.room, token: r.token };
        if (typeof r.epoch === "string")
            out.epoch = r.epoch;
        if (typeof r.seq === "number")
            out.seq = r.seq;
        return out;
    }
    /**
     * Joins a room by code (case-insensitive). With the token and the offset
     * of an earlier session (say, saved before a page reload), the server
     * gives this clientId its seat back and replays what it missed
     * (`recovered: true`).
     */
    async join(room, token, since) {
        const msg = { type: "join", clientId: this.clientId, room };
        if (token)
            msg.token = token;
        if (since && typeof since.epoch === "string" && typeof since.seq === "number") {
            msg.since = { epoch: since.epoch, seq: since.seq };
            // Frames at or below it were processed by the earlier session.
            this.epoch = since.epoch;
            this.seq = since.seq;
            this.stateSeq = null;
        }
        const reply = this.waitFor(["joined"], ["error"], 10000);
        this.sendJoin(msg);
        let r;
        try {
            r = await reply;
        }
        catch (e) {
            this.rejoin = null;
            if (!this.room) {
                // Refused: the offset passed in belongs to no room this client is in.
                this.epoch = null;
                this.seq = null;
            }
            throw e;
        }
        const out = {
            room: r.room,
            clients: r.clients,
            token: r.token,
        };
        if (typeof r.epoch === "string")
            out.epoch = r.epoch;
        if (typeof r.seq === "number")
            out.seq = r.seq;
        if (typeof r.recovered === "boolean")
            out.recovered = r.recovered;
        return out;
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
        const afterJoined = this.afterJoined;
        this.afterJoined = false;
        switch (msg.type) {
            case "created":
                this.room = msg.room;
                this.token = msg.token;
                this.peers = [this.clientId];
                this.away = [];
                this.roomState = undefined;
                this.stateSeq = null;
                this.epoch = typeof msg.epoch === "string" ? msg.epoch : null;
                this.seq = typeof msg.seq === "number" ? msg.seq : this.epoch !== null ? 0 : null;
                break;
            case "joined":
                this.onJoined(msg);
                this.afterJoined = true;
                break;
            case "peer_joined":
                if (!this.peers.includes(msg.clientId))
                    this.peers.push(msg.clientId);
                this.away = this.away.filter((p) => p !== msg.clientId);
                break;
            case "peer_left":
                this.peers = this.peers.filter((p) => p !== msg.clientId);
                this.away = this.away.filter((p) => p !== msg.clientId);
                break;
            case "peer_away":
                if (!this.away.includes(msg.clientId))
                    this.away.push(msg.clientId);
                break;
            case "peer_back":
                this.away = this.away.filter((p) => p !== msg.clientId);
                break;
            case "message":
                if (typeof msg.seq === "number") {
                    if (this.seq !== null && msg.seq <= this.seq)
                        return false; // already processed
                    this.seq = msg.seq;
                }
                break;
            case "state": {
                if (typeof msg.seq !== "number") {
                    this.roomState = msg.state;
                    break;
                }
                const held = this.stateSeq !== null && msg.seq <= this.stateSeq;
                if (afterJoined) {
                    // The retained state that follows "joined": a snapshot, older than
                    // the join's offset; it does not move the offset.
                    if (held)
                        return false;
                }
                else {
                    if (this.seq !== null && msg.seq <= this.seq)
                        return false; // already processed
                    this.seq = msg.seq;
                    if (held)
                        return false; // the snapshot after the re-join already delivered it
                }
                this.roomState = msg.state;
                this.stateSeq = msg.seq;
                break;
            }
        }
        return true;
    }
    onJoined(msg) {
        const rejoin = this.rejoin;
        this.rejoin = null;
        const since = rejoin?.since ?? null;
        if (this.room !== msg.room)
            this.roomState = undefined;
        this.room = msg.room;
        this.token = msg.token;
        this.peers = [...msg.clients];
        this.away = Array.isArray(msg.away) ? msg.away.filter((p) => typeof p === "string") : [];
        const epoch = typeof msg.epoch === "string" ? msg.epoch : null;
        const roomSeq = typeof msg.seq === "number" ? msg.seq : null;
        const recovered = !!since && msg.recovered === true && epoch === since.epoch;
        if (epoch !== this.epoch && this.epoch !== null) {
            // A new incarnation of the room: its offsets start afresh and the old state is gone.
            this.roomState = undefined;
        }
        if (!recovered) {
            // Nothing is replayed: continue from the room's offset and take the
            // retained state that follows as it is.
            this.seq = roomSeq;
            this.stateSeq = null;
        }
        this.epoch = epoch;
        if (rejoin)
            this.emitEvent("rejoined", { recovered, epoch, seq: this.seq, since });
    }
    async handshake(reconnected) {
        if (!reconnected || !this.room)
            return;
        const room = this.room;
        const msg = { type: "join", clientId: this.clientId, room };
        if (this.token)
            msg.token = this.token;
        const offset = this.offset;
        if (offset)
            msg.since = offset;
        const reply = this.waitFor(["joined"], ["error"], this.handshakeWait);
        this.sendJoin(msg, true);
        try {
            await reply;
        }
        catch (e) {
            this.rejoin = null;
            const err = e;
            if (err.kind === "server")
                this.forget(); // the room is gone (server restart) or full
            throw new PartylineError("handshake", `rejoining room ${room} failed: ${err.message}`, err.code, err.retry);
        }
    }
    /** Sends a join (now, for a re-join; else through the queue), noting the offset it carries. */
    sendJoin(msg, automatic = false) {
        // An automatic re-join without an offset (a server without epochs) is still a re-join.
        this.rejoin = automatic || msg.since ? { since: msg.since ?? null } : null;
        if (automatic)
            this.sendNow(msg);
        else
            this.send(msg);
    }
    forget() {
        this.room = null;
        this.token = null;
        this.peers = [];
        this.away = [];
        this.roomState = undefined;
        this.epoch = null;
        this.seq = null;
        this.stateSeq = null;
    }
}
function randomId() {
    const c = globalThis.crypto;
    if (c?.randomUUID)
        return c.randomUUID();
    return Math.random().toString(36).slice(2) + Date.now().toString(36);
}
