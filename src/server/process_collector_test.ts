import assert from "node:assert/strict";
import client from "prom-client";
import { ProcessCollector } from "./process_collector.ts";

function _value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

Deno.test("ProcessCollector: standard process series with this process's real figures", async () => {
  const registry = new client.Registry();
  const collector = new ProcessCollector(registry);
  try {
    const text = await registry.metrics();
    assert.equal(collector.procReadable, Deno.build.os === "linux", "tests run with -A");
    assert.ok(_value(text, "process_resident_memory_bytes") > 0);
    assert.ok(_value(text, "process_cpu_seconds_total") > 0);
    assert.ok(_value(text, "process_start_time_seconds") <= Date.now() / 1000);
    assert.ok(_value(text, "process_start_time_seconds") > Date.now() / 1000 - 24 * 3600);
    assert.ok(_value(text, "deno_heap_size_used_bytes") > 0);
    assert.ok(
      _value(text, "deno_heap_size_total_bytes") >= _value(text, "deno_heap_size_used_bytes"),
    );
    assert.match(text, new RegExp(`^deno_version_info\\{deno="${Deno.version.deno}",`, "m"));
    assert.doesNotMatch(text, /nodejs_/, "no Node collectors");
    if (collector.procReadable) {
      assert.ok(_value(text, "process_open_fds") > 0);
      assert.ok(_value(text, "process_max_fds") >= _value(text, "process_open_fds"));
      assert.ok(
        _value(text, "process_virtual_memory_bytes") >
          _value(text, "process_resident_memory_bytes"),
      );
    }
  } finally {
    collector.close();
  }
});

Deno.test("ProcessCollector: without read access to /proc the /proc-only series are left out", {
  permissions: { read: false, sys: false, env: false },
}, async () => {
  const registry = new client.Registry();
  const why: unknown[] = [];
  const collector = new ProcessCollector(registry, { onProcUnavailable: (e) => why.push(e) });
  try {
    const text = await registry.metrics();
    assert.equal(collector.procReadable, false);
    assert.equal(why.length, 1, "told once why");
    assert.ok(
      why[0] instanceof Deno.errors.NotCapable || why[0] instanceof Deno.errors.PermissionDenied,
    );
    assert.ok(_value(text, "process_resident_memory_bytes") > 0, "RSS from Deno.memoryUsage()");
    assert.ok(_value(text, "process_cpu_seconds_total") > 0, "CPU from process.cpuUsage()");
    assert.ok(_value(text, "process_start_time_seconds") > 0);
    assert.doesNotMatch(text, /^process_open_fds /m, "absent, not 0");
    assert.doesNotMatch(text, /^process_max_fds /m);
    assert.doesNotMatch(text, /^process_virtual_memory_bytes /m);
  } finally {
    collector.close();
  }
});
