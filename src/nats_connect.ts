/** NATS connection options shared by `serve` and the admin commands: servers and credentials.
 * Credentials come from files or values; nothing here logs them.
 * @module */

import {
  connect,
  type ConnectionOptions,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/transport-node";

/** How to reach and authenticate to NATS. */
export interface NatsAccess {
  /** Server URLs. */
  servers: string[];
  /** A `.creds` file (JWT + nkey seed). */
  credsFile?: string;
  /** A file holding an nkey seed (`SU…`). */
  nkeySeedFile?: string;
  /** User name (with `pass`). */
  user?: string;
  /** Password. */
  pass?: string;
  /** Auth token. */
  token?: string;
  /** CA certificate file for TLS to NATS. */
  tlsCaFile?: string;
  /** Connection name shown in nats-server's connz. */
  name?: string;
  /** Reconnect forever (gateway) or fail fast (admin commands). */
  reconnectForever?: boolean;
}

/** Builds nats.js connection options; reads credential files. */
export async function natsConnectionOptions(a: NatsAccess): Promise<ConnectionOptions> {
  // No async stack traces: nats.js would build an Error per request (a fifth of a cmd's cost).
  const opts: ConnectionOptions = {
    servers: a.servers,
    name: a.name ?? "natsgate",
    noAsyncTraces: true,
  };
  if (a.credsFile) {
    opts.authenticator = credsAuthenticator(await Deno.readFile(a.credsFile));
  } else if (a.nkeySeedFile) {
    const seed = (await Deno.readTextFile(a.nkeySeedFile)).trim();
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (a.user !== undefined) {
    opts.user = a.user;
    opts.pass = a.pass ?? "";
  }
  if (a.token !== undefined) opts.token = a.token;
  if (a.tlsCaFile) opts.tls = { caFile: a.tlsCaFile };
  if (a.reconnectForever) {
    opts.maxReconnectAttempts = -1;
    opts.reconnectTimeWait = 250;
    opts.reconnectJitter = 500;
    opts.waitOnFirstConnect = false;
  }
  return opts;
}

/** Connects to NATS with {@link natsConnectionOptions}. */
export async function connectNats(a: NatsAccess): Promise<NatsConnection> {
  return await connect(await natsConnectionOptions(a));
}
