// chat dialect (seed 004): JWT-authenticated one-to-one and group chat with
// durable history. AUTH is sent on every (re)connect before anything
// queued; group membership is kept by the server, so nothing else needs
// re-sending.
//
// Replies carry no request id, but a connection serves its requests one at
// a time, in order, and answers each with one reply (SUCCESS, ERROR or a
// history page). So the client correlates by order: every request written
// to the socket joins a FIFO, and each reply settles the oldest. Two ERRORs
// are not replies in order: "Too many requests in flight" answers the
// newest request at once, and "Authentication timeout" / "Token expired"
// answer none (a close follows).
import { Connection, PartylineError } from "./connection.js";
import { authenticatedAs, resolveToken, tokenUsername } from "./auth.js";
const replyTypes = new Set(["SUCCESS", "ERROR", "ONE_TO_ONE_CHAT_HISTORY", "GROUP_CHAT_HISTORY"]);
/** A stable chatId for a pair of users (the same whichever side computes it). */
export function chatIdFor(a, b) {
    return [a, b].sort().join(":");
}
export class ChatClient extends Connection {
    constructor(url, options) {
        super(url, options);
        /** The authenticated username (known from the token before the server confirms it). */
        this.username = null;
        /** Requests written on the current socket, oldest first. */
        this.inflight = [];
        /** Awaited requests not written yet (offline queue), by message object. */
        this.awaited = new WeakMap();
        /** The ERROR that the last observe() handed to an awaiting caller. */
        this.claimed = null;
        this.tokenSource = options.token;
        if (typeof options.token === "string")
            this.username = tokenUsername(options.token);
        this.errorType = "ERROR";
        this.onEvent("drop", ({ message, reason }) => {
            const e = this.awaited.get(message);
            if (e) {
                this.awaited.delete(message);
                e.reject?.(new PartylineError(reason === "queue_full" ? "queue_full" : "handshake", `${message.type} dropped before it was sent (${reason})`));
            }
        });
        // A socket that closes answers nothing more: fail what it still owed.
        this.onEvent("close", ({ code }) => {
            for (const e of this.inflight.splice(0))
                this.fail(e, new PartylineError("handshake", `connection closed (${code}) before the reply`, code));
        });
    }
    /**
     * Sends a request and resolves with its reply (SUCCESS, or the history
     * page), or rejects with the server's ERROR text. Queued while offline;
     * the wait for the reply (the handshakeTimeout option) starts once it is
     * written. Only that promise reports the ERROR: no `error` event repeats it.
     */
    request(msg) {
        return new Promise((resolve, reject) => {
            this.awaited.set(msg, { type: msg.type, resolve, reject });
            if (!this.send(msg))
                this.awaited.delete(msg); // the drop event rejected it
        });
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
    /** Joins a group and resolves with the SUCCESS reply (rejects with the server's ERROR, e.g. "Already a member of group g1"). */
    join(groupId) {
        return this.request({ type: "JOIN_GROUP", groupId, username: this.me() });
    }
    leaveGroup(groupId) {
        return this.send({ type: "LEAVE_GROUP", groupId, username: this.me() });
    }
    /** Loads a one-to-one history page (oldest first). */
    async history(withUser, opts = {}) {
        const from = this.me();
        const chatId = opts.chatId ?? chatIdFor(from, withUser);
        const reply = await this.request({ type: "GET_ONE_TO_ONE_HISTORY", from, to: withUser, chatId, ...opts });
        return reply;
    }
    /** Loads a group history page (oldest first). */
    async groupHistory(groupId, opts = {}) {
        const reply = await this.request({ type: "GET_GROUP_CHAT_HISTORY", groupId, ...opts });
        return reply;
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
        const reply = new Promise((resolve, reject) => {
            const e = { type: "AUTH", resolve, reject };
            if (!this.sendNow({ type: "AUTH", token })) {
                reject(new PartylineError("handshake", "the socket closed before AUTH went out", undefined, true));
                return;
            }
            this.track(e);
        });
        const r = await reply;
        this.username = authenticatedAs(r.msg);
    }
    written(msg) {
        if (msg.type === "DISCONNECT")
            return; // answered by the close
        const e = this.awaited.get(msg);
        if (e)
            this.awaited.delete(msg);
        this.track(e ?? { type: msg.type });
    }
    /** Files a written request; an awaited one times out after handshakeWait (its reply, if it comes, is then ignored). */
    track(e) {
        this.inflight.push(e);
        if (!e.resolve)
            return;
        e.timer = setTimeout(() => {
            const { reject } = e;
            e.resolve = e.reject = undefined;
            reject?.(new PartylineError("handshake", `no reply to ${e.type} within ${this.handshakeWait} ms`, undefined, true));
        }, this.handshakeWait);
    }
    observe(msg) {
        this.claimed = null;
        if (!replyTypes.has(msg.type))
            return;
        const text = typeof msg.msg === "string" ? msg.msg : "";
        let e;
        if (msg.type === "ERROR" && /^(Authentication timeout|Token expired)/.test(text))
            return; // answers no request
        if (msg.type === "ERROR" && text.startsWith("Too many requests in flight"))
            e = this.inflight.pop(); // the newest, refused at once
        else if (msg.type === "SUCCESS" && authenticatedAs(text) !== null && this.inflight[0]?.type !== "AUTH")
            return; // the handshake token's SUCCESS
        else
            e = this.inflight.shift();
        if (!e)
            return;
        if (e.timer)
            clearTimeout(e.timer);
        if (msg.type !== "ERROR")
            e.resolve?.(msg);
        else if (e.reject) {
            this.claimed = msg;
            e.reject(new PartylineError("server", text));
        }
    }
    answered(msg) {
        return msg === this.claimed;
    }
    fail(e, err) {
        if (e.timer)
            clearTimeout(e.timer);
        e.reject?.(err);
    }
    me() {
        if (!this.username)
            throw new PartylineError("auth", "not authenticated yet: the username is unknown");
        return this.username;
    }
}
