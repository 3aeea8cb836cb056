/** The natsgate client SDK for Deno users: the same module the gateway serves at `/client.js`.
 * `import { connect } from "@natsgate/natsgate/client"`; types come from client.d.ts.
 * @module */

export * from "./client.js";
