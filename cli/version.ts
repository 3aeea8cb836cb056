/** `natsgate version`: the versions of natsgate, Deno (V8, TypeScript) and the nats-server found.
 * Data on stdout (`--json` for tools); a missing nats-server is reported, not an error.
 * @module */

import { Command } from "@commander-js/extra-typings";
import denoJson from "../deno.json" with { type: "json" };
import { findNatsServer, natsServerVersion } from "../src/nats/install.ts";
import { contextOf, examples } from "./_common.ts";

/** What `natsgate version --json` prints. */
export interface VersionInfo {
  /** natsgate's version (deno.json). */
  natsgate: string;
  /** Deno's version. */
  deno: string;
  /** V8's version. */
  v8: string;
  /** TypeScript's version. */
  typescript: string;
  /** The nats-server `serve` would embed, or null when none is found. */
  nats_server: { path: string; version: string | null } | null;
}

/** Gathers the versions (looks for nats-server as `serve` does). */
export async function versionInfo(): Promise<VersionInfo> {
  let path: string | null = null;
  try {
    path = await findNatsServer();
  } catch {
    // NATS_SERVER_BIN points at something unusable: reported as not found
  }
  return {
    natsgate: denoJson.version,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    nats_server: path ? { path, version: await natsServerVersion(path) } : null,
  };
}

/** Builds the `version` command. */
export function versionCommand() {
  return new Command("version")
    .description("print the versions of natsgate, Deno and the nats-server found")
    .option("--json", "print one JSON object")
    .addHelpText("after", examples("natsgate version", "natsgate version --json | jq .nats_server"))
    .action(async (o, cmd) => {
      const ctx = contextOf(cmd);
      const v = await versionInfo();
      if (o.json) {
        ctx.print(JSON.stringify(v));
        return;
      }
      ctx.print(`natsgate ${v.natsgate}`);
      ctx.print(`deno ${v.deno} (v8 ${v.v8}, typescript ${v.typescript})`);
      ctx.print(
        v.nats_server
          ? `nats-server ${v.nats_server.version ?? "(version unknown)"} (${v.nats_server.path})`
          : "nats-server not found (natsgate serve needs one; see README)",
      );
    });
}
