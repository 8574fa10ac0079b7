// channels dialect (seed 001, ws-chat-server): one channel per URL path.
// The client answers the server's heartbeats by itself (or the identity is
// lost) and claims its identity again after a reconnect.
import { Connection, PartylineError } from "./connection.js";
export class ChannelsClient extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        /** The server's view, from its latest heartbeat: may this connection post? */
        this.authenticated = false;
        this.user = options.user ?? null;
        this.autoHeartbeat = options.heartbeat ?? true;
        this.errorType = "error";
        this.onEvent("close", () => {
            this.authenticated = false;
        });
    }
    /** Claims a name in the channel; resolves true if it was free. */
    async identify(user) {
        this.user = user;
        const reply = this.waitFor(["identity"], [], this.handshakeWait);
        this.send({ type: "identity", user });
        const r = await reply;
        return r.success === "true";
    }
    /** Posts text to the channel (only accepted once authenticated). */
    post(text) {
        return this.send({ type: "message", text });
    }
    observe(msg) {
        if (msg.type === "heartbeat") {
            this.authenticated = msg.authenticated === "true";
            if (this.autoHeartbeat)
                this.sendNow({ type: "heartbeat" });
        }
    }
    /**
     * Claims the name again. Right after a drop the server may still hold it
     * for the old socket until that one misses its heartbeats, so a refusal
     * is retried every second until handshakeTimeout.
     */
    async handshake(reconnected) {
        if (!reconnected || this.user === null)
            return;
        const user = this.user;
        const end = Date.now() + this.handshakeWait;
        for (;;) {
            const reply = this.waitFor(["identity"], [], Math.max(1, end - Date.now()));
            this.sendNow({ type: "identity", user });
            const r = await reply;
            if (r.success === "true")
                return;
            if (Date.now() + 1000 >= end || !this.socketOpen) {
                throw new PartylineError("handshake", `the name ${user} is taken in this channel`);
            }
            await new Promise((res) => setTimeout(res, 1000));
        }
    }
}
