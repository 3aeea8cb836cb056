/** CLI conventions in process (tests/_cli.ts): which NATS an admin command uses and says it used,
 * `version`, and shell completions generated from the command tree (bash run for real).
 * @module */

import assert from "node:assert/strict";
import { NatsServer } from "../src/nats/launcher.ts";
import denoJson from "../deno.json" with { type: "json" };
import { fails, ok, runCli } from "./_cli.ts";

Deno.test("which NATS: --nats > NATSGATE_NATS > NATS_URL > dev record > default, named on stderr", async () => {
  const nats = await NatsServer.start();
  const cwd = await Deno.makeTempDir({ prefix: "natsgate-discovery-" });
  const dead = "nats://127.0.0.1:1";
  const list = ["sessions", "list", "--json", "--timeout", "200ms"];
  try {
    // No record yet: --dev refuses; the default is named in the error.
    fails(await runCli([...list, "--dev"], { cwd }), 1, /--dev: no dev gateway recorded/);
    const none = await runCli(list, { cwd, env: { NATS_URL: dead } });
    fails(
      { ...none, stderr: none.stderr.split("\n").slice(1).join("\n") },
      1,
      /^natsgate: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1 \(from NATS_URL\): /,
    );
    assert.match(none.stderr, /^using NATS nats:\/\/127\.0\.0\.1:1 \(from NATS_URL\)\n/);

    // The record serve --dev writes: found from the same directory, and said so.
    await Deno.mkdir(`${cwd}/.natsgate`);
    await Deno.writeTextFile(
      `${cwd}/.natsgate/nats.json`,
      JSON.stringify({ servers: [nats.url], pid: 1, started: new Date().toISOString() }),
    );
    const dev = ok(await runCli(list, { cwd }));
    assert.equal(dev.stdout, "[]\n");
    assert.match(
      dev.stderr,
      /^using NATS nats:\/\/127\.0\.0\.1:\d+ \(from the dev gateway's .*\.natsgate\/nats\.json\)\n/,
    );
    // NATS_URL beats the record; --dev beats NATS_URL; NATSGATE_NATS beats NATS_URL silently.
    fails(
      await runCli(list, { cwd, env: { NATS_URL: dead } }).then((r) => ({
        ...r,
        stderr: r.stderr.split("\n").slice(1).join("\n"),
      })),
      1,
      /\(from NATS_URL\)/,
    );
    ok(await runCli([...list, "--dev"], { cwd, env: { NATS_URL: dead } }));
    const explicit = ok(
      await runCli(list, { cwd, env: { NATS_URL: dead, NATSGATE_NATS: nats.url } }),
    );
    assert.equal(explicit.stderr, "", "an explicit NATSGATE_NATS needs no note");
    fails(await runCli([...list, "--dev", "--nats", nats.url], { cwd }), 2, /--dev and --nats/);
    // NATSGATE_DATA_DIR moves the record; a dead record's error asks whether serve still runs.
    await Deno.writeTextFile(
      `${cwd}/.natsgate/nats.json`,
      JSON.stringify({ servers: [dead], pid: 4242, started: new Date().toISOString() }),
    );
    const stale = await runCli(list, { cwd });
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /is natsgate serve --dev \(pid 4242\) still running\?$/m);
  } finally {
    await nats.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("version: natsgate, deno and nats-server", async () => {
  const r = ok(await runCli(["version", "--json"]));
  const v = JSON.parse(r.stdout);
  assert.equal(v.natsgate, denoJson.version);
  assert.equal(v.deno, Deno.version.deno);
  assert.match(v.nats_server?.version ?? "", /^\d+\.\d+\.\d+$/);
  const text = ok(await runCli(["version"]));
  assert.match(
    text.stdout,
    new RegExp(`^natsgate ${denoJson.version}\ndeno ${Deno.version.deno} `),
  );
  assert.match(text.stdout, /^nats-server \d+\.\d+\.\d+ \(/m);
});

Deno.test("help: examples in every command's --help, connection flags once as a group", async () => {
  const paths = [
    [],
    ["serve"],
    ["token"],
    ["sessions"],
    ["sessions", "list"],
    ["sessions", "tail"],
    ["sessions", "kick"],
    ["replay"],
    ["version"],
    ["completions"],
  ];
  for (const p of paths) {
    const r = ok(await runCli([...p, "--help"]));
    assert.match(r.stdout, /\nExamples:\n {2}\$ natsgate/, `examples in ${p.join(" ")} --help`);
  }
  const replay = ok(await runCli(["replay", "--help"])).stdout;
  assert.equal(replay.match(/^NATS connection/gm)?.length, 1);
  assert.equal(replay.match(/--nats <urls>/g)?.length, 1);
});

Deno.test("completions: generated from the tree; the bash script completes for real", async () => {
  const bash = ok(await runCli(["completions", "bash"])).stdout;
  const complete = async (line: string): Promise<string[]> => {
    const words = line.split(" ");
    const script = `${bash}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})\n` +
      `COMP_CWORD=${words.length - 1}\n_natsgate_complete\nprintf '%s\\n' "\${COMPREPLY[@]}"\n`;
    const out = await new Deno.Command("bash", { args: ["-c", script], stdout: "piped" }).output();
    assert.ok(out.success);
    return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l);
  };
  assert.deepEqual(await complete("natsgate sess"), ["sessions"]);
  assert.deepEqual(await complete("natsgate sessions k"), ["kick"]);
  assert.deepEqual(await complete("natsgate replay ORDERS --from"), ["--from-seq"]);
  assert.ok((await complete("natsgate caps ")).includes("grant"));
  for (const shell of ["zsh", "fish"]) {
    const s = ok(await runCli(["completions", shell])).stdout;
    for (const word of ["sessions", "kick", "from-seq", "completions"]) {
      assert.ok(s.includes(word), `${shell} script completes ${word}`);
    }
  }
  fails(await runCli(["completions", "tcsh"]), 2, /'tcsh' is invalid/);
});
