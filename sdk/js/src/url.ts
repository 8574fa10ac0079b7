// Finding the WebSocket server from a page served by partyline's HTTP
// listener: the WebSocket listeners have their own ports, which the Go side
// publishes at /config.json.

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
export function dialectURL(base: string, dialect: string, param?: string): string {
  const b = base.replace(/\/+$/, "");
  const p = param === undefined ? "" : "/" + encodeURIComponent(param);
  return `${b}/${dialect}${p}`;
}

/** Picks the URL for `dialect` out of a server config, for a page at `loc`. */
export function urlFromConfig(
  cfg: ServerConfig,
  dialect: string,
  loc: { protocol: string; hostname: string },
  param?: string,
): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const host = loc.hostname.includes(":") ? `[${loc.hostname}]` : loc.hostname;
  const routed = cfg.listeners.find((l) => l.dialect === "");
  if (routed) return dialectURL(`${scheme}//${host}:${routed.port}`, dialect, param);
  const bound = cfg.listeners.find((l) => l.dialect === dialect);
  if (bound) {
    const p = param === undefined ? "" : encodeURIComponent(param);
    return `${scheme}//${host}:${bound.port}/${p}`;
  }
  throw new Error(`partyline: this server has no listener for the ${dialect} dialect`);
}

/**
 * The WebSocket URL for `dialect`, for a page in a browser: the `ws` query
 * parameter of the page (a base URL such as `ws://host:8080`) wins;
 * otherwise /config.json of the page's own origin says where the
 * listeners are.
 */
export async function discoverURL(dialect: string, param?: string): Promise<string> {
  const loc = (globalThis as any).location as Location | undefined;
  if (!loc) throw new Error("partyline: discoverURL needs a page (use dialectURL in Node)");
  const q = new URLSearchParams(loc.search).get("ws");
  if (q) return dialectURL(q, dialect, param);
  const res = await fetch(new URL("/config.json", loc.href).href, { cache: "no-store" });
  if (!res.ok) throw new Error(`partyline: /config.json answered ${res.status}`);
  return urlFromConfig((await res.json()) as ServerConfig, dialect, loc, param);
}
