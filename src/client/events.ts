/** The events a client dispatches (`state`, `capabilities`, `revoked`, `error`) and their details.
 * @module */

import type { Capabilities } from "../protocol/types.ts";
import type { NatsgateError } from "./errors.ts";
import type { Subscription } from "./subscription.ts";

/** Connection states. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Detail of the `state` event. */
export interface StateEventDetail {
  /** The new state. */
  state: ConnectionState;
  /** The state before. */
  previous: ConnectionState;
  /** Reconnection attempt number (connecting / reconnecting). */
  attempt?: number;
  /** Delay before that attempt. */
  delayMs?: number;
  /** Close code of the connection that ended. */
  code?: number;
  /** Close reason of the connection that ended. */
  reason?: string;
  /** Why the connection ended (reconnecting) or the client closed (closed). */
  error?: NatsgateError;
}

/** Detail of the `capabilities` event (each `cap_update`). */
export interface CapabilitiesEventDetail {
  /** The user's effective capabilities. */
  capabilities: Capabilities;
  /** The user id. */
  user?: string;
  /** The gateway session id. */
  session?: string;
  /** Subscriptions this update revoked. */
  revoked: Subscription<unknown>[];
}

/** Detail of the `revoked` event. */
export interface RevokedEventDetail {
  /** The subscriptions the gateway closed because capabilities shrank. */
  subscriptions: Subscription<unknown>[];
  /** The capabilities now in force. */
  capabilities: Capabilities;
}

/** Detail of the `error` event. */
export interface ErrorEventDetail {
  /** What went wrong. */
  error: NatsgateError;
  /** The subscription concerned, if any. */
  subscription?: Subscription<unknown>;
}

/** Events of a client, by name. */
export interface NatsgateClientEventMap {
  /** Connection state changed (also each reconnection attempt). */
  state: CustomEvent<StateEventDetail>;
  /** A `cap_update` arrived. */
  capabilities: CustomEvent<CapabilitiesEventDetail>;
  /** Subscriptions were revoked. */
  revoked: CustomEvent<RevokedEventDetail>;
  /** Something failed that no promise reports (server errors, subscription failures, handler exceptions). */
  error: CustomEvent<ErrorEventDetail>;
}
