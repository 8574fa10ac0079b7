// Test helpers: build the real partyline binary once, start it on loopback
// ports, restart it on the same ports, and a TCP proxy whose client side
// can be cut to simulate a network drop.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "../../..");

let built = null;

/** Builds the binary (once per process) unless PARTYLINE_BIN points at one. */
export function binary() {
  if (process.env.PARTYLINE_BIN) return process.env.PARTYLINE_BIN;
  if (built) return built;
  const dir = mkdtempSync(path.join(tmpdir(), "partyline-sdk-"));
  const out = path.join(dir, "partyline");
  execFileSync("go", ["build", "-o", out, "."], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  built = out;
  return out;
}

let flagSet = null;

/** The flags this build of the binary accepts (other engineers add them as they go). */
export function flags() {
  if (flagSet) return flagSet;
  const r = spawnSync(binary(), ["--help"], { encoding: "utf8" });
  const out = r.stdout + r.stderr;
  flagSet = new Set([...out.matchAll(/^\s+-([a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
  return flagSet;
}

/**
 * Starts partyline on 127.0.0.1 (port 0 unless given) and resolves once it
 * logs "partyline ready". The returned handle can stop, kill and restart
 * it; a restart reuses the ports.
 */
export async function startServer(extraArgs = [], { wsPort = 0, httpPort = 0 } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "partyline-data-"));
  const h = { wsPort, httpPort, proc: null, log: "", extraArgs, dataDir };
  await launch(h);
  h.wsBase = `ws://127.0.0.1:${h.wsPort}`;
  h.httpBase = `http://127.0.0.1:${h.httpPort}`;
  h.kill = (sig = "SIGKILL") => stop(h, sig);
  h.stop = async () => {
    await stop(h, "SIGTERM");
    rmSync(h.dataDir, { recursive: true, force: true });
  };
  /** Stops it (SIGKILL: a crash; SIGTERM: a graceful shutdown, as in a deploy) and starts it again on the same ports and data dir. */
  h.restart = async (sig = "SIGKILL") => {
    if (h.proc) await stop(h, sig);
    await launch(h);
  };
  return h;
}

async function launch(h) {
  const args = [
    "--listen", `127.0.0.1:${h.wsPort}`,
    "--http", `127.0.0.1:${h.httpPort}`,
    "--drain", "200ms",
    ...h.extraArgs,
  ];
  if (flags().has("data-dir")) args.push("--data-dir", h.dataDir);
  for (let tries = 0; ; tries++) {
    try {
      await spawnReady(h, args);
      return;
    } catch (e) {
      // A restart right after a kill can find the port still held for a moment.
      if (tries >= 20 || !/in use|address already/i.test(String(e.message))) throw e;
      await sleep(100);
    }
  }
}

function spawnReady(h, args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary(), args, { stdio: ["ignore", "ignore", "pipe"] });
    let buf = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error("partyline did not log ready within 15s:\n" + buf));
    }, 15_000);
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (d) => {
      buf += d;
      h.log += d;
      const line = buf.split("\n").find((l) => l.includes("partyline ready"));
      if (line && !h.proc) {
        const ws = /listen="?@?[^ ]*?:(\d+)/.exec(line);
        const http = /http=[^ ]*?:(\d+)/.exec(line);
        if (!ws || !http) return reject(new Error("cannot parse ready line: " + line));
        h.wsPort = Number(ws[1]);
        h.httpPort = Number(http[1]);
        h.proc = proc;
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on("exit", (code, sig) => {
      if (h.proc === proc) h.proc = null;
      if (!h.proc && !buf.includes("partyline ready")) {
        clearTimeout(timer);
        reject(new Error(`partyline exited (${code ?? sig}):\n${buf}`));
      }
    });
  });
}

function stop(h, sig) {
  const p = h.proc;
  if (!p) return Promise.resolve();
  return new Promise((resolve) => {
    p.once("exit", () => resolve());
    p.kill(sig);
  }).then(() => {
    h.proc = null;
  });
}

/** True if the server speaks `dialect` (its handshake is not a 404). */
export async function speaks(srv, dialect, WebSocket) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${srv.wsBase}/${dialect}`);
    ws.on("open", () => {
      ws.terminate();
      resolve(true);
    });
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode !== 404);
      ws.terminate();
    });
    ws.on("error", () => resolve(false));
  });
}

/**
 * A TCP proxy in front of `port`. cutClients() destroys the client-facing
 * sockets only: the server keeps its side open, as after a network drop it
 * has not noticed yet.
 */
export async function startProxy(port) {
  const pairs = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => pairs.delete(pair);
    client.on("error", drop);
    upstream.on("error", () => client.destroy());
    client.on("close", drop);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const proxyPort = server.address().port;
  return {
    port: proxyPort,
    base: `ws://127.0.0.1:${proxyPort}`,
    cutClients() {
      for (const p of pairs) {
        p.client.unpipe(p.upstream);
        p.upstream.unpipe(p.client);
        p.client.destroy();
      }
      pairs.clear();
    },
    close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      server.close();
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when cond() is true; rejects after `ms`. */
export async function until(cond, ms = 5000, what = "condition") {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves with the next lifecycle event `name` of conn. */
export function nextEvent(conn, name, ms = 5000, pred = () => true) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no ${name} event within ${ms} ms`));
    }, ms);
    const off = conn.onEvent(name, (ev) => {
      if (!pred(ev)) return;
      clearTimeout(t);
      off();
      resolve(ev);
    });
  });
}

/** Resolves with the next server message of `type`. */
export function nextMessage(conn, type, ms = 5000, pred = () => true) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no ${type} message within ${ms} ms`));
    }, ms);
    const off = conn.on(type, (m) => {
      if (!pred(m)) return;
      clearTimeout(t);
      off();
      resolve(m);
    });
  });
}

export { existsSync };
