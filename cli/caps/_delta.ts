/** What `caps grant` adds and `caps revoke` removes: a set of patterns per field, and the pure
 * function that applies it to a document.
 * @module */

import type { Capabilities } from "../../src/auth/capabilities.ts";
import { UsageError } from "../_common.ts";

/** What grant or revoke adds or removes. */
export interface Delta {
  /** `sub` patterns. */
  subjects: string[];
  /** `pub` patterns. */
  publish: string[];
  /** `cmd` patterns. */
  commands: string[];
  /** KV key patterns per bucket. */
  buckets: Record<string, string[]>;
  /** Filter subjects per stream. */
  streams: Record<string, string[]>;
}

/** A commander arg parser for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Parses `NAME=PATTERN` values (`NAME` alone means `>`). */
export function pairs(values: string[], flag: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const i = v.indexOf("=");
    const name = i < 0 ? v : v.slice(0, i);
    const pattern = i < 0 ? ">" : v.slice(i + 1);
    if (!name) throw new UsageError(`invalid ${flag} ${JSON.stringify(v)}: expected NAME=PATTERN`);
    (out[name] ??= []).push(pattern);
  }
  return out;
}

/** A delta as a capabilities document (empty fields left out). */
export function deltaDoc(d: Delta): Capabilities {
  const doc: Record<string, unknown> = {};
  if (d.subjects.length) doc.subjects = d.subjects;
  if (d.publish.length) doc.publish = d.publish;
  if (d.commands.length) doc.commands = d.commands;
  if (Object.keys(d.buckets).length) doc.buckets = d.buckets;
  if (Object.keys(d.streams).length) doc.streams = d.streams;
  return doc as Capabilities;
}

/** One line per pattern: `subjects a.>`, `buckets todos=user.>`. */
export function deltaLines(d: Delta): string[] {
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

/** A delta with nothing in it. */
export function emptyDelta(): Delta {
  return { subjects: [], publish: [], commands: [], buckets: {}, streams: {} };
}

/** Applies a grant or revoke to a document; returns the new document and what really changed. */
export function applyDelta(
  doc: Capabilities,
  d: Delta,
  mode: "grant" | "revoke",
): { doc: Capabilities; changed: Delta } {
  const out = structuredClone(doc) as Record<string, unknown>;
  const changed = emptyDelta();
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
