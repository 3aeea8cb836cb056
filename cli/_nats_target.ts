/** Which NATS an admin command talks to, and where that came from. `serve --dev` records its NATS
 * in `<data dir>/nats.json`; admin commands read it when nothing more explicit is given.
 * @module */

import { CliError } from "./_common.ts";

/** Default NATS URL of the admin commands. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** The dev gateway's record file, inside its data dir. */
export const DEV_RECORD_FILE = "nats.json";

/** What `serve --dev` writes to `<data dir>/nats.json`. */
export interface DevNatsRecord {
  /** NATS URLs the dev gateway uses. */
  servers: string[];
  /** Absolute path of the `.creds` file it uses, if any. */
  creds?: string;
  /** Process id of the gateway. */
  pid: number;
  /** When it started (RFC 3339). */
  started: string;
}

/** The resolved NATS of a command. */
export interface NatsTarget {
  /** URLs to connect to. */
  servers: string[];
  /** Where they came from: `--nats`, `NATSGATE_NATS`, `NATS_URL`, `dev gateway (<file>)`, `default`. */
  source: string;
  /** `.creds` file named by the dev record. */
  credsFile?: string;
  /** A hint added to connection errors. */
  hint?: string;
  /** Implicit source (NATS_URL, dev record, default): commands say on stderr which they used. */
  announce: boolean;
}

/** Inputs of {@link resolveNatsTarget}. */
export interface NatsTargetInput {
  /** URLs given with `--nats` on the command line. */
  flag?: readonly string[];
  /** `--dev` was given: only the dev record counts. */
  dev: boolean;
  /** Environment lookup. */
  env: (name: string) => string | undefined;
  /** Directory a relative data dir resolves against. */
  cwd: string;
}

/** `<cwd>/<NATSGATE_DATA_DIR or .natsgate>`. */
export function devDataDir(env: (name: string) => string | undefined, cwd: string): string {
  const dir = env("NATSGATE_DATA_DIR") || ".natsgate";
  return dir.startsWith("/") ? dir : `${cwd.replace(/\/$/, "")}/${dir}`;
}

function _urls(value: string | undefined): string[] {
  return (value ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Picks the NATS to use: `--nats` > `NATSGATE_NATS` > `NATS_URL` > the dev gateway's record >
 * {@link DEFAULT_NATS_URL}. With `dev`, only the record counts (missing: an error).
 *
 * @example
 * ```ts ignore
 * const t = await resolveNatsTarget({ dev: false, env: Deno.env.get, cwd: Deno.cwd() });
 * console.log(t.servers, t.source);
 * ```
 */
export async function resolveNatsTarget(input: NatsTargetInput): Promise<NatsTarget> {
  if (!input.dev) {
    if (input.flag && input.flag.length > 0) {
      return { servers: [...input.flag], source: "--nats", announce: false };
    }
    for (const name of ["NATSGATE_NATS", "NATS_URL"]) {
      const urls = _urls(input.env(name));
      if (urls.length > 0) {
        return { servers: urls, source: `from ${name}`, announce: name === "NATS_URL" };
      }
    }
  }
  const path = `${devDataDir(input.env, input.cwd)}/${DEV_RECORD_FILE}`;
  const record = await readDevRecord(path);
  if (record) {
    return {
      servers: record.servers,
      source: `from the dev gateway's ${path}`,
      credsFile: record.creds,
      hint: `is natsgate serve --dev (pid ${record.pid}) still running?`,
      announce: true,
    };
  }
  if (input.dev) {
    throw new DevRecordMissingError(path);
  }
  return {
    servers: [DEFAULT_NATS_URL],
    source: "default; set --nats, NATSGATE_NATS or NATS_URL, or run natsgate serve --dev here",
    announce: true,
  };
}

/** `--dev` was given but no dev gateway recorded its NATS. */
export class DevRecordMissingError extends CliError {
  /** The record file looked for. */
  readonly path: string;
  /** Creates the error. */
  constructor(path: string, options?: { cause?: unknown }) {
    super(
      `--dev: no dev gateway recorded its NATS in ${path}; start natsgate serve --dev here`,
      1,
      options,
    );
    this.name = "DevRecordMissingError";
    this.path = path;
  }
}

/** Reads a dev record; `null` when there is none or it is unreadable. */
export async function readDevRecord(path: string): Promise<DevNatsRecord | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return null;
  }
  try {
    const r = JSON.parse(text) as DevNatsRecord;
    if (!Array.isArray(r.servers) || r.servers.some((s) => typeof s !== "string")) return null;
    if (r.servers.length === 0) return null;
    return r;
  } catch {
    return null;
  }
}

/** Writes the dev record (private file); returns a remover for shutdown. */
export async function writeDevRecord(
  dataDir: string,
  record: DevNatsRecord,
): Promise<() => Promise<void>> {
  const path = `${dataDir}/${DEV_RECORD_FILE}`;
  await Deno.writeTextFile(path, JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
  return async () => {
    // Only our own record: a newer dev gateway may have replaced it.
    const now = await readDevRecord(path);
    if (now?.pid === record.pid) await Deno.remove(path).catch(() => {});
  };
}
