/** The gateways' control plane on NATS: session lifecycle events and admin requests.
 * All subjects live under `$NATSGATE`, which no leading-wildcard capability can reach.
 * @module */

/** Root of every control subject. */
export const CONTROL_PREFIX = "$NATSGATE";

/**
 * Inbox prefix of the gateway's (and the admin commands') NATS connections. Replies to `cmd`s,
 * JetStream API answers and KV reads (capability documents among them) travel on inboxes; under
 * nats.js's default `_INBOX` a leading-wildcard capability such as `>` would receive them all.
 * A `$` first token puts them under the `$` rule.
 */
export const INBOX_PREFIX = "$NATSGATE_INBOX";

/** Subject of a session event: `$NATSGATE.events.<gateway>.<event>`. */
export function eventSubject(gateway: string, event: string): string {
  return `${CONTROL_PREFIX}.events.${gateway}.${event}`;
}

/** Wildcard over every gateway's events, optionally one event kind. */
export function eventsFilter(event?: string): string {
  return `${CONTROL_PREFIX}.events.*.${event ?? "*"}`;
}

/** Scatter-gather subject: every gateway answers with its sessions. */
export const SESSIONS_LIST_SUBJECT = `${CONTROL_PREFIX}.sessions.list`;
/** Every gateway hears kicks; the owner of the session closes it and answers. */
export const SESSIONS_KICK_SUBJECT = `${CONTROL_PREFIX}.sessions.kick`;

/** One session as listed by `sessions list`. */
export interface SessionInfo {
  /** Session id. */
  id: string;
  /** Gateway id. */
  gateway: string;
  /** User id (absent before authentication). */
  user?: string;
  /** Remote address. */
  remote: string;
  /** User-Agent header. */
  user_agent?: string;
  /** Connected since (RFC 3339). */
  since: string;
  /** Live subscriptions. */
  subscriptions: Array<{ sid: string; kind: string; target: string }>;
  /** Envelopes received. */
  msgs_in: number;
  /** Bytes received. */
  bytes_in: number;
  /** Envelopes sent. */
  msgs_out: number;
  /** Bytes sent. */
  bytes_out: number;
}

/** A gateway's answer to a list request. */
export interface SessionsListReply {
  /** Gateway id. */
  gateway: string;
  /** Its sessions (filtered by the request). */
  sessions: SessionInfo[];
}

/** The list request (both fields optional filters). */
export interface SessionsListRequest {
  /** Only this user's sessions. */
  user?: string;
  /** Only this gateway. */
  gateway?: string;
}

/** A kick request. */
export interface KickRequest {
  /** Session to close. */
  session: string;
  /** Reason sent as the close reason. */
  reason?: string;
}

/** An event as published on an event subject. */
export interface SessionEventRecord {
  /** Event kind. */
  event: string;
  /** RFC 3339 time. */
  time: string;
  /** Gateway id. */
  gateway: string;
  /** Session id. */
  session: string;
  /** User id, when known. */
  user?: string;
  /** Remote address. */
  remote?: string;
  /** Event-specific fields. */
  [field: string]: unknown;
}
