/** A token bucket for inbound ops, with detection of sustained abuse.
 * Pure arithmetic over a caller-supplied clock, so it is easy to test.
 * @module */

/** Verdict of {@link TokenBucket.take}. */
import type { RateVerdict } from "../protocol/envelope.ts";

export type { RateVerdict };

/**
 * Token bucket: `rate` tokens per second, at most `burst` stored. An op that finds no token is
 * `limited`. A streak of limited ops starts at the first one and ends only when `sustainMs` pass
 * without any; a limited op `sustainMs` or more into a streak is `sustained` (the session closes
 * with 4029). So a client that keeps sending faster than the rate is closed after `sustainMs`,
 * while one burst over the limit only costs the ops that found no token.
 */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #sustainMs: number;
  #tokens: number;
  #last: number;
  #limitedSince = -1;
  #lastLimited = -Infinity;

  /** Creates a full bucket. */
  constructor(rate: number, burst: number, now: number, sustainMs = 1000) {
    this.#rate = rate;
    this.#burst = Math.max(1, burst);
    this.#sustainMs = sustainMs;
    this.#tokens = this.#burst;
    this.#last = now;
  }

  /** Takes one token at time `now` (milliseconds). */
  take(now: number): RateVerdict {
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#rate) / 1000);
      this.#last = now;
    }
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return "ok";
    }
    return this.strike(now);
  }

  /**
   * Records abuse at time `now` without taking a token, as if an op had found none: it starts or
   * continues a streak, and is `sustained` once the streak is `sustainMs` old. Used for frames
   * carrying more envelopes than allowed.
   */
  strike(now: number): "limited" | "sustained" {
    if (this.#limitedSince < 0 || now - this.#lastLimited >= this.#sustainMs) {
      this.#limitedSince = now;
    }
    this.#lastLimited = now;
    return now - this.#limitedSince >= this.#sustainMs ? "sustained" : "limited";
  }
}
