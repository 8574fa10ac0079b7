// echo dialect (seed 003): every JSON message comes back as {type:"echo",data}.
import { Connection } from "./connection.js";
export class EchoClient extends Connection {
    constructor(url, options = {}) {
        super(url, options);
        this.errorType = "error";
    }
    /** Sends data and resolves with the next echo. */
    async echo(data) {
        const reply = this.waitFor(["echo"], ["error"], this.handshakeWait);
        this.send(data);
        return (await reply).data;
    }
}
