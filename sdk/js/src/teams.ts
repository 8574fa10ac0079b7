// teams dialect (seed 000): a connection registers as team N with
// {"team":N}, then sends {"from":N,"to":M,"message":"..."}. After a
// reconnect the client re-sends its registration by itself.
import { Connection, ConnectionOptions } from "./connection.js";

export type TeamsServerMessage =
  | { type: "status"; data: string }
  | { type: "message"; from: number; to: number; message: string }
  | { type: "error"; data: string };

export type TeamsClientMessage = { team: number } | { from: number; to: number; message: string };

export interface TeamsOptions extends ConnectionOptions {
  /** Register as this team on every (re)connect. */
  team?: number;
}

export class TeamsClient extends Connection<TeamsServerMessage, TeamsClientMessage> {
  /** The team this client registers as, or null. */
  team: number | null;
  /** True once the server confirmed the registration on the current socket. */
  registered = false;

  constructor(url: string, options: TeamsOptions = {}) {
    super(url, options);
    this.team = options.team ?? null;
    this.errorType = "error";
    this.onEvent("close", () => {
      this.registered = false;
    });
  }

  /** Registers as `team` now (if connected) and on every reconnect. Resolves with the server's status text. */
  async register(team: number): Promise<string> {
    if (this.registered && this.team === team) return `Team ${team} registered successfully`;
    this.team = team;
    if (this.state === "open") return this.sendRegistration(team);
    const done = new Promise<string>((resolve, reject) => {
      const offOpen = this.onEvent("open", () => {
        offOpen();
        offErr();
        resolve(`Team ${team} registered successfully`);
      });
      const offErr = this.onEvent("error", (e) => {
        if (e.kind !== "handshake") return;
        offOpen();
        offErr();
        reject(e);
      });
    });
    this.connect();
    return done;
  }

  /** Sends a message from this client's team to team `to`. */
  sendTo(to: number, message: string): boolean {
    if (this.team === null) throw new Error("partyline teams: register() before sending");
    return this.send({ from: this.team, to, message });
  }

  protected override async handshake(): Promise<void> {
    if (this.team !== null) await this.sendRegistration(this.team);
  }

  private async sendRegistration(team: number): Promise<string> {
    const ok = `Team ${team} registered successfully`;
    const reply = this.waitFor(["status"], ["error"], this.handshakeWait, (m) => m.data === ok);
    this.sendNow({ team });
    await reply;
    this.registered = true;
    return ok;
  }
}
