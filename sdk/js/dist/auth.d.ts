/** A token, or a function that returns a fresh one before each (re)connect. */
export type TokenSource = string | (() => string | Promise<string>);
export declare function resolveToken(t: TokenSource): Promise<string>;
/** The username a token claims (`username`, else `sub`), read without verifying it; null if unreadable. */
export declare function tokenUsername(token: string): string | null;
/** The username in a SUCCESS "Authenticated as alice" reply. */
export declare function authenticatedAs(msg: string): string | null;
