import { Connection, ConnectionOptions } from "./connection.js";
export type TeamsServerMessage = {
    type: "status";
    data: string;
} | {
    type: "message";
    from: number;
    to: number;
    message: string;
} | {
    type: "error";
    data: string;
};
export type TeamsClientMessage = {
    team: number;
} | {
    from: number;
    to: number;
    message: string;
};
export interface TeamsOptions extends ConnectionOptions {
    /** Register as this team on every (re)connect. */
    team?: number;
}
export declare class TeamsClient extends Connection<TeamsServerMessage, TeamsClientMessage> {
    /** The team this client registers as, or null. */
    team: number | null;
    /** True once the server confirmed the registration on the current socket. */
    registered: boolean;
    constructor(url: string, options?: TeamsOptions);
    /** Registers as `team` now (if connected) and on every reconnect. Resolves with the server's status text. */
    register(team: number): Promise<string>;
    /** Sends a message from this client's team to team `to`. */
    sendTo(to: number, message: string): boolean;
    protected handshake(): Promise<void>;
    private sendRegistration;
}
