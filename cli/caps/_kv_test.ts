import assert from "node:assert/strict";
import { actorName } from "./_kv.ts";

Deno.test("actorName: NATSGATE_ACTOR, else user@host, the user alone without a host", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  const table: Array<[string, Record<string, string>, () => string, string]> = [
    ["explicit", { NATSGATE_ACTOR: " ci-bot ", USER: "ada" }, () => "box", "ci-bot"],
    ["USER", { USER: "ada" }, () => "box", "ada@box"],
    ["USERNAME (Windows)", { USERNAME: "bob" }, () => "pc", "bob@pc"],
    ["no host permission", { USER: "ada" }, () => {
      throw new Error("denied");
    }, "ada"],
    ["blank explicit ignored", { NATSGATE_ACTOR: " ", USER: "ada" }, () => "box", "ada@box"],
  ];
  for (const [name, vars, host, want] of table) {
    assert.equal(actorName(env(vars), host), want, name);
  }
  assert.match(actorName(env({}), () => "box"), /^(uid:\d+|unknown)@box$/);
});
