/** The README's tour, run as written: a real `natsgate serve --dev` subprocess, and the tour's
 * TypeScript blocks pasted into a real `deno repl` started with the README's own command line.
 * Every `// → …` comment in those blocks is output the tour promises; the test waits for each.
 * Also: dev mode creates bucket `demo` and stream `DEMO` with their samples once, and leaves
 * them as the developer changed them on the next start.
 * @module */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NatsgateProcess } from "./_harness.ts";
import { DEMO_BUCKET, DEMO_ENTRIES, DEMO_MESSAGES, DEMO_STREAM } from "../cli/_dev_seed.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The address the README's snippets use (`deno task start`'s default listen address). */
const README_WS = "ws://127.0.0.1:8080/ws";

/** The tour: its REPL command line and its TypeScript blocks. */
interface Tour {
  command: string[];
  blocks: string[];
}

/** Reads the tour out of README.md (section "A short tour"). */
async function readTour(): Promise<Tour> {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const start = readme.indexOf("\n## A short tour\n");
  assert.ok(start >= 0, "README has a section 'A short tour'");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const fences = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)];
  const repl = fences.find((m) => m[1] === "sh" && m[2].trim().startsWith("deno repl"));
  assert.ok(repl, "the tour says how to start the REPL");
  const blocks = fences.filter((m) => m[1] === "ts").map((m) => m[2]);
  assert.ok(blocks.length >= 2, "the tour has the protocol block and the SDK block");
  return { command: repl[2].trim().split(/\s+/), blocks };
}

/** A block's `// → text` comments: the output it promises, up to "..." (an elision). */
function promisedBy(block: string): string[] {
  return [...block.matchAll(/\/\/ → (.*)$/gm)].map((m) => m[1].split("...")[0].trim());
}

/** Pastes `text` into the REPL command, waits until every promised output appeared, then quits. */
async function runRepl(
  command: string[],
  text: string,
  promised: string[],
): Promise<{ output: string; code: number }> {
  assert.equal(command[0], "deno");
  const child = new Deno.Command(Deno.execPath(), {
    args: command.slice(1),
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) output += chunk;
  };
  const reading = Promise.all([read(child.stdout), read(child.stderr)]);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text + "\n"));
  const plain = () => output.replace(new RegExp(String.raw`\u001b\[[0-9;]*m`, "g"), "");
  const end = Date.now() + 60_000;
  try {
    while (promised.some((p) => !plain().includes(p)) && !/Uncaught|parse error/.test(plain())) {
      if (Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await writer.write(new TextEncoder().encode("close()\n"));
    await writer.close();
  } catch {
    // the REPL ended by itself; its output says why
  }
  const status = await child.status;
  await reading;
  return { output: plain(), code: status.code };
}

/** Starts `natsgate serve --dev` on a free port in `dataDir`; returns it with its banner's facts. */
async function startDev(dataDir: string, ...extra: string[]) {
  const p = new NatsgateProcess(
    ["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dataDir, ...extra],
    {},
    { limitMs: 180_000 },
  );
  const token = (await p.waitFor(/token \(user demo, 24h\): (\S+)/, 60_000))[1];
  const ws = (await p.waitFor(/WebSocket: (\S+)/))[1];
  const nats = (await p.waitFor(/embedded nats-server started url=(\S+)/))[1];
  return { p, token, ws, nats };
}

Deno.test("dev tour: the README's REPL blocks run as written against serve --dev", async () => {
  const tour = await readTour();
  const dir = await Deno.makeTempDir({ prefix: "natsgate_tour_" });
  const dev = await startDev(`${dir}/state`);
  try {
    // The banner names the console, and the console is there.
    const consoleUrl = (await dev.p.waitFor(/console: +(\S+)/))[1];
    assert.equal(consoleUrl, new URL("/", dev.ws.replace(/^ws/, "http")).href);
    const page = await fetch(consoleUrl);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>natsgate console<\/title>/);

    for (const [i, block] of tour.blocks.entries()) {
      assert.ok(block.includes(README_WS), `block ${i + 1} uses ${README_WS}`);
      assert.ok(block.includes("<token>"), `block ${i + 1} has the <token> placeholder`);
      const promised = promisedBy(block);
      assert.ok(promised.length >= 3, `block ${i + 1} promises some output`);
      const pasted = block.replaceAll(README_WS, dev.ws).replaceAll("<token>", dev.token);
      const { output, code } = await runRepl(tour.command, pasted, promised);
      assert.equal(code, 0, output);
      const failure = /^(Uncaught|parse error).*$/m.exec(output);
      assert.equal(failure, null, `block ${i + 1} runs without errors:\n${output}`);
      for (const p of promised) {
        assert.ok(output.includes(p), `block ${i + 1} printed ${p}\n--- output:\n${output}`);
      }
    }
  } finally {
    assert.equal((await dev.p.stop()).code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dev tour: bucket demo and stream DEMO are seeded once; later starts keep changes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "natsgate_seed_" });
  try {
    const first = await startDev(`${dir}/state`);
    try {
      const nc = await connect({ servers: first.nats });
      try {
        const kv = await new Kvm(nc).open(DEMO_BUCKET);
        for (const [key, value] of DEMO_ENTRIES) {
          assert.deepEqual((await kv.get(key))?.json(), value, `sample key ${key}`);
        }
        const jsm = await jetstreamManager(nc);
        const info = await jsm.streams.info(DEMO_STREAM);
        assert.equal(info.state.messages, DEMO_MESSAGES.length);
        const m = await jsm.streams.getMessage(DEMO_STREAM, { seq: 1 });
        assert.equal(m?.subject, DEMO_MESSAGES[0].subject);
        assert.deepEqual(m?.json(), DEMO_MESSAGES[0].payload);
        // The developer changes things: one key gone, one more message.
        await kv.delete(DEMO_ENTRIES[0][0]);
        await jsm.streams.purge(DEMO_STREAM, { filter: DEMO_MESSAGES[0].subject });
      } finally {
        await nc.close();
      }
    } finally {
      assert.equal((await first.p.stop()).code, 0);
    }
    // Second start, same data dir, no console: the changes stay, nothing is seeded twice.
    const second = await startDev(`${dir}/state`, "--no-console");
    try {
      assert.doesNotMatch(second.p.stdout, /console:/, "--no-console: no console line");
      const nc = await connect({ servers: second.nats });
      try {
        const kv = await new Kvm(nc).open(DEMO_BUCKET);
        assert.equal(await kv.get(DEMO_ENTRIES[0][0]).then((e) => e?.operation), "DEL");
        assert.deepEqual((await kv.get(DEMO_ENTRIES[1][0]))?.json(), DEMO_ENTRIES[1][1]);
        const info = await (await jetstreamManager(nc)).streams.info(DEMO_STREAM);
        const purged = DEMO_MESSAGES.filter((m) => m.subject === DEMO_MESSAGES[0].subject).length;
        assert.equal(info.state.messages, DEMO_MESSAGES.length - purged);
      } finally {
        await nc.close();
      }
    } finally {
      assert.equal((await second.p.stop()).code, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
