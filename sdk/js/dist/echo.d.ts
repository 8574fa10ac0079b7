import { Connection, ConnectionOptions } from "./connection.js";
export type EchoServerMessage = {
    type: "welcome";
    message: string;
} | {
    type: "echo";
    data: unknown;
} | {
    type: "error";
    message: string;
};
export declare class EchoClient extends Connection<EchoServerMessage, unknown> {
    constructor(url: string, options?: ConnectionOptions);
    /** Sends data and resolves with the next echo. */
    echo(data: unknown): Promise<unknown>;
}
