/** Benchmarks of `renderPayload`, run once per delivered message: `deno bench src/protocol/`.
 * Small and 4 KiB ASCII JSON (the common case, the ASCII fast path), 16 KiB JSON (past it, through
 * TextDecoder), non-ASCII JSON, JSON with raw newlines, plain text and binary.
 * @module */

import { renderPayload } from "./payload.ts";
import { prng, testSeed } from "../../tests/_prng.ts";

const _enc = new TextEncoder();
const _rand = prng(testSeed());
const _json = (bytes: number) =>
  JSON.stringify({ id: 42, text: "x".repeat(Math.max(0, bytes - 22)), ok: true });

const CASES: Array<[string, Uint8Array]> = [
  ["json 100 B", _enc.encode(_json(100))],
  ["json 4 KiB", _enc.encode(_json(4000))],
  ["json 16 KiB", _enc.encode(_json(16000))],
  ["json 100 B non-ASCII", _enc.encode(JSON.stringify({ text: "é€😀".repeat(9) }))],
  ["json 100 B with newlines", _enc.encode(`{\n  "id": 42,\r\n  "text": "${"x".repeat(70)}"\n}`)],
  ["text 100 B", _enc.encode("plain text, not JSON ".repeat(5))],
  ["binary 100 B", Uint8Array.from({ length: 100 }, () => Math.floor(_rand() * 256) | 0x80)],
];

for (const [name, bytes] of CASES) {
  Deno.bench(
    `renderPayload: ${name}`,
    { group: "payload", baseline: name === "json 100 B" },
    () => {
      renderPayload(bytes);
    },
  );
}
