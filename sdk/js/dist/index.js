// partyline-client: a dependency-free client for the partyline WebSocket
// server. See docs/web.md in the partyline repository.
export * from "./connection.js";
export * from "./url.js";
export * from "./auth.js";
export * from "./party.js";
export * from "./party-v2.js";
export * from "./teams.js";
export * from "./channels.js";
export * from "./echo.js";
export * from "./rooms.js";
export * from "./notify.js";
export * from "./chat.js";
export * from "./presence.js";
