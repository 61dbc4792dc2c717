/** Starts the real `terse` binary on 127.0.0.1 (ephemeral port) for the SDK tests. */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

/** The repository root (tests run from dist/test). */
export const ROOT = resolve(__dirname, "../../../..");
export const FIXTURES = join(ROOT, "tests", "fixtures");

/** A running server; `address` is `127.0.0.1:PORT`. */
export class Server {
  private constructor(
    private readonly child: ChildProcess,
    readonly address: string,
  ) {}

  static async start(listen = "127.0.0.1:0", services?: string, extra: string[] = []): Promise<Server> {
    const binary = join(process.env.TERSE_BIN_DIR ?? join(ROOT, "target", "debug"), "terse");
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run cargo build --workspace first`);
    const args = ["--listen", listen, "--metrics-listen", ""];
    if (services) args.push("--services", services);
    args.push(...extra);
    const child = spawn(binary, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    const line = await new Promise<string>((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`terse did not start in 60 s:\n${stderr}`)), 60_000);
      createInterface({ input: child.stdout! }).once("line", (first) => {
        clearTimeout(timer);
        resolveLine(first);
      });
      child.once("exit", (code) => reject(new Error(`terse exited with ${code}:\n${stderr}`)));
    });
    if (!line.startsWith("terse ready ")) throw new Error(`unexpected ready line ${line}`);
    const grpc = line.split(" ").find((part) => part.startsWith("grpc="))!;
    return new Server(child, grpc.slice("grpc=".length));
  }

  async stop(): Promise<void> {
    const exited = new Promise((done) => this.child.once("exit", done));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}
