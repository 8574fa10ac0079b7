// presence dialect (seed 004): online/offline updates for a user's contacts
// and for names it subscribes to. AUTH and the subscriptions are re-sent
// after every reconnect.
import { Connection } from "./connection.js";
import { authenticatedAs, resolveToken } from "./auth.js";
export class PresenceClient extends Connection {
    constructor(url, options) {
        super(url, options);
        this.username = null;
        /** The latest known status of each user. */
        this.statuses = new Map();
        this.subscribed = new Set();
        this.tokenSource = options.token;
        this.errorType = "ERROR";
    }
    /** Follows these users (kept across reconnects). */
    subscribe(usernames) {
        const fresh = usernames.filter((u) => !this.subscribed.has(u));
        for (const u of fresh)
            this.subscribed.add(u);
        if (fresh.length === 0)
            return true;
        return this.send({ type: "SUBSCRIBE_PRESENCE", usernames: fresh });
    }
    observe(msg) {
        if (msg.type === "PRESENCE_UPDATE")
            this.statuses.set(msg.username, msg.status);
    }
    async handshake() {
        const token = await resolveToken(this.tokenSource);
        const reply = this.waitFor(["SUCCESS"], ["ERROR"], this.handshakeWait, (m) => authenticatedAs(m.msg) !== null);
        this.sendNow({ type: "AUTH", token });
        this.username = authenticatedAs((await reply).msg);
        if (this.subscribed.size > 0)
            this.sendNow({ type: "SUBSCRIBE_PRESENCE", usernames: [...this.subscribed] });
    }
}
