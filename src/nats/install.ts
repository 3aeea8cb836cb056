/** Finding nats-server (2.10 or newer): on PATH, in the project's cache, or fetched from the
 * machine's Debian mirrors into that cache (`deno task nats:install`).
 * @module */

import { removeScratch } from "./_scratch.ts";

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
 * else `$XDG_CACHE_HOME/natsgate/bin` or `~/.cache/natsgate/bin` (compiled binary); null when
 * neither `XDG_CACHE_HOME` nor `HOME` is set.
 */
export function natsServerCacheDir(): string | null {
  const here = new URL("../../.cache/bin/", import.meta.url);
  if (here.protocol === "file:" && !Deno.execPath().endsWith("/natsgate")) {
    try {
      Deno.statSync(new URL("../../deno.json", import.meta.url));
      return here.pathname;
    } catch {
      // not a source checkout
    }
  }
  const home = Deno.env.get("HOME");
  const base = Deno.env.get("XDG_CACHE_HOME") ?? (home ? `${home}/.cache` : undefined);
  // No fallback under a shared folder such as /tmp: anyone could plant a binary there.
  return base === undefined ? null : `${base}/natsgate/bin/`;
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
  const cache = natsServerCacheDir();
  for (const candidate of [await _onPath("nats-server"), cache && `${cache}nats-server`]) {
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
    if (dir === null) throw new Error("cannot choose a cache folder: set HOME or XDG_CACHE_HOME");
    await Deno.mkdir(dir, { recursive: true });
    const dest = `${dir}nats-server`;
    await Deno.copyFile(bin, dest);
    await Deno.chmod(dest, 0o755);
    const v = await _version(dest);
    if (!_newEnough(v)) throw new Error(`fetched nats-server is ${v?.join(".")}; need >= 2.10`);
    log(`installed ${dest} (${v!.join(".")})`);
    return dest;
  } finally {
    await removeScratch(tmp);
  }
}
