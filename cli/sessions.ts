/** `natsgate sessions`: list, tail and kick the sessions of every running gateway, through NATS.
 * Uses the control plane of src/nats/control.ts; works with any number of gateways.
 * @module */

import { Command, Option } from "@commander-js/extra-typings";
import { type NatsConnection, NoRespondersError, TimeoutError } from "@nats-io/transport-node";
import {
  eventsFilter,
  eventSubject,
  type KickRequest,
  type SessionEventRecord,
  type SessionInfo,
  SESSIONS_KICK_SUBJECT,
  SESSIONS_LIST_SUBJECT,
  type SessionsListReply,
  type SessionsListRequest,
} from "../src/nats/control.ts";
import type { SessionEvent } from "../src/session/types.ts";
import {
  CliError,
  confirmDestructive,
  contextOf,
  durationArg,
  examples,
  formatTable,
  paint,
  plural,
  positiveIntArg,
  UsageError,
  yesOption,
} from "./_common.ts";
import { withNats, withNatsOptions } from "./_nats.ts";

/** Every event kind a gateway publishes (the record makes the compiler check the list). */
const _EVENTS: Record<SessionEvent, true> = {
  connect: true,
  disconnect: true,
  auth_refresh: true,
  sub: true,
  unsub: true,
  denied: true,
  cap_update: true,
  revoke: true,
  backpressure: true,
  limit: true,
};

/** The event kinds `sessions tail --event` accepts. */
export const SESSION_EVENTS = Object.keys(_EVENTS) as SessionEvent[];

const _COLORS: Record<string, number> = {
  connect: 32,
  disconnect: 31,
  denied: 33,
  revoke: 33,
  limit: 35,
  backpressure: 35,
};

/** Asks every gateway for its sessions and gathers the answers within `timeoutMs`. */
export async function listSessions(
  nc: NatsConnection,
  req: SessionsListRequest,
  timeoutMs: number,
): Promise<{ gateways: string[]; sessions: SessionInfo[] }> {
  const gateways: string[] = [];
  const sessions: SessionInfo[] = [];
  try {
    const replies = await nc.requestMany(SESSIONS_LIST_SUBJECT, JSON.stringify(req), {
      strategy: "timer",
      maxWait: timeoutMs,
    });
    for await (const msg of replies) {
      let reply: SessionsListReply;
      try {
        reply = msg.json<SessionsListReply>();
      } catch {
        continue; // not a gateway's answer
      }
      if (!reply || typeof reply.gateway !== "string" || !Array.isArray(reply.sessions)) continue;
      gateways.push(reply.gateway);
      sessions.push(...reply.sessions);
    }
  } catch (err) {
    // No gateway listening at all: an empty list, not an error.
    if (!_isNoAnswer(err)) throw err;
  }
  sessions.sort((a, b) =>
    a.gateway === b.gateway ? (a.since < b.since ? -1 : 1) : (a.gateway < b.gateway ? -1 : 1)
  );
  return { gateways: gateways.sort(), sessions };
}

/** Whether a request failed because nobody answered (timeout or no responders). */
function _isNoAnswer(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof TimeoutError || e instanceof NoRespondersError) return true;
  }
  return false;
}

function _age(since: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** One event as a line of text. */
export function formatEvent(e: SessionEventRecord, color: boolean): string {
  const { event, time, gateway, session, user, remote, ...rest } = e;
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  const parts = [
    paint(color, 2, String(time)),
    paint(color, _COLORS[event] ?? 36, String(event).padEnd(12)),
    `session=${session}`,
    `user=${user ?? "-"}`,
    `gateway=${gateway}`,
  ];
  if (remote) parts.push(`remote=${remote}`);
  if (extra) parts.push(extra);
  return parts.join(" ");
}

/** Builds the `sessions` command group. */
export function sessionsCommand() {
  const sessions = new Command("sessions")
    .description("list, tail and kick sessions of every running gateway (through NATS)")
    .addHelpText(
      "after",
      examples("natsgate sessions list", "natsgate sessions tail --event denied"),
    );

  sessions.addCommand(
    withNatsOptions(new Command("list"))
      .description("list the sessions of all gateways")
      .option("--user <user>", "only this user's sessions")
      .option("--gateway <id>", "only this gateway")
      .addOption(
        new Option("--timeout <duration>", "how long to wait for gateways to answer")
          .argParser(durationArg).default(1000, "1s"),
      )
      .option("--json", "print a JSON array of sessions")
      .addHelpText(
        "after",
        examples(
          "natsgate sessions list",
          "natsgate sessions list --user alice --json | jq '.[].id'",
          "natsgate sessions list | cut -f1        # piped: tab-separated, no header",
        ),
      )
      .action(async (o, cmd) => {
        const ctx = contextOf(cmd);
        const req: SessionsListRequest = {};
        if (o.user !== undefined) req.user = o.user;
        if (o.gateway !== undefined) req.gateway = o.gateway;
        const { gateways, sessions } = await withNats(o, (nc) => listSessions(nc, req, o.timeout));
        if (o.json) {
          ctx.print(JSON.stringify(sessions));
          return;
        }
        const summary = gateways.length === 0
          ? "no sessions (no gateway answered)"
          : sessions.length === 0
          ? `no sessions (${plural(gateways.length, "gateway")})`
          : `${plural(sessions.length, "session")} on ${plural(gateways.length, "gateway")}`;
        const rows = ctx.tty.stdout
          ? [["SESSION", "GATEWAY", "USER", "REMOTE", "SINCE", "SUBS", "IN", "OUT"]]
          : [];
        for (const s of sessions) {
          rows.push([
            s.id,
            s.gateway,
            s.user ?? "-",
            s.remote,
            ctx.tty.stdout
              ? `${s.since.replace(/\.\d+Z$/, "Z")} (${_age(s.since)})`
              : s.since.replace(/\.\d+Z$/, "Z"),
            String(s.subscriptions?.length ?? 0),
            String(s.msgs_in),
            String(s.msgs_out),
          ]);
        }
        if (sessions.length > 0) {
          for (const line of formatTable(rows, ctx.tty.stdout)) ctx.print(line);
        }
        ctx.note(summary);
      }),
  );

  sessions.addCommand(
    withNatsOptions(new Command("tail"))
      .description("print live session events, one per line, until Ctrl-C")
      .option("--user <user>", "only this user's events")
      .option("--gateway <id>", "only this gateway's events")
      .addOption(
        new Option("--event <event>", "only this event kind").choices(SESSION_EVENTS),
      )
      .addOption(
        new Option("--count <n>", "exit after n events").argParser(positiveIntArg),
      )
      .option("--json", "print one JSON object per line")
      .addHelpText(
        "after",
        examples(
          "natsgate sessions tail",
          "natsgate sessions tail --event denied --user alice",
          "natsgate sessions tail --json --count 1 --event connect",
        ),
      )
      .action(async (o, cmd) => {
        const ctx = contextOf(cmd);
        if (o.gateway !== undefined && !/^[^\s.*>]+$/.test(o.gateway)) {
          throw new UsageError(
            `invalid --gateway ${JSON.stringify(o.gateway)}: expected one token`,
          );
        }
        const subject = o.gateway !== undefined
          ? eventSubject(o.gateway, o.event ?? "*")
          : eventsFilter(o.event);
        const color = !o.json && ctx.color;
        await withNats(o, async (nc) => {
          const sub = nc.subscribe(subject);
          let interrupted = false;
          const stop = () => {
            interrupted = true;
            sub.unsubscribe();
          };
          const removeStop = ctx.onInterrupt(stop);
          let n = 0;
          try {
            await nc.flush();
            ctx.note(`tailing ${subject} (Ctrl-C to stop)`);
            for await (const msg of sub) {
              let e: SessionEventRecord;
              try {
                e = msg.json<SessionEventRecord>();
              } catch {
                continue;
              }
              if (o.user !== undefined && e.user !== o.user) continue;
              ctx.print(o.json ? JSON.stringify(e) : formatEvent(e, color));
              if (o.count !== undefined && ++n >= o.count) break;
            }
          } finally {
            removeStop();
            if (!sub.isClosed()) sub.unsubscribe();
          }
          const complete = o.count !== undefined && n >= o.count;
          if (!interrupted && !complete && nc.isClosed()) {
            throw new CliError("lost the connection to NATS");
          }
        });
      }),
  );

  sessions.addCommand(
    withNatsOptions(new Command("kick"))
      .description("close a session (close code 4000) on whichever gateway holds it")
      .argument("<session>", "session id (see sessions list)")
      .option("--reason <text>", "close reason sent to the client", "kicked by an admin")
      .addOption(
        new Option("--timeout <duration>", "how long to wait for the owning gateway")
          .argParser(durationArg).default(2000, "2s"),
      )
      .option("--json", "print the gateway's answer as JSON")
      .addOption(yesOption())
      .addHelpText(
        "after",
        examples(
          "natsgate sessions kick 3f2a9c             # asks first on a terminal",
          "natsgate sessions kick 3f2a9c --reason 'maintenance' --yes",
        ),
      )
      .action(async (session, o, cmd) => {
        const ctx = contextOf(cmd);
        const req: KickRequest = { session, reason: o.reason };
        await confirmDestructive(ctx, `close session ${session} (code 4000)?`, {
          yes: o.yes,
          action: "kick a session",
        });
        const reply = await withNats(o, async (nc) => {
          try {
            const msg = await nc.request(SESSIONS_KICK_SUBJECT, JSON.stringify(req), {
              timeout: o.timeout,
            });
            return msg.json<{ gateway: string; session: string; kicked: boolean }>();
          } catch (err) {
            if (_isNoAnswer(err)) {
              throw new CliError(`no gateway has session ${session}`);
            }
            throw err;
          }
        });
        if (o.json) ctx.print(JSON.stringify(reply));
        else ctx.print(`kicked session ${reply.session} on gateway ${reply.gateway}`);
      }),
  );

  return sessions;
}
