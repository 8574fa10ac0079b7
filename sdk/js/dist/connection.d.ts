/** The subset of the WHATWG WebSocket a Connection uses. */
export interface WebSocketLike {
    readonly readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    onopen: ((ev: any) => void) | null;
    onclose: ((ev: {
        code: number;
        reason: string;
        wasClean?: boolean;
    }) => void) | null;
    onmessage: ((ev: {
        data: unknown;
    }) => void) | null;
    onerror: ((ev: any) => void) | null;
}
/** A WebSocket constructor: the browser's global one, or `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
/** Reconnect policy. `maxAttempts` counts consecutive failed attempts. */
export interface ReconnectOptions {
    /** Attempts before giving up; `Infinity` (the default) retries forever. */
    maxAttempts?: number;
    /** Delay before the first retry, in ms (default 500). */
    minDelay?: number;
    /** Upper bound of the delay, in ms (default 15000). */
    maxDelay?: number;
    /** Growth per attempt (default 2). */
    factor?: number;
    /** Fraction of the delay that is random, 0..1 (default 0.5): the wait is
     *  uniform in [delay*(1-jitter), delay]. */
    jitter?: number;
}
export interface ConnectionOptions {
    /** WebSocket implementation; defaults to `globalThis.WebSocket`. */
    WebSocket?: WebSocketConstructor;
    /** `false` disables reconnecting; an object tunes it. Default: on, forever. */
    reconnect?: boolean | ReconnectOptions;
    /** Messages kept while the socket is down (default 256; 0: none). Past
     *  the cap `send` returns false and a `drop` event fires. */
    queueLimit?: number;
    /** How long a dialect helper waits for the server to confirm its
     *  re-join / re-registration / AUTH, in ms (default 10000). */
    handshakeTimeout?: number;
    /** How long a socket may take to open, in ms (default 10000). */
    connectTimeout?: number;
    /** Open the socket in the constructor (default true). */
    autoConnect?: boolean;
    /** WebSocket subprotocols. */
    protocols?: string | string[];
}
/** Where a Connection is in its life. */
export type ConnectionState = "idle" | "connecting" | "handshaking" | "open" | "reconnecting" | "closed";
/** What kind of trouble an `error` event reports. */
export type ErrorKind = "server" | "replaced" | "auth" | "room_closed" | "policy" | "too_big" | "protocol" | "handshake" | "give_up" | "queue_full" | "parse" | "socket";
export declare class PartylineError extends Error {
    readonly kind: ErrorKind;
    readonly code?: number;
    /** True when retrying on a new socket may help (a reply that timed out). */
    readonly retry: boolean;
    constructor(kind: ErrorKind, message: string, code?: number, retry?: boolean);
}
/** Lifecycle events (separate from the server's messages). */
export interface ConnectionEvents<Out> {
    /** Every state change. */
    state: {
        state: ConnectionState;
        previous: ConnectionState;
    };
    /** The connection is ready (after the helper's handshake). */
    open: {
        reconnected: boolean;
    };
    /** The socket closed. */
    close: {
        code: number;
        reason: string;
        willReconnect: boolean;
    };
    /** A retry is scheduled. */
    reconnecting: {
        attempt: number;
        delay: number;
    };
    error: PartylineError;
    /** A message that was not and will not be sent. */
    drop: {
        message: Out;
        reason: "queue_full" | "closed" | "handshake_failed";
    };
}
/**
 * Close codes after which a Connection never reconnects. Every other code
 * reconnects (and a helper re-registers): notably 1001 (going away: a
 * graceful shutdown or deploy), 1006 (abnormal: the connection died) and
 * 1012 (service restart).
 */
export declare const FINAL_CLOSE_CODES: ReadonlySet<number>;
/** Narrows a message union to the member whose `type` is T. */
export type MessageOf<In extends {
    type: string;
}, T extends string> = T extends "*" ? In : Extract<In, {
    type: T;
}>;
/**
 * A reconnecting, queueing JSON connection. `In` is the union of the
 * messages the server sends (each with a string `type`), `Out` what the
 * client sends, `Ev` the lifecycle events (a helper may add its own, e.g.
 * PartyClient's `rejoined`). Methods are safe to call in any state.
 */
export declare class Connection<In extends {
    type: string;
} = {
    type: string;
    [k: string]: unknown;
}, Out = unknown, Ev extends ConnectionEvents<Out> = ConnectionEvents<Out>> {
    readonly url: string;
    private readonly WS;
    private readonly opts;
    private readonly retry;
    private ws;
    private _state;
    private attempt;
    private everOpened;
    private userClosed;
    private retryTimer;
    private openTimer;
    private queue;
    private readonly handlers;
    private readonly events;
    private waiters;
    private onlineHook;
    /** The `type` of the dialect's error reply, surfaced as an `error` event. */
    protected errorType: string | null;
    /** Close codes after which this connection never reconnects (a helper may add its dialect's own). */
    protected finalCloseCodes: ReadonlySet<number>;
    constructor(url: string, options?: ConnectionOptions);
    /** The current state. */
    get state(): ConnectionState;
    /** Consecutive failed attempts so far (0 while connected). */
    get attempts(): number;
    /** Messages waiting for the socket. */
    get queued(): number;
    /** Opens the socket if it is not open or opening. Idempotent. */
    connect(): void;
    /** Skips the backoff wait and retries now; also revives a connection that gave up. */
    reconnectNow(): void;
    /** Closes for good: no reconnect; queued messages are dropped. */
    close(code?: number, reason?: string): void;
    /**
     * Sends msg as JSON. Returns true when it went out or was queued, false
     * when it was dropped (queue full, or the connection is closed for good).
     */
    send(msg: Out): boolean;
    /** Listens for server messages of one `type` ("*": every message). Returns an unsubscribe function. */
    on<T extends In["type"] | "*">(type: T, fn: (msg: MessageOf<In, T>) => void): () => void;
    /** Removes a listener added with `on`. */
    off<T extends In["type"] | "*">(type: T, fn: (msg: MessageOf<In, T>) => void): void;
    /** Listens for lifecycle events. Returns an unsubscribe function. */
    onEvent<K extends keyof Ev & string>(name: K, fn: (ev: Ev[K]) => void): () => void;
    /** Removes a listener added with `onEvent`. */
    offEvent<K extends keyof Ev & string>(name: K, fn: (ev: Ev[K]) => void): void;
    /** Resolves with the next message of one of `types` (e.g. for request/reply). */
    next<T extends In["type"]>(types: T | T[], timeout?: number): Promise<MessageOf<In, T>>;
    /**
     * Runs after every socket open, before queued messages are flushed.
     * Helpers override it to re-register (send with sendNow, wait with
     * waitFor). A rejection is reported as a `handshake` error and drops the
     * queue; the socket stays open.
     */
    protected handshake(_reconnected: boolean): Promise<void> | void;
    /** Runs when `send` has written msg to the socket (at once, or from the offline queue). */
    protected written(_msg: Out): void;
    /**
     * True when an error message (errorType) answers a request whose caller
     * awaits the reply: that promise is rejected, so no `error` event repeats it.
     */
    protected answered(_msg: any): boolean;
    /** Emits a helper's own lifecycle event (one of `Ev`'s). */
    protected emitEvent<K extends keyof Ev & string>(name: K, ev: Ev[K]): void;
    /** Sends now, bypassing the queue (false if the socket is not open). */
    protected sendNow(msg: unknown): boolean;
    /**
     * Resolves with the next message whose type is in ok (and that `match`
     * accepts), rejects on the next one whose type is in fail, on timeout, or
     * when the socket closes first.
     */
    protected waitFor(ok: string[], fail: string[], timeout: number, match?: (msg: any) => boolean): Promise<any>;
    /** The handshakeTimeout option, in ms. */
    protected get handshakeWait(): number;
    /** True while the socket is open (handshake included). */
    protected get socketOpen(): boolean;
    private transition;
    private emit;
    private open;
    private onSocketOpen;
    private onSocketMessage;
    /**
     * Helpers track their own state from every message before listeners run.
     * Returning false swallows the message (no waiter, no listener sees it):
     * PartyClient drops frames it has already processed.
     */
    protected observe(_msg: any): boolean | void;
    private settle;
    private onSocketClose;
    private scheduleRetry;
    private finish;
    private clearRetry;
    private detach;
}
/** The wait before attempt n (1-based): min(maxDelay, minDelay*factor^(n-1)), minus up to `jitter` of it at random. */
export declare function backoff(n: number, o: Required<ReconnectOptions>, random?: () => number): number;
