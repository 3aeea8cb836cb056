/** Outbound framing: envelopes queued in one task leave as few NDJSON frames as possible.
 * @module */

/**
 * Groups lines into NDJSON frames of at most `maxChars` UTF-16 units each (a longer line goes
 * alone); all envelopes queued in one task go out in as few frames as that allows.
 *
 * @example
 * ```ts
 * coalesce(['{"op":"ping"}', '{"op":"ping"}'], 16_384); // one frame of two lines
 * ```
 */
export function coalesce(lines: readonly string[], maxChars: number): string[] {
  const frames: string[] = [];
  let frame = "";
  for (const line of lines) {
    if (frame && frame.length + line.length + 1 > maxChars) {
      frames.push(frame);
      frame = "";
    }
    frame = frame ? frame + "\n" + line : line;
  }
  if (frame) frames.push(frame);
  return frames;
}
