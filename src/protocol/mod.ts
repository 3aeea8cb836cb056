/** The wire protocol (docs/protocol.md): envelope parsing, error codes and frames, payload and
 * header encodings, and NATS subject rules. Pure; depends on nothing else in natsgate.
 * @module */

export * from "./envelope.ts";
export * from "./errors.ts";
export * from "./frames.ts";
export * from "./headers.ts";
export * from "./payload.ts";
export * from "./subject.ts";
export * from "./types.ts";
