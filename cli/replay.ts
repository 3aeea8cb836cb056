/** `natsgate replay`: prints (or republishes) the messages of a JetStream stream, for debugging.
 * Reads with an ordered consumer; stops at the stream's end at start unless `--follow`.
 * @module */

import { Command, Option } from "@commander-js/extra-typings";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  type JsMsg,
  type OrderedConsumerOptions,
  type StreamInfo,
} from "@nats-io/jetstream";
import { payloadValue } from "../src/protocol/payload.ts";
import { headersRecord } from "../src/protocol/headers.ts";
import { isLiteralSubject, validateStreamName, validateSubject } from "../src/protocol/subject.ts";
import {
  type CliContext,
  CliError,
  confirmDestructive,
  contextOf,
  durationArg,
  examples,
  plural,
  positiveIntArg,
  UsageError,
  yesOption,
} from "./_common.ts";
import { type NatsFlags, withNats, withNatsOptions } from "./_nats.ts";

/** One replayed message as printed by `--json`. */
export interface ReplayRecord {
  /** Stream sequence. */
  seq: number;
  /** Subject. */
  subject: string;
  /** Time the stream stored it (RFC 3339). */
  time: string;
  /** Headers, with `--headers` and when the message has any. */
  headers?: Record<string, string | string[]>;
  /** The payload (JSON value, or a string with `encoding`). */
  payload: unknown;
  /** `text` or `base64` when the payload is not JSON. */
  encoding?: "text" | "base64";
}

/** Options of the replay command. */
interface _ReplayOptions extends NatsFlags {
  fromSeq?: number;
  since?: number;
  startTime?: string;
  filter?: string;
  count?: number;
  untilSeq?: number;
  follow?: boolean;
  headers?: boolean;
  json?: boolean;
  raw?: boolean;
  to?: string;
  yes?: boolean;
}

const _encoder = new TextEncoder();

/** The `--json` record of a message. */
export function replayRecord(m: JsMsg, withHeaders: boolean): ReplayRecord {
  const hdrs = withHeaders ? headersRecord(m) : undefined;
  const p = payloadValue(m.data);
  return {
    seq: m.seq,
    subject: m.subject,
    time: m.time.toISOString(),
    ...(hdrs ? { headers: hdrs } : {}),
    payload: p.payload,
    ...(p.encoding ? { encoding: p.encoding } : {}),
  };
}

function _human(m: JsMsg, withHeaders: boolean, pretty: boolean): string {
  const lines = [`#${m.seq}  ${m.time.toISOString()}  ${m.subject}`];
  const hdrs = withHeaders ? headersRecord(m) : undefined;
  for (const [k, v] of Object.entries(hdrs ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) lines.push(`  ${k}: ${value}`);
  }
  const p = payloadValue(m.data);
  if (p.encoding === "base64") lines.push(`  base64:${p.payload}`);
  else if (p.encoding === "text") lines.push(`  ${String(p.payload).replace(/\n/g, "\n  ")}`);
  else {
    const text = pretty ? JSON.stringify(p.payload, null, 2) : JSON.stringify(p.payload);
    lines.push(`  ${text.replace(/\n/g, "\n  ")}`);
  }
  return lines.join("\n");
}

/** A done/total counter on stderr, shown only on a terminal for more than a screenful. */
class _Progress {
  #on: boolean;
  #total: number;
  #last = 0;
  #ctx: CliContext;

  constructor(ctx: CliContext, total: number) {
    this.#ctx = ctx;
    this.#total = total;
    this.#on = ctx.tty.stderr && total > ctx.rows;
  }

  tick(done: number): void {
    if (!this.#on) return;
    const now = Date.now();
    if (now - this.#last < 100 && done < this.#total) return;
    this.#last = now;
    this.#ctx.stderr.write(`\r${done}/${this.#total}`);
  }

  end(): void {
    if (this.#on) this.#ctx.stderr.write("\r\x1b[K");
  }
}

function _startOptions(o: _ReplayOptions): Partial<OrderedConsumerOptions> {
  const given = [o.fromSeq, o.since, o.startTime].filter((v) => v !== undefined).length;
  if (given > 1) throw new UsageError("pass only one of --from-seq, --since and --start-time");
  const opts: Partial<OrderedConsumerOptions> = {};
  if (o.fromSeq !== undefined) {
    opts.deliver_policy = DeliverPolicy.StartSequence;
    opts.opt_start_seq = o.fromSeq;
  } else if (o.since !== undefined) {
    opts.opt_start_time = new Date(Date.now() - o.since).toISOString();
  } else if (o.startTime !== undefined) {
    const t = Date.parse(o.startTime);
    if (!/^\d{4}-\d{2}-\d{2}/.test(o.startTime) || Number.isNaN(t)) {
      throw new UsageError(
        `invalid --start-time ${JSON.stringify(o.startTime)}: expected an RFC 3339 time ` +
          "such as 2024-05-01T12:00:00Z",
      );
    }
    opts.opt_start_time = new Date(t).toISOString();
  } else {
    opts.deliver_policy = DeliverPolicy.All;
  }
  if (o.filter !== undefined) opts.filter_subjects = o.filter;
  return opts;
}

function _validate(stream: string, o: _ReplayOptions): void {
  const nameErr = validateStreamName(stream);
  if (nameErr) throw new UsageError(`invalid stream name ${JSON.stringify(stream)}: ${nameErr}`);
  if (o.filter !== undefined) {
    const err = validateSubject(o.filter);
    if (err) throw new UsageError(`invalid --filter ${JSON.stringify(o.filter)}: ${err}`);
  }
  if (o.to !== undefined) {
    const err = validateSubject(o.to, { wildcards: false }) ??
      (isLiteralSubject(o.to) ? null : "must not contain wildcards");
    if (err) throw new UsageError(`invalid --to ${JSON.stringify(o.to)}: ${err}`);
  }
  if (o.untilSeq !== undefined && o.fromSeq !== undefined && o.untilSeq < o.fromSeq) {
    throw new UsageError(`--until-seq ${o.untilSeq} is before --from-seq ${o.fromSeq}`);
  }
}

async function _streamInfo(nc: NatsConnection, stream: string): Promise<StreamInfo> {
  try {
    const jsm = await jetstreamManager(nc);
    return await jsm.streams.info(stream);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
      throw new CliError(`no stream named ${stream}`);
    }
    throw new CliError(`cannot read stream ${stream}: ${(err as Error).message}`);
  }
}

async function _replay(ctx: CliContext, stream: string, o: _ReplayOptions): Promise<void> {
  _validate(stream, o);
  const opts = _startOptions(o);
  await withNats(o, async (nc) => {
    const info = await _streamInfo(nc, stream);
    const lastSeq = info.state.last_seq;
    if (!o.follow && o.fromSeq !== undefined && o.fromSeq > lastSeq) {
      throw new CliError(
        `--from-seq ${o.fromSeq} is past the end of stream ${stream} (last seq ${lastSeq}); ` +
          "add --follow to wait for new messages",
      );
    }
    const consumer = await jetstream(nc).consumers.get(stream, opts).catch((err) => {
      throw new CliError(`cannot read stream ${stream}: ${(err as Error).message}`);
    });
    try {
      const pending = (await consumer.info(true)).num_pending;
      const total = o.count !== undefined ? Math.min(o.count, pending) : pending;
      if (o.to !== undefined) {
        await confirmDestructive(
          ctx,
          o.follow
            ? `republish messages of ${stream} to ${o.to} as they arrive?`
            : `republish up to ${plural(total, "message")} of ${stream} to ${o.to}?`,
          { yes: o.yes, action: "republish" },
        );
      }
      let done = 0;
      if (o.follow) ctx.note(`following ${stream} (Ctrl-C to stop)`);
      if (o.follow || pending > 0) {
        done = await _consume(ctx, nc, consumer, o, lastSeq, total);
      }
      if (o.to !== undefined) {
        await nc.flush();
        if (o.json) ctx.print(JSON.stringify({ stream, to: o.to, republished: done }));
        else ctx.note(`republished ${plural(done, "message")} to ${o.to}`);
      } else if (done === 0 && !o.json && !o.raw) {
        ctx.note(`no messages in ${stream} match`);
      }
    } finally {
      await consumer.delete().catch(() => {});
    }
  });
}

async function _consume(
  ctx: CliContext,
  nc: NatsConnection,
  consumer: Awaited<ReturnType<ReturnType<typeof jetstream>["consumers"]["get"]>>,
  o: _ReplayOptions,
  lastSeq: number,
  total: number,
): Promise<number> {
  const iter = await consumer.consume({ max_messages: 256 });
  const removeStop = ctx.onInterrupt(() => iter.stop());
  const pretty = ctx.tty.stdout;
  const progress = new _Progress(ctx, o.follow ? 0 : total);
  let done = 0;
  try {
    for await (const m of iter) {
      if (o.untilSeq !== undefined && m.seq > o.untilSeq) break;
      if (!o.follow && m.seq > lastSeq) break;
      if (o.to !== undefined) {
        nc.publish(o.to, m.data, m.headers ? { headers: m.headers } : undefined);
      } else if (o.raw) {
        ctx.stdout.write(m.data);
        ctx.stdout.write(_encoder.encode("\n"));
      } else if (o.json) {
        ctx.print(JSON.stringify(replayRecord(m, Boolean(o.headers))));
      } else {
        ctx.print(_human(m, Boolean(o.headers), pretty));
      }
      progress.tick(++done);
      if (o.count !== undefined && done >= o.count) break;
      if (o.untilSeq !== undefined && m.seq >= o.untilSeq) break;
      if (!o.follow && (m.info.pending === 0 || m.seq >= lastSeq)) break;
    }
  } finally {
    progress.end();
    removeStop();
    iter.stop();
  }
  return done;
}

/** Builds the `replay` command. */
export function replayCommand() {
  return withNatsOptions(new Command("replay"))
    .description(
      "print the messages of a JetStream stream (or republish them with --to); stops at the " +
        "stream's end unless --follow",
    )
    .argument("<stream>", "stream name")
    .addOption(new Option("--from-seq <n>", "start at this sequence").argParser(positiveIntArg))
    .addOption(
      new Option("--since <duration>", "start this long ago, e.g. 15m").argParser(durationArg),
    )
    .option("--start-time <time>", "start at this RFC 3339 time")
    .option("--filter <subject>", "only messages on this subject (wildcards allowed)")
    .addOption(new Option("--count <k>", "stop after k messages").argParser(positiveIntArg))
    .addOption(
      new Option("--until-seq <m>", "stop after this sequence").argParser(positiveIntArg),
    )
    .option("--follow", "keep waiting for new messages (Ctrl-C stops)")
    .option("--headers", "include headers")
    .option("--json", "one JSON object per line")
    .addOption(
      new Option("--raw", "print only the payload bytes, one message per line")
        .conflicts(["json", "headers"]),
    )
    .option("--to <subject>", "republish the selected messages (with headers) to this subject")
    .addOption(yesOption())
    .addHelpText(
      "after",
      examples(
        "natsgate replay ORDERS --since 15m",
        "natsgate replay ORDERS --from-seq 100 --count 10 --json | jq .payload",
        "natsgate replay ORDERS --filter 'orders.paid' --follow",
        "natsgate replay ORDERS --raw > payloads.txt",
        "natsgate replay ORDERS --filter orders.failed --to orders.retry --yes",
      ),
    )
    .action(async (stream, o, cmd) => {
      await _replay(contextOf(cmd), stream, o);
    });
}
