// The core client: one logical connection to a partyline dialect that
// survives socket drops. It reconnects with exponential backoff and jitter,
// queues what is sent while the socket is down (up to a cap), lets a dialect
// helper re-register itself after every (re)connect before the queue is
// flushed, and knows which close codes mean "stop".
export class PartylineError extends Error {
    constructor(kind, message, code, retry = false) {
        super(message);
        this.name = "PartylineError";
        this.kind = kind;
        this.code = code;
        this.retry = retry;
    }
}
/**
 * Close codes after which a Connection never reconnects. Every other code
 * reconnects (and a helper re-registers): notably 1001 (going away: a
 * graceful shutdown or deploy), 1006 (abnormal: the connection died) and
 * 1012 (service restart).
 */
export const FINAL_CLOSE_CODES = new Set([4000, 4401]);
const OPEN = 1;
/**
 * A reconnecting, queueing JSON connection. `In` is the union of the
 * messages the server sends (each with a string `type`), `Out` what the
 * client sends, `Ev` the lifecycle events (a helper may add its own, e.g.
 * PartyClient's `rejoined`). Methods are safe to call in any state.
 */
export class Connection {
    constructor(url, options = {}) {
        this.ws = null;
        this._state = "idle";
        this.attempt = 0;
        this.everOpened = false;
        this.userClosed = false;
        this.retryTimer = null;
        this.openTimer = null;
        this.queue = [];
        this.handlers = new Map();
        this.events = new Map();
        this.waiters = [];
        this.onlineHook = null;
        /** The `type` of the dialect's error reply, surfaced as an `error` event. */
        this.errorType = null;
        /** Close codes after which this connection never reconnects (a helper may add its dialect's own). */
        this.finalCloseCodes = FINAL_CLOSE_CODES;
        this.url = url;
        const WS = options.WebSocket ?? globalThis.WebSocket;
        if (!WS) {
            throw new TypeError("partyline: no WebSocket implementation: pass options.WebSocket (e.g. the `ws` package in Node)");
        }
        this.WS = WS;
        this.opts = {
            queueLimit: options.queueLimit ?? 256,
            handshakeTimeout: options.handshakeTimeout ?? 10000,
            connectTimeout: options.connectTimeout ?? 10000,
            autoConnect: options.autoConnect ?? true,
            protocols: options.protocols,
        };
        const r = options.reconnect ?? true;
        const ro = typeof r === "object" ? r : {};
        this.retry = {
            enabled: r !== false,
            maxAttempts: ro.maxAttempts ?? Infinity,
            minDelay: ro.minDelay ?? 500,
            maxDelay: ro.maxDelay ?? 15000,
            factor: ro.factor ?? 2,
            jitter: Math.min(1, Math.max(0, ro.jitter ?? 0.5)),
        };
        const g = globalThis;
        if (typeof g.addEventListener === "function") {
            // A browser that comes back online retries at once instead of waiting out the backoff.
            this.onlineHook = () => {
                if (this._state === "reconnecting")
                    this.reconnectNow();
            };
            g.addEventListener("online", this.onlineHook);
        }
        if (this.opts.autoConnect)
            queueMicrotask(() => this.connect());
    }
    /** The current state. */
    get state() {
        return this._state;
    }
    /** Consecutive failed attempts so far (0 while connected). */
    get attempts() {
        return this.attempt;
    }
    /** Messages waiting for the socket. */
    get queued() {
        return this.queue.length;
    }
    /** Opens the socket if it is not open or opening. Idempotent. */
    connect() {
        if (this._state === "connecting" || this._state === "handshaking" || this._state === "open")
            return;
        if (this._state === "closed")
            return;
        this.clearRetry();
        this.open();
    }
    /** Skips the backoff wait and retries now; also revives a connection that gave up. */
    reconnectNow() {
        if (this.userClosed)
            return;
        if (this._state === "closed" || this._state === "reconnecting") {
            if (this._state === "closed")
                this.attempt = 0;
            this.clearRetry();
            this.open();
        }
    }
    /** Closes for good: no reconnect; queued messages are dropped. */
    close(code = 1000, reason = "") {
        this.userClosed = true;
        this.clearRetry();
        if (this.openTimer)
            clearTimeout(this.openTimer);
        this.openTimer = null;
        const ws = this.ws;
        if (ws) {
            this.detach(ws);
            try {
                ws.close(code, reason);
            }
            catch {
                /* already closing */
            }
            this.emit("close", { code, reason, willReconnect: false });
        }
        this.finish();
    }
    /**
     * Sends msg as JSON. Returns true when it went out or was queued, false
     * when it was dropped (queue full, or the connection is closed for good).
     */
    send(msg) {
        if (this._state === "open" && this.ws && this.ws.readyState === OPEN) {
            this.ws.send(JSON.stringify(msg));
            this.written(msg);
            return true;
        }
        if (this._state === "closed") {
            this.emit("drop", { message: msg, reason: "closed" });
            return false;
        }
        if (this.queue.length >= this.opts.queueLimit) {
            this.emit("drop", { message: msg, reason: "queue_full" });
            this.emit("error", new PartylineError("queue_full", `offline queue full (${this.opts.queueLimit} messages): message dropped`));
            return false;
        }
        this.queue.push(msg);
        return true;
    }
    /** Listens for server messages of one `type` ("*": every message). Returns an unsubscribe function. */
    on(type, fn) {
        let set = this.handlers.get(type);
        if (!set)
            this.handlers.set(type, (set = new Set()));
        set.add(fn);
        return () => this.off(type, fn);
    }
    /** Removes a listener added with `on`. */
    off(type, fn) {
        this.handlers.get(type)?.delete(fn);
    }
    /** Listens for lifecycle events. Returns an unsubscribe function. */
    onEvent(name, fn) {
        let set = this.events.get(name);
        if (!set)
            this.events.set(name, (set = new Set()));
        set.add(fn);
        return () => this.offEvent(name, fn);
    }
    /** Removes a listener added with `onEvent`. */
    offEvent(name, fn) {
        this.events.get(name)?.delete(fn);
    }
    /** Resolves with the next message of one of `types` (e.g. for request/reply). */
    next(types, timeout = this.opts.handshakeTimeout) {
        return this.waitFor(Array.isArray(types) ? types : [types], [], timeout);
    }
    // ---- for dialect helpers ----
    /**
     * Runs after every socket open, before queued messages are flushed.
     * Helpers override it to re-register (send with sendNow, wait with
     * waitFor). A rejection is reported as a `handshake` error and drops the
     * queue; the socket stays open.
     */
    handshake(_reconnected) { }
    /** Runs when `send` has written msg to the socket (at once, or from the offline queue). */
    written(_msg) { }
    /**
     * True when an error message (errorType) answers a request whose caller
     * awaits the reply: that promise is rejected, so no `error` event repeats it.
     */
    answered(_msg) {
        return false;
    }
    /** Emits a helper's own lifecycle event (one of `Ev`'s). */
    emitEvent(name, ev) {
        const set = this.events.get(name);
        if (!set)
            return;
        for (const fn of [...set])
            safeCall(fn, ev);
    }
    /** Sends now, bypassing the queue (false if the socket is not open). */
    sendNow(msg) {
        if (!this.ws || this.ws.readyState !== OPEN)
            return false;
        this.ws.send(JSON.stringify(msg));
        return true;
    }
    /**
     * Resolves with the next message whose type is in ok (and that `match`
     * accepts), rejects on the next one whose type is in fail, on timeout, or
     * when the socket closes first.
     */
    waitFor(ok, fail, timeout, match) {
        return new Promise((resolve, reject) => {
            const w = {
                ok: new Set(ok),
                fail: new Set(fail),
                match,
                resolve,
                reject,
                timer: setTimeout(() => {
                    this.waiters = this.waiters.filter((x) => x !== w);
                    reject(new PartylineError("handshake", `no ${ok.join("/")} reply within ${timeout} ms`, undefined, true));
                }, timeout),
            };
            this.waiters.push(w);
        });
    }
    /** The handshakeTimeout option, in ms. */
    get handshakeWait() {
        return this.opts.handshakeTimeout;
    }
    /** True while the socket is open (handshake included). */
    get socketOpen() {
        return !!this.ws && this.ws.readyState === OPEN;
    }
    // ---- internals ----
    transition(next) {
        if (next === this._state)
            return;
        const previous = this._state;
        this._state = next;
        this.emit("state", { state: next, previous });
    }
    emit(name, ev) {
        const set = this.events.get(name);
        if (!set)
            return;
        for (const fn of [...set])
            safeCall(fn, ev);
    }
    open() {
        this.transition("connecting");
        let ws;
        try {
            ws = this.opts.protocols ? new this.WS(this.url, this.opts.protocols) : new this.WS(this.url);
        }
        catch (e) {
            this.emit("error", new PartylineError("socket", `cannot open ${this.url}: ${e.message}`));
            this.scheduleRetry(1006, "constructor failed");
            return;
        }
        this.ws = ws;
        this.openTimer = setTimeout(() => {
            // A connect that hangs (SYN into the void) counts as a failed attempt.
            if (this.ws === ws && this._state === "connecting") {
                this.detach(ws);
                try {
                    ws.close();
                }
                catch {
                    /* ignore */
                }
                this.onSocketClose(ws, 1006, "connect timeout");
            }
        }, this.opts.connectTimeout);
        ws.onopen = () => this.onSocketOpen(ws);
        ws.onmessage = (ev) => this.onSocketMessage(ev.data);
        ws.onclose = (ev) => this.onSocketClose(ws, ev.code, ev.reason ?? "");
        ws.onerror = () => {
            /* a close event always follows */
        };
    }
    async onSocketOpen(ws) {
        if (this.ws !== ws)
            return;
        if (this.openTimer)
            clearTimeout(this.openTimer);
        this.openTimer = null;
        const reconnected = this.everOpened;
        this.everOpened = true;
        this.transition("handshaking");
        let ok = true;
        try {
            await this.handshake(reconnected);
        }
        catch (e) {
            if (this.ws !== ws)
                return; // closed meanwhile; the close path took over
            ok = false;
            const err = e instanceof PartylineError ? e : new PartylineError("handshake", String(e?.message ?? e));
            this.emit("error", err.kind === "handshake" ? err : new PartylineError("handshake", err.message, err.code, err.retry));
            if (err.retry) {
                // The server did not answer: try again on a fresh socket, keeping the queue.
                try {
                    ws.close(1000, "handshake timeout");
                }
                catch {
                    /* ignore */
                }
                return;
            }
        }
        if (this.ws !== ws || ws.readyState !== OPEN)
            return;
        this.attempt = 0;
        this.transition("open");
        const q = this.queue;
        this.queue = [];
        for (const m of q) {
            if (ok) {
                ws.send(JSON.stringify(m));
                this.written(m);
            }
            else
                this.emit("drop", { message: m, reason: "handshake_failed" });
        }
        this.emit("open", { reconnected });
    }
    onSocketMessage(data) {
        let msg;
        try {
            msg = JSON.parse(typeof data === "string" ? data : String(data));
        }
        catch {
            this.emit("error", new PartylineError("parse", "server sent a message that is not JSON"));
            return;
        }
        if (msg === null || typeof msg !== "object") {
            this.emit("error", new PartylineError("parse", "server sent a JSON value that is not an object"));
            return;
        }
        const type = typeof msg.type === "string" ? msg.type : "";
        if (this.observe(msg) === false)
            return; // a duplicate the helper has already processed
        let claimed = false; // an error that rejects an awaited request is not also an error event
        if (this.waiters.length) {
            for (const w of [...this.waiters]) {
                if (w.ok.has(type) && (!w.match || w.match(msg))) {
                    this.settle(w);
                    w.resolve(msg);
                    break;
                }
                if (w.fail.has(type)) {
                    this.settle(w);
                    claimed = true;
                    w.reject(new PartylineError("server", serverText(msg)));
                    break;
                }
            }
        }
        if (this.errorType !== null && type === this.errorType && !claimed && !this.answered(msg)) {
            this.emit("error", new PartylineError("server", serverText(msg)));
        }
        const set = this.handlers.get(type);
        if (set)
            for (const fn of [...set])
                safeCall(fn, msg);
        const all = this.handlers.get("*");
        if (all)
            for (const fn of [...all])
                safeCall(fn, msg);
    }
    /**
     * Helpers track their own state from every message before listeners run.
     * Returning false swallows the message (no waiter, no listener sees it):
     * PartyClient drops frames it has already processed.
     */
    observe(_msg) { }
    settle(w) {
        clearTimeout(w.timer);
        this.waiters = this.waiters.filter((x) => x !== w);
    }
    onSocketClose(ws, code, reason) {
        if (this.ws !== ws)
            return;
        this.detach(ws);
        this.ws = null;
        if (this.openTimer)
            clearTimeout(this.openTimer);
        this.openTimer = null;
        for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer);
            w.reject(new PartylineError("handshake", `connection closed (${code}) before the reply`, code));
        }
        if (this.userClosed)
            return;
        const text = reason ? `${code} ${reason}` : String(code);
        switch (code) {
            case 4000:
                this.emit("error", new PartylineError("replaced", `replaced by another connection (${text})`, code));
                break;
            case 4401:
                this.emit("error", new PartylineError("auth", `authentication failed (${text})`, code));
                break;
            case 4001:
                this.emit("error", new PartylineError("room_closed", `the room was closed (${text})`, code));
                break;
            case 1008:
                this.emit("error", new PartylineError("policy", `closed by server policy (${text})`, code));
                break;
            case 1009:
                this.emit("error", new PartylineError("too_big", `message too big for the server (${text})`, code));
                break;
            case 1002:
            case 1007:
                this.emit("error", new PartylineError("protocol", `protocol error (${text})`, code));
                break;
        }
        if (this.finalCloseCodes.has(code) || !this.retry.enabled) {
            this.emit("close", { code, reason, willReconnect: false });
            this.finish();
            return;
        }
        this.scheduleRetry(code, reason);
    }
    scheduleRetry(code, reason) {
        this.attempt++;
        if (this.attempt > this.retry.maxAttempts) {
            this.emit("close", { code, reason, willReconnect: false });
            this.emit("error", new PartylineError("give_up", `gave up after ${this.retry.maxAttempts} attempts`, code));
            this.finish();
            return;
        }
        const delay = backoff(this.attempt, this.retry);
        this.emit("close", { code, reason, willReconnect: true });
        this.transition("reconnecting");
        this.emit("reconnecting", { attempt: this.attempt, delay });
        this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.open();
        }, delay);
    }
    finish() {
        for (const m of this.queue.splice(0))
            this.emit("drop", { message: m, reason: "closed" });
        this.ws = null;
        this.transition("closed");
        if (this.userClosed && this.onlineHook) {
            globalThis.removeEventListener?.("online", this.onlineHook);
            this.onlineHook = null;
        }
    }
    clearRetry() {
        if (this.retryTimer)
            clearTimeout(this.retryTimer);
        this.retryTimer = null;
    }
    detach(ws) {
        ws.onopen = ws.onmessage = null;
        ws.onclose = null;
        // Keep an error handler: Node's `ws` throws an unhandled error when a
        // socket is closed while still connecting and nobody listens.
        ws.onerror = () => { };
    }
}
/** The wait before attempt n (1-based): min(maxDelay, minDelay*factor^(n-1)), minus up to `jitter` of it at random. */
export function backoff(n, o, random = Math.random) {
    const d = Math.min(o.maxDelay, o.minDelay * Math.pow(o.factor, Math.max(0, n - 1)));
    return Math.round(d * (1 - o.jitter * random()));
}
function serverText(msg) {
    for (const k of ["message", "msg", "data"])
        if (typeof msg[k] === "string")
            return msg[k];
    return JSON.stringify(msg);
}
function safeCall(fn, arg) {
    try {
        fn(arg);
    }
    catch (e) {
        // A throwing listener must not break dispatch; surface it asynchronously.
        setTimeout(() => {
            throw e;
        });
    }
}
