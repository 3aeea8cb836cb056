/** Benchmarks of the token-level subject rules: `subsetTokens` (one per granted pattern on each
 * `sub`) and `matchTokens` (one per pattern on each `pub`/`cmd`), on pre-tokenised patterns as the
 * capability checks use them: `deno bench src/protocol/`.
 * @module */

import { matchTokens, subsetTokens, tokenizePattern } from "./subject.ts";

const REQ = tokenizePattern("chat.room.42.messages");
const REQ_WILD = tokenizePattern("chat.room.*.>");

const CASES: Array<[string, readonly string[], readonly string[]]> = [
  ["literal under >", REQ, tokenizePattern("chat.>")],
  ["literal under *", REQ, tokenizePattern("chat.room.*.messages")],
  ["literal, equal", REQ, REQ],
  ["literal, differs at the end", REQ, tokenizePattern("chat.room.42.events")],
  ["wildcard under >", REQ_WILD, tokenizePattern("chat.>")],
  ["wildcard not under *", REQ_WILD, tokenizePattern("chat.room.*.messages")],
  ["$ first token vs leading *", tokenizePattern("$SYS.x"), tokenizePattern("*.x")],
];

for (const [name, requested, granted] of CASES) {
  Deno.bench(`subsetTokens: ${name}`, { group: "subset" }, () => {
    subsetTokens(requested, granted);
  });
}

const PUB_GRANT = tokenizePattern("chat.*.42.>");

Deno.bench("matchTokens: literal under chat.*.42.>", { group: "match" }, () => {
  matchTokens(PUB_GRANT, REQ);
});

Deno.bench("tokenizePattern: 4 tokens", { group: "match" }, () => {
  tokenizePattern("chat.room.42.messages");
});
