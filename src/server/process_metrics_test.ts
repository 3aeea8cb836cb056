import assert from "node:assert/strict";
import {
  parseBootTime,
  parseMaxOpenFiles,
  parseStat,
  parseStatus,
  ProcFormatError,
  startTimeSeconds,
} from "./process_metrics.ts";

// Fields 3.. of a stat line: state ppid pgrp session tty tpgid flags minflt cminflt majflt
// cmajflt utime(14) stime(15) cutime cstime priority nice num_threads(20) itrealvalue
// starttime(22) vsize(23) rss(24) …
const _TAIL = "S 1 7 7 0 -1 4194560 900 0 3 0 1234 567 0 0 20 0 11 0 993807 19308199936 21780 " +
  "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

Deno.test("parseStat: fields counted from the last parenthesis", () => {
  const cases: Array<[string, string]> = [
    ["plain name", `4242 (deno) ${_TAIL}`],
    ["name with spaces", `4242 (my gate way) ${_TAIL}`],
    ["name with parentheses", `4242 (a) b (c)) ${_TAIL}`],
    ["trailing newline", `4242 (deno) ${_TAIL}\n`],
  ];
  for (const [name, line] of cases) {
    assert.deepEqual(parseStat(line), {
      userSeconds: 12.34,
      systemSeconds: 5.67,
      threads: 11,
      startTicks: 993807,
      virtualBytes: 19308199936,
    }, name);
  }
  assert.equal(parseStat(`1 (x) ${_TAIL}`, 1000).userSeconds, 1.234, "another tick rate");
});

Deno.test("parseStat: malformed text is a ProcFormatError naming the field", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["empty", "", /no command name/],
    ["no parenthesis", "4242 deno S 1 2 3", /no command name/],
    ["truncated", "4242 (deno) S 1 7 7 0 -1 4194560 900 0 3 0", /utime is missing/],
    ["not a number", `4242 (deno) ${_TAIL.replace("1234", "x")}`, /utime is "x"/],
  ];
  for (const [name, text, re] of cases) {
    assert.throws(() => parseStat(text), (e: unknown) => {
      assert.ok(e instanceof ProcFormatError, name);
      assert.match(e.message, /\/proc\/self\/stat/, name);
      assert.match(e.message, re, name);
      return true;
    });
  }
});

Deno.test("parseStatus: VmRSS and VmSize in bytes; missing lines are errors", () => {
  const ok = "Name:\tdeno\nVmPeak:\t 9999 kB\nVmSize:\t19311296 kB\nVmHWM:\t   90000 kB\n" +
    "VmRSS:\t   87124 kB\nThreads:\t11\n";
  assert.deepEqual(parseStatus(ok), { residentBytes: 87124 * 1024, virtualBytes: 19311296 * 1024 });
  const bad: Array<[string, string]> = [
    ["no VmRSS (kernel thread)", "Name:\tkthreadd\nThreads:\t1\n"],
    ["VmRSS without unit", "VmSize:\t1 kB\nVmRSS:\t12\n"],
    ["VmRSSx is not VmRSS", "VmSize:\t1 kB\nVmRSSx:\t12 kB\n"],
  ];
  for (const [name, text] of bad) {
    assert.throws(() => parseStatus(text), ProcFormatError, name);
  }
});

Deno.test("parseMaxOpenFiles: the soft limit, unlimited as Infinity", () => {
  const head = "Limit                     Soft Limit           Hard Limit           Units     \n" +
    "Max cpu time              unlimited            unlimited            seconds   \n";
  const cases: Array<[string, string, number]> = [
    [
      "numbers",
      "Max open files            1024                 1048576              files     \n",
      1024,
    ],
    [
      "unlimited",
      "Max open files            unlimited            unlimited            files\n",
      Infinity,
    ],
  ];
  for (const [name, line, want] of cases) assert.equal(parseMaxOpenFiles(head + line), want, name);
  assert.throws(() => parseMaxOpenFiles(head), ProcFormatError, "no line");
  assert.throws(
    () =>
      parseMaxOpenFiles("Max open files            lots                 1              files\n"),
    /Max open files is "lots"/,
  );
});

Deno.test("parseBootTime and startTimeSeconds", () => {
  assert.equal(parseBootTime("cpu  1 2 3 4\nintr 5\nbtime 1796005060\nprocesses 9\n"), 1796005060);
  assert.throws(() => parseBootTime("cpu  1 2 3 4\n"), ProcFormatError);
  assert.throws(() => parseBootTime("btime soon\n"), /btime is "soon"/);
  assert.equal(startTimeSeconds(993807, 1796005060), 1796005060 + 9938.07);
});

Deno.test("parsers accept this process's real /proc files", {
  ignore: Deno.build.os !== "linux",
}, () => {
  const stat = parseStat(Deno.readTextFileSync("/proc/self/stat"));
  const status = parseStatus(Deno.readTextFileSync("/proc/self/status"));
  assert.ok(stat.threads >= 1);
  assert.ok(stat.virtualBytes > 0);
  assert.ok(status.residentBytes > 0);
  assert.ok(parseMaxOpenFiles(Deno.readTextFileSync("/proc/self/limits")) > 0);
  const start = startTimeSeconds(
    stat.startTicks,
    parseBootTime(Deno.readTextFileSync("/proc/stat")),
  );
  assert.ok(start <= Date.now() / 1000, "started in the past");
});
