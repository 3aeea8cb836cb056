import assert from "node:assert/strict";
import { isFinalEnd, mayRetry, type ReconnectState } from "./reconnect.ts";

const BASE: ReconnectState = {
  reconnect: true,
  maxAttempts: Infinity,
  waitOnFirstConnect: false,
  everOpened: true,
  attempt: 0,
  urlCount: 1,
};

Deno.test("mayRetry: attempts left, and one try of each URL before the first success", () => {
  const table: Array<[Partial<ReconnectState>, boolean]> = [
    [{}, true],
    [{ reconnect: false }, false],
    [{ maxAttempts: 3, attempt: 3 }, false],
    [{ maxAttempts: 3, attempt: 2 }, true],
    [{ everOpened: false }, false],
    [{ everOpened: false, urlCount: 2, attempt: 0 }, true],
    [{ everOpened: false, urlCount: 2, attempt: 1 }, false],
    [{ everOpened: false, waitOnFirstConnect: true, attempt: 9 }, true],
  ];
  for (const [over, want] of table) {
    assert.equal(mayRetry({ ...BASE, ...over }), want, `${JSON.stringify(over)}`);
  }
});

Deno.test("isFinalEnd: refused credentials or origin, or an expired fixed token", () => {
  const table: Array<[number, number | undefined, boolean, boolean]> = [
    [4001, undefined, true, true],
    [4003, undefined, false, true],
    [4003, undefined, true, false],
    [1006, 401, true, true],
    [1006, 403, true, true],
    [1006, 429, true, false],
    [1006, undefined, false, false],
    [4000, undefined, false, false],
  ];
  for (const [code, status, source, want] of table) {
    assert.equal(isFinalEnd(code, status, source), want, `${code} ${status} ${source}`);
  }
});
