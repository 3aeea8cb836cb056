/** The floor under any WebSocket server on Deno: RSS per accepted TCP connection holding one
 * pending 1 KiB read. `deno run -A bench/tcp_floor.ts [connections]` (default 5000).
 * @module */

import { rssKb } from "./_proc.ts";

const count = Number(Deno.args[0] ?? 5000);

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
const conns: Deno.Conn[] = [];
(async () => {
  for await (const c of listener) {
    conns.push(c);
    c.read(new Uint8Array(1024)).catch(() => {}); // what every server keeps per connection
  }
})();
await new Promise((r) => setTimeout(r, 200));
const before = await rssKb(Deno.pid);
// The connecting side runs in its own process, so only the accepting side is measured.
const dialer = new Deno.Command(Deno.execPath(), {
  args: [
    "eval",
    `const a = []; for (let i = 0; i < ${count}; i++) a.push(await Deno.connect({ hostname: "127.0.0.1", port: ${port} }));
     console.log("connected"); await new Promise((r) => setTimeout(r, 5000));`,
  ],
  stdout: "piped",
}).spawn();
await dialer.stdout.getReader().read();
await new Promise((r) => setTimeout(r, 1500));
const after = await rssKb(Deno.pid);
console.log(
  `${conns.length} TCP connections, one pending 1 KiB read each: ` +
    `${((after - before) / count).toFixed(1)} KB RSS per connection`,
);
dialer.kill();
Deno.exit(0);
