/** What changed between two capability documents, pattern by pattern: the audit view of
 * `caps history` and `caps seed --dry-run`. Generic over the document's shape (lists of patterns,
 * maps of name → patterns, anything else compared whole), so new fields show up without changes here.
 * @module */

import { canonical } from "./_doc.ts";

/** One changed pattern (or field). */
export interface Change {
  /** `+` added, `-` removed, `~` replaced (a field that is not a pattern list). */
  op: "+" | "-" | "~";
  /** The field: `subjects`, `buckets`, ... */
  field: string;
  /** For map fields (`buckets`, `streams`): the bucket or stream name. */
  name?: string;
  /** The pattern (for `~`: the new value as JSON, or undefined when the field went away). */
  value?: string;
  /** For `~`: the old value as JSON. */
  old?: string;
}

/**
 * The changes that turn `before` into `after` (either may be null: no document). Lists compare as
 * sets; order within a field is kept as in the documents; fields come in alphabetical order.
 *
 * @example
 * ```ts
 * diffCapabilities({ subjects: ["a"] }, { subjects: ["a", "b"] });
 * // [{ op: "+", field: "subjects", value: "b" }]
 * ```
 */
export function diffCapabilities(before: unknown, after: unknown): Change[] {
  const a = _record(before);
  const b = _record(after);
  const out: Change[] = [];
  for (const field of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[field];
    const y = b[field];
    if (canonical(x) === canonical(y)) continue;
    if (_isList(x ?? []) && _isList(y ?? [])) {
      out.push(..._listDiff(field, undefined, (x ?? []) as string[], (y ?? []) as string[]));
    } else if (_isListMap(x ?? {}) && _isListMap(y ?? {})) {
      const mx = (x ?? {}) as Record<string, string[]>;
      const my = (y ?? {}) as Record<string, string[]>;
      for (const name of [...new Set([...Object.keys(mx), ...Object.keys(my)])].sort()) {
        out.push(..._listDiff(field, name, mx[name] ?? [], my[name] ?? []));
      }
    } else {
      out.push({
        op: "~",
        field,
        ...(x === undefined ? {} : { old: JSON.stringify(x) }),
        ...(y === undefined ? {} : { value: JSON.stringify(y) }),
      });
    }
  }
  return out;
}

/**
 * One line per change: `+ subjects chat.>`, `- buckets todos=user.>`, `~ role: "a" → "b"`.
 *
 * @example
 * ```ts
 * formatChange({ op: "-", field: "buckets", name: "todos", value: "user.>" }); // "- buckets todos=user.>"
 * ```
 */
export function formatChange(c: Change): string {
  if (c.op === "~") return `~ ${c.field}: ${c.old ?? "(none)"} → ${c.value ?? "(none)"}`;
  return `${c.op} ${c.field} ${c.name === undefined ? "" : `${c.name}=`}${c.value}`;
}

/**
 * Changes grouped as JSON: `{added: {subjects: [...], buckets: {todos: [...]}}, removed: {...}}`,
 * plus `replaced` for non-pattern fields (omitted when empty).
 *
 * @example
 * ```ts
 * changesJson([{ op: "+", field: "subjects", value: "a" }]); // { added: { subjects: ["a"] }, removed: {} }
 * ```
 */
export function changesJson(changes: readonly Change[]): {
  added: Record<string, unknown>;
  removed: Record<string, unknown>;
  replaced?: Record<string, { old: unknown; new: unknown }>;
} {
  const added: Record<string, unknown> = {};
  const removed: Record<string, unknown> = {};
  const replaced: Record<string, { old: unknown; new: unknown }> = {};
  for (const c of changes) {
    if (c.op === "~") {
      replaced[c.field] = {
        old: c.old === undefined ? null : JSON.parse(c.old),
        new: c.value === undefined ? null : JSON.parse(c.value),
      };
      continue;
    }
    const into = c.op === "+" ? added : removed;
    if (c.name === undefined) ((into[c.field] ??= []) as string[]).push(c.value!);
    else {
      const map = (into[c.field] ??= {}) as Record<string, string[]>;
      (map[c.name] ??= []).push(c.value!);
    }
  }
  return { added, removed, ...(Object.keys(replaced).length ? { replaced } : {}) };
}

function _listDiff(field: string, name: string | undefined, x: string[], y: string[]): Change[] {
  const inX = new Set(x);
  const inY = new Set(y);
  const base = name === undefined ? { field } : { field, name };
  return [
    ...x.filter((p) => !inY.has(p)).map((value) => ({ op: "-" as const, ...base, value })),
    ...y.filter((p) => !inX.has(p)).map((value) => ({ op: "+" as const, ...base, value })),
  ];
}

function _record(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : {};
}

function _isList(v: unknown): boolean {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

function _isListMap(v: unknown): boolean {
  return !!v && typeof v === "object" && !Array.isArray(v) &&
    Object.values(v as Record<string, unknown>).every(_isList);
}
