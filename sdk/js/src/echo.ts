// echo dialect (seed 003): every JSON message comes back as {type:"echo",data}.
import { Connection, ConnectionOptions } from "./connection.js";

export type EchoServerMessage =
  | { type: "welcome"; message: string }
  | { type: "echo"; data: unknown }
  | { type: "error"; message: string };

export class EchoClient extends Connection<EchoServerMessage, unknown> {
  constructor(url: string, options: ConnectionOptions = {}) {
    super(url, options);
    this.errorType = "error";
  }

  /** Sends data and resolves with the next echo. */
  async echo(data: unknown): Promise<unknown> {
    const reply = this.waitFor(["echo"], ["error"], this.handshakeWait);
    this.send(data);
    return (await reply).data;
  }
}
