/** A small structured logger: one line per event, text or JSON, filtered by level.
 * Callers pass fields, never tokens; the logger does not try to redact.
 * @module */

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** Output format: `text` for humans, `json` for log shippers. */
export type LogFormat = "text" | "json";

const _RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger; `fields` are added to the line as key/value pairs. */
export interface Logger {
  /** Logs at debug level. */
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at info level. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at error level. */
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Whether a level is enabled (to skip building expensive fields). */
  enabled(level: LogLevel): boolean;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level written (default `info`). */
  level?: LogLevel;
  /** `text` (default) or `json`. */
  format?: LogFormat;
  /** Where lines go (default: stderr). */
  write?: (line: string) => void;
}

/** Returns true when `s` is a log level name. */
export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(_RANK, s);
}

// Control characters JSON.stringify leaves raw (DEL, C1 such as CSI U+009B) and the Unicode line
// separators: escaped, so client text (close reasons, user ids) can neither forge log lines nor
// drive a terminal. C0 controls are escaped by JSON.stringify itself.
const _RAW_CONTROL = /[\u007f-\u009f\u2028\u2029]/g;
// deno-lint-ignore no-control-regex
const _BARE = /^[^\s"=\u0000-\u001f\u007f-\u009f]+$/;

function _escape(json: string): string {
  return json.replace(_RAW_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function _fmtValue(v: unknown): string {
  if (typeof v === "string") return _BARE.test(v) ? v : _escape(JSON.stringify(v));
  if (v instanceof Error) return _escape(JSON.stringify(v.message));
  const json = JSON.stringify(v);
  return json === undefined ? _fmtValue(String(v)) : _escape(json);
}

// deno-lint-ignore no-control-regex
const _CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Escapes every control character but tab (a stack line may quote client text). */
function _escapeAll(line: string): string {
  return line.replace(_CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** An error's stack lines, then each cause's (`caused by: …`), a few levels deep. */
function _stackLines(err: Error): string[] {
  const out: string[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== undefined; depth++) {
    const text = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
    const lines = text.split("\n");
    if (depth > 0) lines[0] = `caused by: ${lines[0]}`;
    out.push(...lines);
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

/**
 * Creates a logger. Field values that are `Error`s print as their message; at level `error`
 * (internal failures) their stack and causes follow: indented lines after the record in `text`,
 * an `<field>_stack` string in `json`.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "debug", format: "json" });
 * log.error("op failed", { session: "s1", error: err });
 * ```
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = _RANK[opts.level ?? "info"];
  const json = opts.format === "json";
  const encoder = new TextEncoder();
  const write = opts.write ?? ((line: string) => {
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // stderr closed: nothing sensible left to do with a log line.
    }
  });
  const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (_RANK[level] < min) return;
    const time = new Date().toISOString();
    if (json) {
      const rec: Record<string, unknown> = { time, level, msg };
      if (fields) {
        for (const [k, v] of Object.entries(fields)) {
          rec[k] = v instanceof Error ? v.message : v;
          if (v instanceof Error && level === "error") {
            rec[`${k}_stack`] = _stackLines(v).join("\n");
          }
        }
      }
      write(_escape(JSON.stringify(rec)));
    } else {
      let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
      if (fields) { for (const [k, v] of Object.entries(fields)) line += ` ${k}=${_fmtValue(v)}`; }
      write(line);
      // Errors logged at error level are internal failures: their stack (and causes) follow,
      // one indented line per write, control characters escaped like every other value.
      if (level === "error" && fields) {
        for (const v of Object.values(fields)) {
          if (v instanceof Error) { for (const l of _stackLines(v)) write(`    ${_escapeAll(l)}`); }
        }
      }
    }
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    enabled: (level) => _RANK[level] >= min,
  };
}

/** A logger that writes nothing. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  enabled: () => false,
};
