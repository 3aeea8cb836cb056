/** Benchmarks of the capability checks a session runs on every `sub` and `pub`: `checkSubscribe`
 * (validate, tokenise, then a subset check per granted pattern) and `checkPublish`, against
 * documents of 1, 10 and 100 patterns, allowed by the last pattern or denied after all of them:
 * `deno bench src/auth/`.
 * @module */

import { checkPublish, checkSubscribe, compileCapabilities } from "./capabilities.ts";
import { prng, testSeed } from "../../tests/_prng.ts";

const _rand = prng(testSeed());
const _word = () => `w${Math.floor(_rand() * 1e6).toString(36)}`;

/** `n - 1` unrelated patterns of 2–4 tokens (some wildcards), then `last`. */
function _grants(n: number, last: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < n - 1; i++) {
    const len = 2 + Math.floor(_rand() * 3);
    const tokens = Array.from({ length: len }, (_, j) => (j > 0 && _rand() < 0.3 ? "*" : _word()));
    if (_rand() < 0.3) tokens[len - 1] = ">";
    out.push(tokens.join("."));
  }
  return [...out, last];
}

const _n = (n: number) => `${n} pattern${n === 1 ? "" : "s"}`;

for (const n of [1, 10, 100]) {
  const set = compileCapabilities({
    subjects: _grants(n, "chat.room.*.>"),
    publish: _grants(n, "chat.room.*.messages"),
  });
  Deno.bench(`checkSubscribe: ${_n(n)}, allowed`, { group: "sub" }, () => {
    checkSubscribe(set, "chat.room.42.>");
  });
  Deno.bench(`checkSubscribe: ${_n(n)}, denied`, { group: "sub" }, () => {
    checkSubscribe(set, "orders.>");
  });
  Deno.bench(`checkPublish: ${_n(n)}, allowed`, { group: "pub" }, () => {
    checkPublish(set, "chat.room.42.messages");
  });
}
