// AUTH as the chat and presence dialects (seed 004) expect it: the first
// message after every open is {"type":"AUTH","token":JWT}.

/** A token, or a function that returns a fresh one before each (re)connect. */
export type TokenSource = string | (() => string | Promise<string>);

export async function resolveToken(t: TokenSource): Promise<string> {
  return typeof t === "function" ? await t() : t;
}

/** The username a token claims (`username`, else `sub`), read without verifying it; null if unreadable. */
export function tokenUsername(token: string): string | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeBase64(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const claims = JSON.parse(json);
    if (typeof claims.username === "string") return claims.username;
    if (typeof claims.sub === "string") return claims.sub;
  } catch {
    /* not a JWT */
  }
  return null;
}

function decodeBase64(s: string): string {
  const bin = (globalThis as any).atob(s) as string;
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The username in a SUCCESS "Authenticated as alice" reply. */
export function authenticatedAs(msg: string): string | null {
  const m = /^Authenticated as (.+)$/.exec(msg);
  return m ? m[1] : null;
}
