/** A launcher for real nats-server processes (embedded mode, tests, bench).
 * Servers start on port -1 and the real ports are read from nats-server's ports file.
 * @module */

import { removeScratch } from "./_scratch.ts";
import { requireNatsServer } from "./install.ts";

/** Options of {@link NatsServer.start}. */
export interface NatsServerOptions {
  /** JetStream on (default true). */
  jetstream?: boolean;
  /** JetStream store directory (default: a temp dir removed on stop). */
  storeDir?: string;
  /** Enable the WebSocket listener (no TLS). */
  websocket?: boolean;
  /** Log file (default: in the server's temp dir). */
  logFile?: string;
  /** Verbose logging. */
  debug?: boolean;
  /** Cluster membership. */
  cluster?: { name: string; port?: number; routes: string[] };
  /** server_name (required for JetStream clusters). */
  serverName?: string;
  /** Extra configuration appended verbatim. */
  extraConfig?: string;
  /** The binary (default: {@link requireNatsServer}). */
  binary?: string;
}

interface _Ports {
  nats: string[];
  monitoring?: string[];
  websocket?: string[];
  cluster?: string[];
}

const _live = new Set<NatsServer>();
globalThis.addEventListener("unload", () => {
  for (const s of _live) s.kill();
});

function _port(url: string | undefined): number | undefined {
  return url ? Number(new URL(url).port) : undefined;
}

/** A real nats-server child process. */
export class NatsServer {
  /** Binary used. */
  readonly binary: string;
  /** Client URL. */
  url = "";
  /** Client port. */
  port = 0;
  /** Monitoring base URL. */
  monitorUrl = "";
  /** WebSocket URL, when enabled. */
  wsUrl?: string;
  /** Cluster URL, when clustered. */
  clusterUrl?: string;
  /** JetStream store directory. */
  readonly storeDir: string;
  /** Log file. */
  readonly logFile: string;
  #opts: NatsServerOptions;
  #dir: string;
  #ownsStore: boolean;
  #child?: Deno.ChildProcess;
  #fixed?: { client: number; monitor: number; ws?: number; cluster?: number };
  #stopped = false;

  private constructor(binary: string, dir: string, opts: NatsServerOptions) {
    this.binary = binary;
    this.#dir = dir;
    this.#opts = opts;
    this.#ownsStore = opts.storeDir === undefined;
    this.storeDir = opts.storeDir ?? `${dir}/js`;
    this.logFile = opts.logFile ?? `${dir}/nats-server.log`;
  }

  /** Process id of the running server. */
  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** Starts a server and waits until it is ready. */
  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const binary = opts.binary ?? await requireNatsServer();
    const dir = await Deno.makeTempDir({ prefix: "natsgate-nats-" });
    const s = new NatsServer(binary, dir, opts);
    try {
      await s.#launch();
    } catch (err) {
      await removeScratch(dir);
      throw err;
    }
    return s;
  }

  #config(): string {
    const o = this.#opts;
    const f = this.#fixed;
    const lines = [
      `listen: "127.0.0.1:${f?.client ?? -1}"`,
      `http: "127.0.0.1:${f?.monitor ?? -1}"`,
      `ports_file_dir: ${JSON.stringify(this.#dir)}`,
      `log_file: ${JSON.stringify(this.logFile)}`,
    ];
    if (o.serverName) lines.push(`server_name: ${JSON.stringify(o.serverName)}`);
    if (o.debug) lines.push("debug: true", "trace: true");
    if (o.jetstream ?? true) {
      lines.push(`jetstream { store_dir: ${JSON.stringify(this.storeDir)} }`);
    }
    if (o.websocket) lines.push(`websocket { listen: "127.0.0.1:${f?.ws ?? -1}", no_tls: true }`);
    if (o.cluster) {
      const port = f?.cluster ?? o.cluster.port ?? -1;
      lines.push(
        `cluster { name: ${JSON.stringify(o.cluster.name)}, listen: "127.0.0.1:${port}", routes: [${
          o.cluster.routes.map((r) => JSON.stringify(r)).join(", ")
        }] }`,
      );
    }
    if (o.extraConfig) lines.push(o.extraConfig);
    return lines.join("\n") + "\n";
  }

  async #launch(): Promise<void> {
    const conf = `${this.#dir}/nats-server.conf`;
    await Deno.writeTextFile(conf, this.#config());
    for await (const e of Deno.readDir(this.#dir)) {
      if (e.name.endsWith(".ports")) await Deno.remove(`${this.#dir}/${e.name}`);
    }
    const child = new Deno.Command(this.binary, {
      args: ["-c", conf],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    _live.add(this);
    let exited = false;
    child.status.then(() => exited = true);
    const portsFile = `${this.#dir}/${this.binary.split("/").pop()}_${child.pid}.ports`;
    const end = Date.now() + 10_000;
    let ports: _Ports | undefined;
    while (Date.now() < end && !exited) {
      try {
        ports = JSON.parse(await Deno.readTextFile(portsFile));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    if (ports) {
      this.url = ports.nats[0];
      this.port = _port(this.url)!;
      this.monitorUrl = ports.monitoring?.[0] ?? "";
      this.wsUrl = ports.websocket?.[0];
      this.clusterUrl = ports.cluster?.[0];
      while (Date.now() < end && !exited) {
        try {
          const r = await fetch(`${this.monitorUrl}/healthz`);
          await r.body?.cancel();
          if (r.ok) {
            this.#fixed ??= {
              client: this.port,
              monitor: _port(this.monitorUrl)!,
              ws: _port(this.wsUrl),
              cluster: _port(this.clusterUrl),
            };
            return;
          }
        } catch {
          // not yet
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    this.kill();
    const log = await Deno.readTextFile(this.logFile).catch(() => "");
    throw new Error(
      `nats-server did not become ready${exited ? " (it exited)" : ""}:\n` +
        log.trim().split("\n").slice(-10).join("\n"),
    );
  }

  /** Sends SIGKILL at once (used at process exit). */
  kill(): void {
    try {
      this.#child?.kill("SIGKILL");
    } catch {
      // already gone
    }
    _live.delete(this);
  }

  async #terminate(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    _live.delete(this);
    this.#child = undefined;
  }

  /** Stops and starts again on the same ports and store, so clients reconnect to the same URL. */
  async restart(): Promise<void> {
    await this.#terminate();
    await this.#launch();
  }

  /** Stops the server and removes what it created. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#terminate();
    if (this.#ownsStore) await removeScratch(this.#dir);
    else {
      for await (const e of Deno.readDir(this.#dir)) {
        if (`${this.#dir}/${e.name}` !== this.storeDir) {
          await removeScratch(`${this.#dir}/${e.name}`);
        }
      }
      await removeScratch(this.#dir, false);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #monitor(path: string): Promise<Record<string, unknown>> {
    const r = await fetch(`${this.monitorUrl}${path}`);
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return await r.json();
  }

  /** `/varz`. */
  varz(): Promise<Record<string, unknown>> {
    return this.#monitor("/varz");
  }

  /** `/connz`. */
  connz(): Promise<Record<string, unknown>> {
    return this.#monitor("/connz");
  }

  /** `/jsz`. */
  jsz(): Promise<Record<string, unknown>> {
    return this.#monitor("/jsz");
  }

  /** `/subsz`. */
  subsz(): Promise<Record<string, unknown>> {
    return this.#monitor("/subsz");
  }

  /**
   * Starts `n` JetStream servers routed to each other on fixed loopback cluster ports and waits
   * until their JetStream meta group has all `n` peers. Servers started together sometimes elect
   * a meta leader among fewer peers and leave the last one out for a long while (R`n` placement
   * then fails with "no suitable peers"); such a start is thrown away and retried, up to 3 times.
   */
  static async cluster(n: number, opts: NatsServerOptions = {}): Promise<NatsServer[]> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await NatsServer.#startCluster(n, opts);
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  }

  static async #startCluster(n: number, opts: NatsServerOptions): Promise<NatsServer[]> {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      ports.push((l.addr as Deno.NetAddr).port);
      l.close();
    }
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p}`);
    const servers: NatsServer[] = [];
    try {
      const started = await Promise.allSettled(ports.map((port, i) =>
        NatsServer.start({
          ...opts,
          jetstream: true,
          serverName: `n${i + 1}`,
          cluster: { name: "natsgate", port, routes: routes.filter((_, j) => j !== i) },
        })
      ));
      for (const r of started) if (r.status === "fulfilled") servers.push(r.value);
      const failed = started.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const end = Date.now() + 8_000;
      while (Date.now() < end) {
        if (await NatsServer.#metaFormed(servers)) return servers;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`JetStream meta group did not form with ${n} peers in 8 s`);
    } catch (err) {
      await Promise.all(servers.map((s) => s.stop()));
      throw err;
    }
  }

  /** Every server follows the same meta leader, which has all the others as current peers. */
  static async #metaFormed(servers: NatsServer[]): Promise<boolean> {
    type Meta = {
      leader?: string;
      cluster_size?: number;
      replicas?: Array<{ current?: boolean }>;
    };
    const metas = await Promise.all(
      servers.map((s) =>
        s.jsz().then((j) => (j as { meta_cluster?: Meta }).meta_cluster, () => undefined)
      ),
    );
    const leader = metas[0]?.leader;
    if (!leader || metas.some((m) => m?.leader !== leader)) return false;
    const n = servers.length;
    return metas.some((m) =>
      m?.cluster_size === n && m.replicas?.length === n - 1 &&
      m.replicas.every((r) => r.current === true)
    );
  }
}
