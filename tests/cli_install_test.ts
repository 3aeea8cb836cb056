/** The README's `deno install` route to a `natsgate` command (no `deno compile`): installed into
 * a temporary root with the documented permissions, the command runs from any directory.
 * @module */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("..", import.meta.url).pathname;

/** The permissions the README's install line grants (no -A). */
export const INSTALL_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
];

Deno.test("install: deno install --global -n natsgate gives a working natsgate command", async () => {
  const root = await Deno.makeTempDir({ prefix: "natsgate-install-" });
  const elsewhere = await Deno.makeTempDir({ prefix: "natsgate-cwd-" });
  try {
    const install = await new Deno.Command(Deno.execPath(), {
      args: [
        "install",
        "--global",
        "--root",
        root,
        "-n",
        "natsgate",
        "--config",
        "deno.json",
        ...INSTALL_PERMISSIONS,
        "main.ts",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.ok(install.success, dec.decode(install.stderr));
    const shim = await Deno.readTextFile(`${root}/bin/natsgate`);
    for (const p of INSTALL_PERMISSIONS) assert.ok(shim.includes(p), `the shim grants ${p}`);
    assert.ok(!/\s(-A|--allow-all)\s/.test(shim), "no blanket -A");

    // Run from another directory, as a user would, with PATH pointing at the install root.
    const run = (args: string[]) =>
      new Deno.Command(`${root}/bin/natsgate`, {
        args,
        cwd: elsewhere,
        env: { PATH: `${root}/bin:${Deno.env.get("PATH") ?? ""}` },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const version = await run(["version", "--json"]);
    assert.ok(version.success, dec.decode(version.stderr));
    const v = JSON.parse(dec.decode(version.stdout));
    assert.equal(v.natsgate, denoJson.version);
    assert.equal(v.deno, Deno.version.deno);
    const usage = await run(["replay", "--count", "0", "X"]);
    assert.equal(usage.code, 2, "exit codes pass through the shim");
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});
