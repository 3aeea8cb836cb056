/** Structured logging: one line per event, text or JSON, filtered by level.
 * The bottom layer: every other layer may log, none is imported here.
 * @module */

export * from "./log.ts";
