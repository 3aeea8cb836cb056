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
import { Socket } from "node:net";
import { INBOX_PREFIX } from "./control.ts";

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

let _guarded = false;

/**
 * nats.js drops a socket by removing all its listeners and then destroying it, but a read error
 * (ECONNRESET: nats-server resets the connection after rejecting credentials) can still be
 * emitted afterwards and, with no listener left, would crash the process. A socket destroyed
 * without an error gets a no-op error listener: nothing is interested in it any more.
 */
function _guardDroppedSockets(): void {
  if (_guarded) return;
  _guarded = true;
  const destroy = Socket.prototype.destroy;
  Socket.prototype.destroy = function (this: Socket, err?: Error) {
    if (err === undefined) this.on("error", () => {});
    return destroy.call(this, err);
  };
}

/** Builds nats.js connection options; reads credential files. */
export async function natsConnectionOptions(a: NatsAccess): Promise<ConnectionOptions> {
  _guardDroppedSockets();
  // No async stack traces: nats.js would build an Error per request (a fifth of a cmd's cost).
  const opts: ConnectionOptions = {
    servers: a.servers,
    name: a.name ?? "natsgate",
    noAsyncTraces: true,
    // Replies on `$…` inboxes: out of reach of leading-wildcard capabilities (the `$` rule).
    inboxPrefix: INBOX_PREFIX,
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
    // nats.js otherwise gives up for good after two auth errors in a row (credentials rotated on
    // the server before the gateway): keep retrying, so valid credentials bring it back.
    opts.ignoreAuthErrorAbort = true;
  }
  return opts;
}

/** Connects to NATS with {@link natsConnectionOptions}. */
export async function connectNats(a: NatsAccess): Promise<NatsConnection> {
  return await connect(await natsConnectionOptions(a));
}
