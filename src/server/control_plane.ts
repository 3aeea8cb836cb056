/** The gateway's control plane on NATS: session lifecycle events (log, metrics and
 * `$NATSGATE.events.…`), the scatter-gather session listing and admin kicks.
 * @module */

import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../log/log.ts";
import { CloseCode } from "../protocol/errors.ts";
import {
  eventSubject,
  type KickRequest,
  type SessionInfo,
  SESSIONS_KICK_SUBJECT,
  SESSIONS_LIST_SUBJECT,
  type SessionsListRequest,
} from "../nats/control.ts";
import type { Session } from "../session/session.ts";
import type { SessionEvent } from "../session/types.ts";
import type { GatewayMetrics } from "./metrics.ts";

/** What the control plane needs of its gateway. */
export interface ControlPlaneOptions {
  /** Gateway id (events, listings, kicks). */
  id: string;
  /** The NATS connection. */
  nc: NatsConnection;
  /** Logger. */
  log: Logger;
  /** Metrics counted from events. */
  metrics: GatewayMetrics;
  /** The gateway's sessions. */
  sessions: () => Iterable<Session>;
  /** True once the gateway is closed: events are no longer published. */
  stopped: () => boolean;
}

/**
 * Publishes session events and answers `sessions list` and `sessions kick` for one gateway.
 *
 * @example
 * ```ts
 * const control = new ControlPlane({ id, nc, log, metrics, sessions: () => set, stopped });
 * control.start();
 * control.emit(session, "connect");
 * control.close();
 * ```
 */
export class ControlPlane {
  #o: ControlPlaneOptions;
  #subs: Subscription[] = [];

  /** Creates the control plane; {@link ControlPlane.start} subscribes. */
  constructor(opts: ControlPlaneOptions) {
    this.#o = opts;
  }

  /** Subscribes to the list and kick subjects. */
  start(): void {
    const { nc, id } = this.#o;
    const list = nc.subscribe(SESSIONS_LIST_SUBJECT, {
      callback: (_err, msg) => {
        let req: SessionsListRequest = {};
        try {
          req = msg.data.length ? msg.json<SessionsListRequest>() : {};
        } catch {
          // an unreadable filter lists everything
        }
        if (req.gateway && req.gateway !== id) return;
        msg.respond(JSON.stringify({ gateway: id, sessions: this.sessions(req.user) }));
      },
    });
    const kick = nc.subscribe(SESSIONS_KICK_SUBJECT, {
      callback: (_err, msg) => {
        let req: KickRequest;
        try {
          req = msg.json<KickRequest>();
        } catch {
          return; // not a kick request: nothing to answer
        }
        for (const s of this.#o.sessions()) {
          if (s.id === req.session) {
            const reason = typeof req.reason === "string" ? req.reason : "kicked by an admin";
            s.close(CloseCode.PROTOCOL, reason, { kicked: true });
            msg.respond(JSON.stringify({ gateway: id, session: s.id, kicked: true }));
          }
        }
      },
    });
    this.#subs.push(list, kick);
  }

  /** Open sessions (closing ones left out), optionally of one user. */
  sessions(user?: string): SessionInfo[] {
    const out: SessionInfo[] = [];
    for (const s of this.#o.sessions()) {
      if (s.closed || (user !== undefined && s.user !== user)) continue;
      const stats = s.outStats;
      out.push({
        id: s.id,
        gateway: this.#o.id,
        user: s.user,
        remote: s.meta.remote,
        user_agent: s.meta.userAgent,
        since: s.since.toISOString(),
        subscriptions: s.subscriptions(),
        msgs_in: s.msgsIn,
        bytes_in: s.bytesIn,
        msgs_out: s.msgsOut,
        bytes_out: stats.bytes,
      });
    }
    return out;
  }

  /**
   * A session event: counted in metrics (closes are counted when the socket goes), logged
   * (connect and disconnect at info, the rest at debug), and published (best effort).
   */
  emit(s: Session, event: SessionEvent, fields?: Record<string, unknown>): void {
    this.#count(event, fields);
    const { log, nc, id } = this.#o;
    if (event === "connect" || event === "disconnect") {
      const line: Record<string, unknown> = { session: s.id, user: s.user, remote: s.meta.remote };
      if (event === "disconnect") line.duration_ms = Date.now() - s.since.getTime();
      log.info(`session ${event}`, { ...line, ...fields });
    } else if (log.enabled("debug")) {
      log.debug(`session ${event}`, {
        session: s.id,
        user: s.user,
        remote: s.meta.remote,
        ...fields,
      });
    }
    if (nc.isClosed() || this.#o.stopped()) return;
    try {
      nc.publish(
        eventSubject(id, event),
        JSON.stringify({
          event,
          time: new Date().toISOString(),
          gateway: id,
          session: s.id,
          user: s.user,
          remote: s.meta.remote,
          ...fields,
        }),
      );
    } catch {
      // NATS closed or draining: events are best effort.
    }
  }

  #count(event: SessionEvent, fields?: Record<string, unknown>): void {
    const metrics = this.#o.metrics;
    switch (event) {
      case "denied":
        metrics.denied(String(fields?.op ?? "unknown"));
        return;
      case "backpressure":
        metrics.limit("backpressure");
        return;
      case "limit":
        metrics.limit(String(fields?.limit ?? "unknown"));
        return;
      case "revoke":
        metrics.revoked(Array.isArray(fields?.revoked) ? fields.revoked.length : 0);
        return;
    }
  }

  /** Unsubscribes from the control subjects. */
  close(): void {
    for (const sub of this.#subs) {
      try {
        sub.unsubscribe();
      } catch {
        // the connection is closed: its subscriptions are gone with it
      }
    }
    this.#subs = [];
  }
}

/**
 * Logs the NATS connection's status changes (and counts reconnects) until it closes.
 *
 * @example
 * ```ts
 * watchNatsStatus(nc, log, metrics, () => gateway.closing);
 * ```
 */
export function watchNatsStatus(
  nc: NatsConnection,
  log: Logger,
  metrics: GatewayMetrics,
  stopped: () => boolean,
): void {
  (async () => {
    for await (const st of nc.status()) {
      if (st.type === "reconnect") {
        metrics.natsReconnect();
        log.info("NATS reconnected", { server: st.server });
      } else if (st.type === "disconnect") {
        log.warn("NATS disconnected", { server: st.server });
      } else if (st.type === "error") {
        // The server's reason, e.g. "Authorization Violation" or a permissions violation.
        log.warn("NATS server error", { error: st.error?.message ?? String(st.error) });
      } else if (st.type === "ldm") {
        log.info("NATS server entering lame duck mode", { server: st.server });
      } else if (st.type === "close" && !stopped()) {
        log.error("NATS connection closed for good: clients get unavailable", {});
      }
    }
  })().catch((err) => log.debug("NATS status stream ended", { error: err }));
}
