/** `natsgate caps`: read, write, edit, grant, revoke, seed and check user capabilities in KV.
 * Every write is validated first and compare-and-set: bad input or a concurrent change writes nothing.
 * @module */

import { Command, Option } from "@commander-js/extra-typings";
import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import {
  type Capabilities,
  checkCommand,
  checkKv,
  checkPublish,
  checkStream,
  checkSubscribe,
  compileCapabilities,
  type Decision,
  parseCapabilities,
  parseCapabilitiesJson,
  summarizeCapabilities,
} from "../src/auth/capabilities.ts";
import { userFromKey, userKey } from "../src/auth/user_key.ts";
import {
  validateBucketName,
  validateKvKey,
  validateStreamName,
  validateSubject,
} from "../src/protocol/subject.ts";
import { CliError, envOption } from "./_common.ts";
import { confirmAction, type NatsFlags, withNats, withNatsOptions } from "./_nats.ts";

/** Exit code of `caps check` when the operation is denied. */
export const CHECK_DENIED_EXIT = 3;

/** Operations `caps check` understands, as in the protocol. */
export const CHECK_OPS = ["sub", "pub", "cmd", "kv_sub", "js_sub"] as const;

/** How many times grant/revoke retry a compare-and-set that lost a race. */
const _CAS_ATTEMPTS = 5;

/** Lines of the edit buffer starting with this are comments (stripped before parsing). */
const _COMMENT = "//";

/** A stored document as read from KV. */
interface _Stored {
  /** Revision of the key's last entry, delete markers included (0: never written): the CAS base. */
  revision: number;
  /** The document text, or null when there is none (never written, deleted or purged). */
  text: string | null;
  /** When it was written. */
  created?: Date;
}

interface _BucketFlags extends NatsFlags {
  authBucket: string;
}

/** Options common to every `caps` subcommand: NATS flags and `--auth-bucket`. */
function _capsCommand(name: string) {
  return withNatsOptions(new Command(name))
    .addOption(envOption("--auth-bucket <name>", "KV bucket holding capabilities").default("auth"));
}

// ---------------------------------------------------------------------------------------------
// KV access
// ---------------------------------------------------------------------------------------------

function _isApiError(err: unknown, ...codes: number[]): boolean {
  return err instanceof JetStreamApiError && codes.includes(err.code);
}

function _isCasConflict(err: unknown): boolean {
  return _isApiError(
    err,
    JetStreamApiCodes.StreamWrongLastSequence,
    JetStreamApiCodes.StreamWrongLastSequenceUnknown,
  );
}

function _message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Opens the auth bucket; when it does not exist, creates it (`create`) or returns null. */
async function _openKv(nc: NatsConnection, bucket: string, create: boolean): Promise<KV | null> {
  const bucketErr = validateBucketName(bucket);
  if (bucketErr) {
    throw new CliError(`invalid --auth-bucket ${JSON.stringify(bucket)}: ${bucketErr}`);
  }
  let exists = true;
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.info(`KV_${bucket}`);
  } catch (err) {
    if (!_isApiError(err, JetStreamApiCodes.StreamNotFound)) {
      throw new CliError(`cannot open KV bucket ${bucket}: ${_message(err)}`);
    }
    exists = false;
  }
  const kvm = new Kvm(nc);
  if (exists) return await kvm.open(bucket);
  if (!create) return null;
  return await kvm.create(bucket, { history: 10 });
}

/** Opens the bucket for reading, or throws "no capabilities for USER" when it does not exist. */
async function _openForUser(nc: NatsConnection, bucket: string, user: string): Promise<KV> {
  const kv = await _openKv(nc, bucket, false);
  if (!kv) throw new CliError(`no capabilities for ${user} (bucket ${bucket} does not exist)`);
  return kv;
}

function _stored(e: KvEntry | null): _Stored {
  if (!e) return { revision: 0, text: null };
  if (e.operation !== "PUT") return { revision: e.revision, text: null, created: e.created };
  return { revision: e.revision, text: e.string(), created: e.created };
}

async function _read(kv: KV, user: string): Promise<_Stored> {
  return _stored(await kv.get(userKey(user)));
}

/** Writes `text` only if the key is still at `revision` (0: must not exist); throws on a lost race. */
async function _writeCas(kv: KV, user: string, text: string, revision: number): Promise<number> {
  return await kv.put(userKey(user), text, { previousSeq: revision });
}

function _concurrent(user: string, extra = ""): CliError {
  return new CliError(
    `capabilities of ${user} changed concurrently; nothing written${extra ? ` (${extra})` : ""}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/** The stored form of a validated document. */
function _serialize(doc: unknown): string {
  return JSON.stringify(doc);
}

/** JSON with sorted keys, to compare documents. */
function _canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(_canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.keys(v as Record<string, unknown>).sort()
      .map((k) => `${JSON.stringify(k)}:${_canonical((v as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(v);
}

function _pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function _compact(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

/** Validates JSON text; returns the parsed document (as written) or throws naming every error. */
function _validateText(text: string, what = "capabilities"): Capabilities {
  const r = parseCapabilitiesJson(text);
  if (!r.ok) throw new CliError(`invalid ${what}: ${r.errors.join("; ")}`);
  return JSON.parse(text) as Capabilities;
}

/** Validates a value; returns it or throws naming every error. */
function _validateValue(value: unknown, what = "capabilities"): Capabilities {
  const r = parseCapabilities(value);
  if (!r.ok) throw new CliError(`invalid ${what}: ${r.errors.join("; ")}`);
  return value as Capabilities;
}

/** Parses a stored document; returns null (and the errors) when it is malformed. */
function _parseStored(text: string): { doc: Capabilities | null; errors: string[] } {
  const r = parseCapabilitiesJson(text);
  if (!r.ok) return { doc: null, errors: r.errors };
  return { doc: r.value, errors: [] };
}

function _summary(text: string | null): string {
  if (text === null) return "(none)";
  const { doc, errors } = _parseStored(text);
  if (!doc) return `INVALID (grants nothing): ${errors.join("; ")}`;
  return summarizeCapabilities(doc);
}

async function _readSource(o: { json?: string; file?: string }, source?: string): Promise<string> {
  const given = [o.json !== undefined, o.file !== undefined, source !== undefined]
    .filter(Boolean).length;
  if (given !== 1) {
    throw new CliError("pass exactly one of --json <document>, --file <path> or - (stdin)", 2);
  }
  if (o.json !== undefined) return o.json;
  if (source !== undefined && source !== "-") {
    throw new CliError(`unexpected argument ${JSON.stringify(source)}: use - to read stdin`, 2);
  }
  const path = o.file ?? "-";
  try {
    if (path === "-") return await new Response(Deno.stdin.readable).text();
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new CliError(`cannot read ${path === "-" ? "stdin" : path}: ${_message(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// grant / revoke
// ---------------------------------------------------------------------------------------------

/** What grant or revoke adds or removes. */
interface _Delta {
  subjects: string[];
  publish: string[];
  commands: string[];
  buckets: Record<string, string[]>;
  streams: Record<string, string[]>;
}

function _collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function _pairs(values: string[], flag: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const i = v.indexOf("=");
    const name = i < 0 ? v : v.slice(0, i);
    const pattern = i < 0 ? ">" : v.slice(i + 1);
    if (!name) throw new CliError(`invalid ${flag} ${JSON.stringify(v)}: expected NAME=PATTERN`, 2);
    (out[name] ??= []).push(pattern);
  }
  return out;
}

function _deltaDoc(d: _Delta): Capabilities {
  const doc: Record<string, unknown> = {};
  if (d.subjects.length) doc.subjects = d.subjects;
  if (d.publish.length) doc.publish = d.publish;
  if (d.commands.length) doc.commands = d.commands;
  if (Object.keys(d.buckets).length) doc.buckets = d.buckets;
  if (Object.keys(d.streams).length) doc.streams = d.streams;
  return doc as Capabilities;
}

function _deltaLines(d: _Delta): string[] {
  const lines: string[] = [];
  for (const k of ["subjects", "publish", "commands"] as const) {
    for (const p of d[k]) lines.push(`${k} ${p}`);
  }
  for (const k of ["buckets", "streams"] as const) {
    for (const [name, ps] of Object.entries(d[k])) {
      for (const p of ps) lines.push(`${k} ${name}=${p}`);
    }
  }
  return lines;
}

function _emptyDelta(): _Delta {
  return { subjects: [], publish: [], commands: [], buckets: {}, streams: {} };
}

/** Applies a grant or revoke to a document; returns the new document and what really changed. */
function _apply(
  doc: Capabilities,
  d: _Delta,
  mode: "grant" | "revoke",
): { doc: Capabilities; changed: _Delta } {
  const out = structuredClone(doc) as Record<string, unknown>;
  const changed = _emptyDelta();
  for (const k of ["subjects", "publish", "commands"] as const) {
    const list = Array.isArray(out[k]) ? [...out[k] as string[]] : [];
    for (const p of d[k]) {
      const i = list.indexOf(p);
      if (mode === "grant" && i < 0) {
        list.push(p);
        changed[k].push(p);
      } else if (mode === "revoke" && i >= 0) {
        list.splice(i, 1);
        changed[k].push(p);
      }
    }
    if (changed[k].length === 0) continue;
    if (list.length) out[k] = list;
    else delete out[k];
  }
  for (const k of ["buckets", "streams"] as const) {
    const map = out[k] && typeof out[k] === "object"
      ? { ...out[k] as Record<string, string[]> }
      : {};
    let touched = false;
    for (const [name, patterns] of Object.entries(d[k])) {
      const list = Array.isArray(map[name]) ? [...map[name]] : [];
      const had = Object.hasOwn(map, name);
      for (const p of patterns) {
        const i = list.indexOf(p);
        if (mode === "grant" && i < 0) {
          list.push(p);
          (changed[k][name] ??= []).push(p);
        } else if (mode === "revoke" && i >= 0) {
          list.splice(i, 1);
          (changed[k][name] ??= []).push(p);
        }
      }
      if (mode === "grant" || list.length) {
        if (list.length || had) map[name] = list;
      } else if (had) {
        delete map[name];
      }
      touched ||= changed[k][name] !== undefined;
    }
    if (!touched) continue;
    if (Object.keys(map).length) out[k] = map;
    else delete out[k];
  }
  return { doc: out as Capabilities, changed };
}

async function _grantOrRevoke(
  o: _BucketFlags & { json?: boolean },
  user: string,
  d: _Delta,
  mode: "grant" | "revoke",
): Promise<void> {
  if (_deltaLines(d).length === 0) {
    throw new CliError(
      `nothing to ${mode}: pass --subject, --publish, --command, --bucket or --stream`,
      2,
    );
  }
  _validateValue(_deltaDoc(d), `${mode}`);
  await withNats(o, async (nc) => {
    const kv = mode === "grant"
      ? (await _openKv(nc, o.authBucket, true))!
      : await _openForUser(nc, o.authBucket, user);
    for (let attempt = 1;; attempt++) {
      const cur = await _read(kv, user);
      let doc: Capabilities = {};
      if (cur.text !== null) {
        const parsed = _parseStored(cur.text);
        if (!parsed.doc) {
          throw new CliError(
            `stored capabilities of ${user} are invalid (${parsed.errors.join("; ")}); ` +
              "fix them with caps edit or caps set",
          );
        }
        doc = JSON.parse(cur.text) as Capabilities;
      } else if (mode === "revoke") {
        throw new CliError(`no capabilities for ${user}`);
      }
      const { doc: next, changed } = _apply(doc, d, mode);
      const lines = _deltaLines(changed);
      let revision = cur.revision;
      if (lines.length > 0) {
        _validateValue(next);
        try {
          revision = await _writeCas(kv, user, _serialize(next), cur.revision);
        } catch (err) {
          if (!_isCasConflict(err)) throw err;
          if (attempt >= _CAS_ATTEMPTS) throw _concurrent(user, `${attempt} attempts`);
          continue;
        }
      }
      if (o.json) {
        console.log(JSON.stringify({
          user,
          revision,
          changed: lines.length > 0,
          [mode === "grant" ? "granted" : "revoked"]: _deltaDoc(changed),
          capabilities: next,
        }));
      } else if (lines.length === 0) {
        console.log(
          `${user}: nothing to ${mode} (${mode === "grant" ? "already granted" : "not granted"})`,
        );
      } else {
        const verb = mode === "grant" ? "granted to" : "revoked from";
        console.log(`${verb} ${user} (revision ${revision}):`);
        for (const l of lines) console.log(`  ${mode === "grant" ? "+" : "-"} ${l}`);
      }
      return;
    }
  });
}

function _grantCommand(mode: "grant" | "revoke") {
  const verb = mode === "grant" ? "grant" : "revoke";
  return _capsCommand(mode)
    .description(
      mode === "grant"
        ? "add patterns to a user's capabilities (no duplicates)"
        : "remove exact patterns from a user's capabilities (empty bucket/stream entries go too)",
    )
    .argument("<user>", "user id (the token's sub claim)")
    .addOption(
      new Option("--subject <pattern>", `${verb} a sub pattern (repeatable)`)
        .argParser(_collect).default([] as string[]),
    )
    .addOption(
      new Option("--publish <pattern>", `${verb} a pub pattern (repeatable)`)
        .argParser(_collect).default([] as string[]),
    )
    .addOption(
      new Option("--command <pattern>", `${verb} a cmd pattern (repeatable)`)
        .argParser(_collect).default([] as string[]),
    )
    .addOption(
      new Option("--bucket <bucket=key>", `${verb} a KV key pattern (repeatable; key default >)`)
        .argParser(_collect).default([] as string[]),
    )
    .addOption(
      new Option("--stream <stream=filter>", `${verb} a stream filter (repeatable; default >)`)
        .argParser(_collect).default([] as string[]),
    )
    .option("--json", "print the result as JSON")
    .action(async (user, o) => {
      const d: _Delta = {
        subjects: [...new Set(o.subject)],
        publish: [...new Set(o.publish)],
        commands: [...new Set(o.command)],
        buckets: _pairs(o.bucket, "--bucket"),
        streams: _pairs(o.stream, "--stream"),
      };
      await _grantOrRevoke(o, user, d, mode);
    });
}

// ---------------------------------------------------------------------------------------------
// edit
// ---------------------------------------------------------------------------------------------

function _stripComments(text: string): string {
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].trimStart().startsWith(_COMMENT)) i++;
  return lines.slice(i).join("\n");
}

async function _runEditor(path: string): Promise<number> {
  const editor = Deno.env.get("EDITOR") || "vi";
  const stdio = { stdin: "inherit", stdout: "inherit", stderr: "inherit" } as const;
  const cmd = Deno.build.os === "windows"
    ? new Deno.Command("cmd", { args: ["/c", `${editor} "${path}"`], ...stdio })
    : new Deno.Command("sh", { args: ["-c", `${editor} "$1"`, "sh", path], ...stdio });
  try {
    return (await cmd.spawn().status).code;
  } catch (err) {
    throw new CliError(`cannot run editor ${JSON.stringify(editor)}: ${_message(err)}`);
  }
}

async function _edit(o: _BucketFlags, user: string): Promise<void> {
  await withNats(o, async (nc) => {
    const kv = (await _openKv(nc, o.authBucket, true))!;
    const cur = await _read(kv, user);
    const original = cur.text === null ? "{}" : _pretty(cur.text);
    let body = original + "\n";
    let header: string[] = [
      `${_COMMENT} capabilities of ${user} (${
        cur.text === null ? "new" : `revision ${cur.revision}`
      }); lines starting with ${_COMMENT} at the top are ignored`,
    ];
    const path = await Deno.makeTempFile({ prefix: "natsgate-caps-", suffix: ".json" });
    try {
      for (let round = 1;; round++) {
        await Deno.writeTextFile(path, [...header, body].join("\n"));
        const code = await _runEditor(path);
        if (code !== 0) throw new CliError(`editor exited with code ${code}; nothing written`);
        const edited = _stripComments(await Deno.readTextFile(path));
        if (edited.trim() === body.trim()) {
          if (round === 1) {
            console.error("no changes; nothing written");
            return;
          }
          throw new CliError(`still invalid and unchanged; nothing written: ${header[1] ?? ""}`);
        }
        const r = parseCapabilitiesJson(edited);
        if (!r.ok) {
          header = [
            `${_COMMENT} natsgate: invalid capabilities, fix and save (or save unchanged to abort):`,
            ...r.errors.map((e) => `${_COMMENT}   ${e.replace(/\n/g, " ")}`),
          ];
          body = edited;
          continue;
        }
        const doc = JSON.parse(edited);
        if (cur.text !== null && _canonical(doc) === _canonical(_tryParse(cur.text))) {
          console.error("no changes; nothing written");
          return;
        }
        try {
          const rev = await _writeCas(kv, user, _serialize(doc), cur.revision);
          console.log(`saved capabilities of ${user} (revision ${rev})`);
          return;
        } catch (err) {
          if (!_isCasConflict(err)) throw err;
          const now = await _read(kv, user);
          const keep = await Deno.makeTempFile({ prefix: "natsgate-caps-edit-", suffix: ".json" });
          await Deno.writeTextFile(keep, edited);
          throw _concurrent(
            user,
            `revision ${cur.revision} became ${now.revision} while editing; your edit is in ${keep}`,
          );
        }
      }
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  });
}

function _tryParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// seed
// ---------------------------------------------------------------------------------------------

/** The result of comparing a seed file with the bucket. */
interface _SeedPlan {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
}

function _validateSeed(text: string): Map<string, Capabilities> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`invalid seed file: not JSON: ${_message(err)}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError("invalid seed file: expected a JSON object of user id → capabilities");
  }
  const out = new Map<string, Capabilities>();
  const errors: string[] = [];
  for (const [user, caps] of Object.entries(value as Record<string, unknown>)) {
    if (user.length === 0) {
      errors.push('"": empty user id');
      continue;
    }
    const r = parseCapabilities(caps);
    if (!r.ok) {
      for (const e of r.errors) errors.push(`${JSON.stringify(user)}: ${e}`);
    } else out.set(user, caps as Capabilities);
  }
  if (errors.length) throw new CliError(`invalid seed file: ${errors.join("; ")}`);
  return out;
}

async function _currentUsers(kv: KV): Promise<Map<string, _Stored>> {
  const out = new Map<string, _Stored>();
  const keys: string[] = [];
  for await (const k of await kv.keys("users.>")) keys.push(k);
  for (const k of keys) {
    const user = userFromKey(k);
    if (user === null || user === undefined) continue;
    const s = _stored(await kv.get(k));
    if (s.text !== null) out.set(user, s);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// commands
// ---------------------------------------------------------------------------------------------

/** Builds the `caps` command group. */
export function capsCommand() {
  const caps = new Command("caps")
    .description("manage user capabilities in the auth KV bucket (key users.<encoded id>)");

  caps.addCommand(
    _capsCommand("get")
      .description("print a user's stored capabilities document")
      .argument("<user>", "user id")
      .option("--json", "print compact JSON")
      .action(async (user, o) => {
        await withNats(o, async (nc) => {
          const kv = await _openForUser(nc, o.authBucket, user);
          const cur = await _read(kv, user);
          if (cur.text === null) throw new CliError(`no capabilities for ${user}`);
          console.log(o.json ? _compact(cur.text) : _pretty(cur.text));
          const { doc, errors } = _parseStored(cur.text);
          if (!doc) {
            console.error(
              `warning: this document is invalid and grants nothing: ${errors.join("; ")}`,
            );
          }
        });
      }),
  );

  caps.addCommand(
    _capsCommand("set")
      .description("validate and write a user's capabilities (from --json, --file or - for stdin)")
      .argument("<user>", "user id")
      .argument("[source]", "- to read the document from stdin")
      .option("--json <document>", "the capabilities document")
      .option("--file <path>", "read the document from a file")
      .action(async (user, source, o) => {
        const text = await _readSource(o, source);
        const doc = _validateText(text);
        await withNats(o, async (nc) => {
          const kv = (await _openKv(nc, o.authBucket, true))!;
          const rev = await kv.put(userKey(user), _serialize(doc));
          console.log(`set capabilities of ${user} (revision ${rev})`);
        });
      }),
  );

  caps.addCommand(
    _capsCommand("edit")
      .description("edit a user's capabilities in $EDITOR; validated, written compare-and-set")
      .argument("<user>", "user id")
      .action(async (user, o) => {
        await _edit(o, user);
      }),
  );

  caps.addCommand(_grantCommand("grant"));
  caps.addCommand(_grantCommand("revoke"));

  caps.addCommand(
    _capsCommand("list")
      .description("list users with a one-line summary of their capabilities")
      .option("--json", "print a JSON array")
      .action(async (o) => {
        await withNats(o, async (nc) => {
          const kv = await _openKv(nc, o.authBucket, false);
          const users = kv ? await _currentUsers(kv) : new Map<string, _Stored>();
          const rows = [...users.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
          if (o.json) {
            console.log(JSON.stringify(rows.map(([user, s]) => {
              const { doc, errors } = _parseStored(s.text!);
              return {
                user,
                key: userKey(user),
                revision: s.revision,
                valid: doc !== null,
                ...(doc ? { summary: summarizeCapabilities(doc) } : { errors }),
                capabilities: _tryParse(s.text!) ?? s.text,
              };
            })));
            return;
          }
          if (rows.length === 0) {
            console.log("no users");
            return;
          }
          const width = Math.max(4, ...rows.map(([u]) => u.length));
          console.log(`${"USER".padEnd(width)}  ${"REV".padStart(5)}  CAPABILITIES`);
          for (const [user, s] of rows) {
            console.log(
              `${user.padEnd(width)}  ${String(s.revision).padStart(5)}  ${_summary(s.text)}`,
            );
          }
        });
      }),
  );

  caps.addCommand(
    _capsCommand("delete")
      .description("delete a user's capabilities (asks first on a terminal)")
      .argument("<user>", "user id")
      .option("-y, --yes", "do not ask for confirmation")
      .action(async (user, o) => {
        await withNats(o, async (nc) => {
          const kv = await _openForUser(nc, o.authBucket, user);
          const cur = await _read(kv, user);
          if (cur.text === null) throw new CliError(`no capabilities for ${user}`);
          confirmAction(`delete the capabilities of ${user}?`, "delete capabilities", o.yes);
          try {
            await kv.delete(userKey(user), { previousSeq: cur.revision });
          } catch (err) {
            if (_isCasConflict(err)) throw _concurrent(user);
            throw err;
          }
          console.log(`deleted capabilities of ${user}`);
        });
      }),
  );

  caps.addCommand(
    _capsCommand("history")
      .description("list the KV revisions of a user's capabilities")
      .argument("<user>", "user id")
      .option("--json", "print a JSON array")
      .action(async (user, o) => {
        await withNats(o, async (nc) => {
          const kv = await _openForUser(nc, o.authBucket, user);
          const entries: KvEntry[] = [];
          for await (const e of await kv.history({ key: userKey(user) })) entries.push(e);
          if (entries.length === 0) throw new CliError(`no capabilities for ${user}`);
          entries.sort((a, b) => a.revision - b.revision);
          if (o.json) {
            console.log(JSON.stringify(entries.map((e) => ({
              revision: e.revision,
              time: e.created.toISOString(),
              operation: e.operation,
              ...(e.operation === "PUT"
                ? { capabilities: _tryParse(e.string()) ?? e.string() }
                : {}),
            }))));
            return;
          }
          console.log(
            `${"REV".padStart(5)}  ${"TIME".padEnd(24)}  ${"OP".padEnd(5)}  CAPABILITIES`,
          );
          for (const e of entries) {
            const what = e.operation === "PUT" ? _summary(e.string()) : "";
            console.log(
              `${String(e.revision).padStart(5)}  ${e.created.toISOString().padEnd(24)}  ${
                e.operation.padEnd(5)
              }  ${what}`.trimEnd(),
            );
          }
        });
      }),
  );

  caps.addCommand(
    _capsCommand("seed")
      .description("write many users' capabilities from a JSON file {user: capabilities}")
      .argument("<file>", "seed file (- for stdin)")
      .option("--dry-run", "print what would change and write nothing")
      .option("--replace", "also delete users that are not in the file")
      .option("--json", "print the plan as JSON")
      .action(async (file, o) => {
        let text: string;
        try {
          text = file === "-"
            ? await new Response(Deno.stdin.readable).text()
            : await Deno.readTextFile(file);
        } catch (err) {
          throw new CliError(`cannot read ${file}: ${_message(err)}`);
        }
        const wanted = _validateSeed(text);
        await withNats(o, async (nc) => {
          const kv = o.dryRun
            ? await _openKv(nc, o.authBucket, false)
            : await _openKv(nc, o.authBucket, true);
          const current = kv ? await _currentUsers(kv) : new Map<string, _Stored>();
          const plan: _SeedPlan = { added: [], changed: [], removed: [], unchanged: [] };
          for (const [user, doc] of wanted) {
            const cur = current.get(user);
            if (!cur) plan.added.push(user);
            else if (_canonical(_tryParse(cur.text!)) === _canonical(doc)) {
              plan.unchanged.push(user);
            } else plan.changed.push(user);
          }
          if (o.replace) {
            for (const user of current.keys()) if (!wanted.has(user)) plan.removed.push(user);
          }
          for (const list of Object.values(plan)) list.sort();
          const print = () => {
            if (o.json) {
              console.log(JSON.stringify({ ...plan, dry_run: Boolean(o.dryRun) }));
              return;
            }
            for (const u of plan.added) console.log(`+ ${u}`);
            for (const u of plan.changed) console.log(`~ ${u}`);
            for (const u of plan.removed) console.log(`- ${u}`);
            console.log(
              `${o.dryRun ? "would seed" : "seeded"}: ${plan.added.length} added, ` +
                `${plan.changed.length} changed, ${plan.removed.length} removed, ` +
                `${plan.unchanged.length} unchanged`,
            );
          };
          if (o.dryRun || !kv) {
            print();
            return;
          }
          let done = 0;
          const total = plan.added.length + plan.changed.length + plan.removed.length;
          for (const user of [...plan.added, ...plan.changed, ...plan.removed]) {
            const base = plan.added.includes(user)
              ? (await _read(kv, user)).revision
              : current.get(user)!.revision;
            try {
              if (plan.removed.includes(user)) {
                await kv.delete(userKey(user), { previousSeq: base });
              } else {
                await _writeCas(kv, user, _serialize(wanted.get(user)), base);
              }
            } catch (err) {
              if (!_isCasConflict(err)) throw err;
              throw new CliError(
                `capabilities of ${user} changed concurrently; stopped after ${done} of ` +
                  `${total} changes (run seed again)`,
              );
            }
            done++;
          }
          print();
        });
      }),
  );

  caps.addCommand(
    _capsCommand("check")
      .description(
        `explain whether USER may do OP on TARGET, with the deciding rule ` +
          `(exit 0 allow, ${CHECK_DENIED_EXIT} deny)`,
      )
      .argument("<user>", "user id")
      .argument("<op>", `one of ${CHECK_OPS.join(", ")}`)
      .argument("<target>", "subject (sub, pub, cmd), bucket (kv_sub) or stream (js_sub)")
      .option("--pattern <key>", "kv_sub key pattern (default >)")
      .option("--filter <subject>", "js_sub filter subject (default >)")
      .option("--json", "print the verdict as JSON")
      .action(async (user, op, target, o) => {
        if (!(CHECK_OPS as readonly string[]).includes(op)) {
          throw new CliError(`unknown op ${JSON.stringify(op)}: use ${CHECK_OPS.join(", ")}`, 2);
        }
        if (o.pattern !== undefined && op !== "kv_sub") {
          throw new CliError("--pattern only applies to kv_sub", 2);
        }
        if (o.filter !== undefined && op !== "js_sub") {
          throw new CliError("--filter only applies to js_sub", 2);
        }
        const invalid = _validateTarget(op, target, o.pattern, o.filter);
        if (invalid) throw new CliError(invalid, 2);
        const decision = await withNats(o, async (nc): Promise<Decision> => {
          const kv = await _openKv(nc, o.authBucket, false);
          const cur = kv ? await _read(kv, user) : { revision: 0, text: null };
          if (cur.text === null) {
            return { allowed: false, reason: `no capabilities for ${user} (fail closed)` };
          }
          const { doc, errors } = _parseStored(cur.text);
          if (!doc) {
            return {
              allowed: false,
              reason: `stored document is invalid, so it grants nothing: ${errors.join("; ")}`,
            };
          }
          // The same engine and options as the gateway: the auth bucket is reserved.
          const set = compileCapabilities(doc, { reservedBuckets: [o.authBucket] });
          switch (op) {
            case "sub":
              return checkSubscribe(set, target);
            case "pub":
              return checkPublish(set, target);
            case "cmd":
              return checkCommand(set, target);
            case "kv_sub":
              return checkKv(set, target, o.pattern ?? ">");
            default:
              return checkStream(set, target, o.filter ?? ">");
          }
        });
        const what = `${op} ${target}${
          op === "kv_sub" ? ` ${o.pattern ?? ">"}` : op === "js_sub" ? ` ${o.filter ?? ">"}` : ""
        }`;
        if (o.json) {
          console.log(JSON.stringify({
            user,
            op,
            target,
            ...(op === "kv_sub" ? { pattern: o.pattern ?? ">" } : {}),
            ...(op === "js_sub" ? { filter: o.filter ?? ">" } : {}),
            allowed: decision.allowed,
            ...(decision.allowed ? { rule: decision.rule } : { reason: decision.reason }),
          }));
        } else if (decision.allowed) {
          console.log(`allow: ${user} may ${what}: granted by ${decision.rule}`);
        } else {
          console.log(`deny: ${user} may not ${what}: ${decision.reason}`);
        }
        if (!decision.allowed) {
          throw new CliError(`denied: ${user} may not ${what}`, CHECK_DENIED_EXIT);
        }
      }),
  );

  return caps;
}

function _validateTarget(
  op: string,
  target: string,
  pattern?: string,
  filter?: string,
): string | null {
  switch (op) {
    case "sub": {
      const err = validateSubject(target);
      return err ? `invalid subject ${JSON.stringify(target)}: ${err}` : null;
    }
    case "pub":
    case "cmd": {
      const err = validateSubject(target, { wildcards: false });
      return err ? `invalid subject ${JSON.stringify(target)}: ${err}` : null;
    }
    case "kv_sub": {
      const err = validateBucketName(target);
      if (err) return `invalid bucket ${JSON.stringify(target)}: ${err}`;
      const kErr = pattern === undefined ? null : validateKvKey(pattern);
      return kErr ? `invalid key pattern ${JSON.stringify(pattern)}: ${kErr}` : null;
    }
    default: {
      const err = validateStreamName(target);
      if (err) return `invalid stream ${JSON.stringify(target)}: ${err}`;
      const fErr = filter === undefined ? null : validateSubject(filter);
      return fErr ? `invalid filter ${JSON.stringify(filter)}: ${fErr}` : null;
    }
  }
}
