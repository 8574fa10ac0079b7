// rooms dialect (seed 003's ChatServer): named rooms, many per connection.
// After a reconnect the client re-joins every room it was in, with the same
// username, before queued messages go out.
import { Connection } from "./connection.js";
export class RoomsClient extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        /** The id the server gave the current socket. */
        this.clientId = null;
        /** room -> username, for every room this client is in. */
        this.rooms = new Map();
        this.errorType = "error";
    }
    /** Joins a room under a username; resolves when the server confirms. */
    async join(room, username) {
        this.rooms.set(room, username);
        const reply = this.waitFor(["joined"], ["error"], this.handshakeWait, (m) => m.room === room);
        this.send({ type: "join", room, username });
        await reply;
    }
    /** Leaves a room. */
    leave(room) {
        this.rooms.delete(room);
        return this.send({ type: "leave", room });
    }
    /** Posts to a room (every member, this client included, gets it). */
    message(room, content) {
        return this.send({ type: "message", room, content });
    }
    /** A typing indicator: sent only while connected, never queued. */
    typing(room) {
        return this.state === "open" && this.sendNow({ type: "typing", room });
    }
    observe(msg) {
        if (msg.type === "connected")
            this.clientId = msg.clientId;
    }
    async handshake(reconnected) {
        if (!reconnected || this.rooms.size === 0)
            return;
        const waits = [];
        for (const [room, username] of this.rooms) {
            waits.push(this.waitFor(["joined"], [], this.handshakeWait, (m) => m.room === room));
            this.sendNow({ type: "join", room, username });
        }
        await Promise.all(waits);
    }
}
