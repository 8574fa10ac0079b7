/** One WebSocket listener as /config.json describes it. */
export interface ListenerInfo {
    /** Bound port. */
    port: number;
    /** Bound host ("" or "::"/"0.0.0.0" for every interface). */
    host: string;
    /** The dialect the listener is bound to, or "" for path routing. */
    dialect: string;
}
/** The document served at /config.json. */
export interface ServerConfig {
    listeners: ListenerInfo[];
    /** Names of the dialects this server speaks. */
    dialects: string[];
    /** The number of teams of the teams dialect (ids 1..teams). */
    teams?: number;
}
/**
 * The URL of `dialect` on a path-routing listener whose base URL is `base`
 * ("ws://host:8080"): `ws://host:8080/party`, `ws://host:8080/channels/NAME`.
 */
export declare function dialectURL(base: string, dialect: string, param?: string): string;
/** Picks the URL for `dialect` out of a server config, for a page at `loc`. */
export declare function urlFromConfig(cfg: ServerConfig, dialect: string, loc: {
    protocol: string;
    hostname: string;
}, param?: string): string;
/**
 * The WebSocket URL for `dialect`, for a page in a browser: the `ws` query
 * parameter of the page (a base URL such as `ws://host:8080`) wins;
 * otherwise /config.json of the page's own origin says where the
 * listeners are.
 */
export declare function discoverURL(dialect: string, param?: string): Promise<string>;
