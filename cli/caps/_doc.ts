/** Capability documents as the `caps` subcommands read, validate, compare and print them.
 * @module */

import {
  type Capabilities,
  parseCapabilities,
  parseCapabilitiesJson,
  type ParseOptions,
  summarizeCapabilities,
} from "../../src/auth/capabilities.ts";
import { CliError, UsageError } from "../_common.ts";
import { message } from "./_kv.ts";

/** The stored form of a validated document. */
export function serialize(doc: unknown): string {
  return JSON.stringify(doc);
}

/** JSON with sorted keys, to compare documents. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.keys(v as Record<string, unknown>).sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(v);
}

/** JSON text re-indented by two spaces (unchanged when it is not JSON). */
export function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** JSON text on one line (unchanged when it is not JSON). */
export function compact(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

/** Parsed JSON, or undefined when `text` is not JSON. */
export function tryParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Validates JSON text; returns the parsed document (as written) or throws naming every error. */
export function validateText(
  text: string,
  what = "capabilities",
  opts: ParseOptions = {},
): Capabilities {
  // Before a write, a placeholder that can never expand is an error, not a silent no-grant.
  const r = parseCapabilitiesJson(text, { strictTemplates: true, ...opts });
  if (!r.ok) throw new CliError(`invalid ${what}: ${r.errors.join("; ")}`);
  return JSON.parse(text) as Capabilities;
}

/** Validates a value; returns it or throws naming every error. */
export function validateValue(
  value: unknown,
  what = "capabilities",
  opts: ParseOptions = {},
): Capabilities {
  const r = parseCapabilities(value, { strictTemplates: true, ...opts });
  if (!r.ok) throw new CliError(`invalid ${what}: ${r.errors.join("; ")}`);
  return value as Capabilities;
}

/** Parses a stored document; returns null (and the errors) when it is malformed. */
export function parseStored(
  text: string,
  opts: ParseOptions = {},
): { doc: Capabilities | null; errors: string[] } {
  const r = parseCapabilitiesJson(text, opts);
  if (!r.ok) return { doc: null, errors: r.errors };
  return { doc: r.value, errors: [] };
}

/** A one-line summary of a stored document ("(none)" when there is none). */
export function summary(text: string | null): string {
  if (text === null) return "(none)";
  const { doc, errors } = parseStored(text);
  if (!doc) return `INVALID (grants nothing): ${errors.join("; ")}`;
  return summarizeCapabilities(doc);
}

/** Reads a document from exactly one of `--json`, `--file` or `-` (stdin). */
export async function readSource(
  ctx: { readText(): Promise<string> },
  o: { json?: string; file?: string },
  source?: string,
): Promise<string> {
  const given = [o.json !== undefined, o.file !== undefined, source !== undefined]
    .filter(Boolean).length;
  if (given !== 1) {
    throw new UsageError("pass exactly one of --json <document>, --file <path> or - (stdin)");
  }
  if (o.json !== undefined) return o.json;
  if (source !== undefined && source !== "-") {
    throw new UsageError(`unexpected argument ${JSON.stringify(source)}: use - to read stdin`);
  }
  const path = o.file ?? "-";
  try {
    if (path === "-") return await ctx.readText();
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new CliError(`cannot read ${path === "-" ? "stdin" : path}: ${message(err)}`);
  }
}
