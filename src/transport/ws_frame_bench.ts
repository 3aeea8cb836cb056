/** Frame encoding cost: `encodeText` (one allocation, encodeInto after the header room) against
 * the naive encode-then-copy. `deno bench src/transport/ws_frame_bench.ts`
 * @module */

import { encodeFrame, encodeText, Opcode } from "./ws_frame.ts";

const small = '{"v":1,"op":"msg","sid":"1","subject":"bench.x","data":"0123456789abcdef"}';
const medium = JSON.stringify({ v: 1, op: "msg", data: "x".repeat(4000) });
const unicode = JSON.stringify({ v: 1, op: "msg", data: "é€😀".repeat(300) });
const enc = new TextEncoder();

for (const [name, text] of [["small", small], ["4 KB", medium], ["unicode", unicode]]) {
  Deno.bench(`encodeText ${name}`, { group: name, baseline: true }, () => {
    encodeText(text);
  });
  Deno.bench(`encode + copy ${name}`, { group: name }, () => {
    encodeFrame(Opcode.TEXT, enc.encode(text));
  });
}
