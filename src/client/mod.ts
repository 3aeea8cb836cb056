/** The natsgate client SDK: connect to a gateway, subscribe to core subjects, KV buckets and
 * JetStream streams, send requests and publishes. Written in TypeScript; the gateway serves the
 * same code bundled for browsers at `/client.js` (built by `deno task bundle` into `dist/`).
 *
 * @example
 * ```ts
 * import { connect } from "@natsgate/natsgate/client";
 * const client = await connect("ws://127.0.0.1:8080/ws", { token });
 * for await (const m of client.subscribe<{ text: string }>("chat.room1")) console.log(m.payload.text);
 * ```
 * @module */

export { CLIENT_OPS, CloseCode, ERROR_CODES, PROTOCOL_VERSION } from "../protocol/types.ts";
export type {
  Capabilities,
  CapUpdateData,
  ClientFrame,
  ClientOp,
  ErrorCode,
  ErrorFrameContext,
  ErrorFrameData,
  HeaderMap,
  HeaderMap as MsgHeaders,
  PayloadEncoding,
  ServerFrame,
  ServerOp,
} from "../protocol/types.ts";
export { connect, NatsgateClient } from "./client.ts";
export { CoreSubscription } from "./core_subscription.ts";
export * from "./errors.ts";
export type * from "./events.ts";
export { JsSubscription } from "./js_subscription.ts";
export { type KvReadyDetail, KvWatch } from "./kv_watch.ts";
export type * from "./messages.ts";
export type {
  ConnectOptions,
  ConnectSettings,
  JsSubscribeOptions,
  KvWatchOptions,
  PublishOptions,
  ReconnectOptions,
  RequestOptions,
  StaticTokenOptions,
  SubscribeOptions,
  TokenSource,
  TokenSourceOptions,
} from "./options.ts";
export { payloadBytes } from "./payload.ts";
export {
  Subscription,
  type SubscriptionClosedDetail,
  type SubscriptionKind,
} from "./subscription.ts";
export { decodeJwtPayload, tokenRefreshDelay } from "./token.ts";
