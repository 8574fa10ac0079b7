// chat dialect (seed 004): JWT-authenticated one-to-one and group chat with
// durable history. AUTH is sent on every (re)connect before anything
// queued; group membership is kept by the server, so nothing else needs
// re-sending.
import { Connection, PartylineError } from "./connection.js";
import { authenticatedAs, resolveToken, tokenUsername } from "./auth.js";
/** A stable chatId for a pair of users (the same whichever side computes it). */
export function chatIdFor(a, b) {
    return [a, b].sort().join(":");
}
export class ChatClient extends Connection {
    constructor(url, options) {
        super(url, options);
        /** The authenticated username (known from the token before the server confirms it). */
        this.username = null;
        this.tokenSource = options.token;
        if (typeof options.token === "string")
            this.username = tokenUsername(options.token);
        this.errorType = "ERROR";
    }
    /** Sends a new token now (refreshing the expiry) and on every later reconnect. */
    async refreshToken(token) {
        this.tokenSource = token;
        if (this.state === "open")
            await this.authenticate();
    }
    /** Sends a one-to-one message; chatId defaults to chatIdFor(me, to). */
    sendDirect(to, content, chatId) {
        const from = this.me();
        return this.send({ type: "ONE_TO_ONE_CHAT", from, to, content, chatId: chatId ?? chatIdFor(from, to) });
    }
    /** Sends to a group this user is a member of. */
    sendGroup(groupId, content) {
        return this.send({ type: "GROUP_CHAT", from: this.me(), groupId, content });
    }
    joinGroup(groupId) {
        return this.send({ type: "JOIN_GROUP", groupId, username: this.me() });
    }
    leaveGroup(groupId) {
        return this.send({ type: "LEAVE_GROUP", groupId, username: this.me() });
    }
    /** Loads a one-to-one history page (oldest first). */
    async history(withUser, opts = {}) {
        const from = this.me();
        const chatId = opts.chatId ?? chatIdFor(from, withUser);
        const reply = this.waitFor(["ONE_TO_ONE_CHAT_HISTORY"], ["ERROR"], this.handshakeWait, (m) => m.chatId === chatId);
        this.send({ type: "GET_ONE_TO_ONE_HISTORY", from, to: withUser, chatId, ...opts });
        return (await reply);
    }
    /** Loads a group history page (oldest first). */
    async groupHistory(groupId, opts = {}) {
        const reply = this.waitFor(["GROUP_CHAT_HISTORY"], ["ERROR"], this.handshakeWait, (m) => m.groupId === groupId);
        this.send({ type: "GET_GROUP_CHAT_HISTORY", groupId, ...opts });
        return (await reply);
    }
    /** Asks the server to close (1000) and stops reconnecting. */
    disconnect() {
        if (this.state === "open")
            this.sendNow({ type: "DISCONNECT" });
        this.close(1000, "bye");
    }
    async handshake() {
        await this.authenticate();
    }
    async authenticate() {
        const token = await resolveToken(this.tokenSource);
        this.username ?? (this.username = tokenUsername(token));
        const reply = this.waitFor(["SUCCESS"], ["ERROR"], this.handshakeWait, (m) => authenticatedAs(m.msg) !== null);
        this.sendNow({ type: "AUTH", token });
        const r = await reply;
        this.username = authenticatedAs(r.msg);
    }
    me() {
        if (!this.username)
            throw new PartylineError("auth", "not authenticated yet: the username is unknown");
        return this.username;
    }
}
