// notify dialect (seed 003's NotificationServer): a connection registers
// for a user with {type:"auth",userId} and receives the notifications the
// HTTP API posts. The registration is re-sent after every reconnect.
import { Connection } from "./connection.js";
export class NotifyClient extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        this.userId = options.userId ?? null;
        this.errorType = "error";
    }
    /** Registers for a user now and after every reconnect. */
    async auth(userId) {
        this.userId = userId;
        const reply = this.waitFor(["authenticated"], ["error"], this.handshakeWait);
        // While connecting, the handshake sends the registration; don't send it twice.
        if (this.state === "open")
            this.sendNow({ type: "auth", userId });
        else
            this.connect();
        await reply;
    }
    async handshake() {
        if (this.userId === null)
            return;
        const reply = this.waitFor(["authenticated"], ["error"], this.handshakeWait);
        this.sendNow({ type: "auth", userId: this.userId });
        await reply;
    }
}
