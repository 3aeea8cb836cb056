/** Own transport vs `Deno.serve`: RSS per idle upgraded WebSocket (connections opened by a
 * separate dialer process) and the time to push 100k small frames to one client.
 * `deno run -A bench/own_ws_compare.ts [connections]` (default 2000).
 * @module */

import { lines, rssKb } from "./_proc.ts";

const count = Number(Deno.args[0] ?? 2000);
const script = new URL("./_own_ws.ts", import.meta.url).pathname;

async function _start(kind: string): Promise<{ child: Deno.ChildProcess; port: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, kind],
    stdout: "piped",
  }).spawn();
  const it = lines(child.stdout);
  const port = Number((await it.next()).value);
  return { child, port };
}

const dialerCode = (port: number, n: number) => `
const req = new TextEncoder().encode("GET /ws HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\n" +
  "Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n");
const a = [];
for (let i = 0; i < ${n}; i++) {
  const c = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });
  await c.write(req);
  const buf = new Uint8Array(512);
  let got = "";
  while (!got.includes("cap_update")) got += new TextDecoder().decode(buf.subarray(0, (await c.read(buf)) ?? 0));
  a.push(c);
}
console.log("connected");
await new Promise((r) => setTimeout(r, 60000));`;

async function _rssPerConn(kind: string): Promise<number> {
  const { child, port } = await _start(kind);
  // warm up: one connection and one blast so lazily loaded code is resident before measuring
  await _blast(port, 1000);
  await new Promise((r) => setTimeout(r, 500));
  const before = await rssKb(child.pid);
  const dialer = new Deno.Command(Deno.execPath(), {
    args: ["eval", dialerCode(port, count)],
    stdout: "piped",
  }).spawn();
  await lines(dialer.stdout).next();
  await new Promise((r) => setTimeout(r, 1500));
  const after = await rssKb(child.pid);
  dialer.kill();
  await dialer.status;
  child.kill();
  await child.status;
  return (after - before) / count;
}

async function _blast(port: number, n: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  let got = -1; // the hello
  let t0 = 0;
  const done = new Promise<number>((resolve) => {
    ws.onmessage = () => {
      if (++got === n) resolve(performance.now() - t0);
    };
  });
  await new Promise((r) => ws.onopen = r);
  t0 = performance.now();
  ws.send(JSON.stringify({ op: "blast", n }));
  const ms = await done;
  ws.close();
  return ms;
}

async function _throughput(kind: string): Promise<number[]> {
  const { child, port } = await _start(kind);
  const runs = [];
  for (let i = 0; i < 4; i++) runs.push(await _blast(port, 100_000));
  child.kill();
  await child.status;
  return runs;
}

for (const kind of Deno.args[1] ? [Deno.args[1]] : ["deno", "own"]) {
  const kb = await _rssPerConn(kind);
  const runs = await _throughput(kind);
  console.log(
    `${kind.padEnd(4)}: ${kb.toFixed(1)} KB RSS per idle upgraded connection (${count}); ` +
      `100k frames to one client: ${runs.map((m) => m.toFixed(0)).join(", ")} ms`,
  );
}
