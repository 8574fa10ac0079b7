// teams dialect (seed 000): a connection registers as team N with
// {"team":N}, then sends {"from":N,"to":M,"message":"..."}. After a
// reconnect the client re-sends its registration by itself.
import { Connection } from "./connection.js";
export class TeamsClient extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        /** True once the server confirmed the registration on the current socket. */
        this.registered = false;
        this.team = options.team ?? null;
        this.errorType = "error";
        this.onEvent("close", () => {
            this.registered = false;
        });
    }
    /** Registers as `team` now (if connected) and on every reconnect. Resolves with the server's status text. */
    async register(team) {
        if (this.registered && this.team === team)
            return `Team ${team} registered successfully`;
        this.team = team;
        if (this.state === "open")
            return this.sendRegistration(team);
        const done = new Promise((resolve, reject) => {
            const offOpen = this.onEvent("open", () => {
                offOpen();
                offErr();
                resolve(`Team ${team} registered successfully`);
            });
            const offErr = this.onEvent("error", (e) => {
                if (e.kind !== "handshake")
                    return;
                offOpen();
                offErr();
                reject(e);
            });
        });
        this.connect();
        return done;
    }
    /** Sends a message from this client's team to team `to`. */
    sendTo(to, message) {
        if (this.team === null)
            throw new Error("partyline teams: register() before sending");
        return this.send({ from: this.team, to, message });
    }
    async handshake() {
        if (this.team !== null)
            await this.sendRegistration(this.team);
    }
    async sendRegistration(team) {
        const ok = `Team ${team} registered successfully`;
        const reply = this.waitFor(["status"], ["error"], this.handshakeWait, (m) => m.data === ok);
        this.sendNow({ team });
        await reply;
        this.registered = true;
        return ok;
    }
}
