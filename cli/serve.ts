/** `natsgate serve`: runs the gateway, against given NATS servers or an embedded nats-server.
 * `--dev` keeps state in ./.natsgate, seeds the demo user, bucket and stream (_dev_seed.ts) and
 * prints a ready-to-use token.
 * @module */

import { Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { Gateway, type GatewayOptions } from "../src/server/gateway.ts";
import { createLogger, isLogLevel, type Logger } from "../src/log/log.ts";
import { NatsServer } from "../src/nats/launcher.ts";
import { requireNatsServer } from "../src/nats/install.ts";
import { mintToken } from "../src/auth/mint.ts";
import { connectNats } from "../src/nats/connect.ts";
import { gatewayExtensions } from "../src/streams/extensions.ts";
import { consoleHandler } from "../src/server/static_assets.ts";
import {
  CliError,
  durationArg,
  envName,
  envOption,
  examples,
  intArg,
  listArg,
  positiveIntArg,
} from "./_common.ts";
import { parseCidr } from "../src/server/client_ip.ts";
import { seedDemo } from "./_dev_seed.ts";
import { contextOf } from "./_context.ts";
import { writeDevRecord } from "./_nats_target.ts";

/** Parses a comma separated CIDR list (usage error on a bad block). */
function cidrListArg(value: string): string[] {
  const list = listArg(value);
  for (const c of list) {
    try {
      parseCidr(c);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  }
  return list;
}

/** Splits `host:port` (IPv6 in brackets). */
export function parseListen(value: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value.trim());
  if (!m) throw new CliError(`invalid --listen ${JSON.stringify(value)}: expected host:port`, 2);
  const port = Number(m[3]);
  if (port > 65535) throw new CliError(`invalid --listen port ${port}`, 2);
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

async function _devSecret(dir: string): Promise<string> {
  const path = `${dir}/jwt-secret`;
  try {
    const s = (await Deno.readTextFile(path)).trim();
    if (s.length >= 32) return s;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const secret = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.writeTextFile(path, secret + "\n", { mode: 0o600 });
  return secret;
}

/** Builds the `serve` command. */
export function serveCommand() {
  return new Command("serve")
    .description("run the WebSocket gateway")
    .addHelpText(
      "after",
      examples(
        "natsgate serve --dev                 # embedded NATS, dev secret, demo user",
        'natsgate serve --nats nats://n1:4222,nats://n2:4222 --jwt-secret "$SECRET"',
        "NATSGATE_JWKS_URL=https://id.example/jwks.json natsgate serve --nats-creds gw.creds",
      ),
    )
    .addOption(envOption("--listen <host:port>", "listen address").default("0.0.0.0:8080"))
    .addOption(envOption("--ws-path <path>", "WebSocket path").default("/ws"))
    .addOption(
      envOption("--tls-cert <file>", "PEM certificate chain: serve wss:// (SIGHUP reloads)"),
    )
    .addOption(envOption("--tls-key <file>", "PEM private key for --tls-cert"))
    .addOption(
      envOption("--nats <urls>", "NATS server URLs, comma separated (default: embedded server)")
        .argParser(listArg),
    )
    .addOption(envOption("--nats-creds <file>", "NATS credentials file (.creds)"))
    .addOption(envOption("--nats-nkey <file>", "file with an NATS nkey seed"))
    .addOption(envOption("--nats-user <user>", "NATS user"))
    .addOption(envOption("--nats-pass <password>", "NATS password"))
    .addOption(envOption("--nats-token <token>", "NATS auth token"))
    .addOption(envOption("--nats-tls-ca <file>", "CA certificate for TLS to NATS"))
    .addOption(envOption("--auth-bucket <name>", "KV bucket holding capabilities").default("auth"))
    .addOption(envOption("--default-role <name>", "role every authenticated user holds"))
    .addOption(
      envOption("--jwt-roles-claim <claim>", "token claim listing role names that apply too"),
    )
    .addOption(envOption("--jwt-secret <secret>", "HS256 secret for client tokens"))
    .addOption(
      envOption("--jwt-public-key <file>", "PEM public key for RS256/ES256/EdDSA client tokens"),
    )
    .addOption(envOption("--jwks-url <url>", "JWKS URL for client tokens (cached)"))
    .addOption(envOption("--jwt-issuer <iss>", "required token issuer"))
    .addOption(envOption("--jwt-audience <aud>", "required token audience"))
    .addOption(
      envOption("--allow-no-exp", "accept client tokens without exp (refused by default)"),
    )
    .addOption(
      envOption("--auth-cookie <name>", "cookie carrying the token").default("natsgate_token"),
    )
    .addOption(
      envOption("--auth-timeout <duration>", "time allowed for the first auth frame")
        .argParser(durationArg).default(5000, "5s"),
    )
    .addOption(
      envOption("--allowed-origins <list>", "allowed Origins, comma separated; * allows any")
        .argParser(listArg),
    )
    .addOption(
      envOption("--max-frame-bytes <n>", "largest inbound frame").argParser(positiveIntArg)
        .default(65536),
    )
    .addOption(
      envOption("--max-subs <n>", "subscriptions per connection").argParser(intArg).default(256),
    )
    .addOption(
      envOption("--max-conns-per-user <n>", "connections per user").argParser(intArg).default(32),
    )
    .addOption(
      envOption("--rate <n>", "inbound ops per second").argParser(positiveIntArg).default(200),
    )
    .addOption(envOption("--burst <n>", "inbound op burst").argParser(positiveIntArg).default(400))
    .addOption(
      envOption("--max-lines-per-frame <n>", "envelopes read from one frame; more: refused")
        .argParser(positiveIntArg).default(400),
    )
    .addOption(
      envOption("--max-pending-cmds <n>", "pending cmds per connection").argParser(intArg)
        .default(64),
    )
    .addOption(
      envOption(
        "--max-pending-bytes <n>",
        "pending outbound bytes per connection: above it for --backpressure-timeout-ms, or " +
          "above twice it, the client is cut (4008)",
      ).argParser(positiveIntArg).default(8 * 1024 * 1024),
    )
    .addOption(
      envOption("--backpressure-timeout-ms <n>", "how long pending bytes may stay above the bound")
        .argParser(intArg).default(250),
    )
    .addOption(
      envOption(
        "--write-deadline <duration>",
        "a connection with pending bytes that drains nothing for this long is cut (4008)",
      ).argParser(durationArg).default(5000, "5s"),
    )
    .addOption(
      envOption(
        "--max-pending-total <n>",
        "pending outbound bytes of all connections; over it the largest queues are cut first",
      ).argParser(positiveIntArg).default(1024 * 1024 * 1024),
    )
    .addOption(
      envOption("--max-conns <n>", "open sockets on the listener; more are closed at once")
        .argParser(positiveIntArg).default(50_000),
    )
    .addOption(
      envOption("--max-conns-per-ip <n>", "WebSocket connections per client address (HTTP 429)")
        .argParser(positiveIntArg).default(1000),
    )
    .addOption(
      envOption("--upgrade-rate-per-ip <n>", "upgrades per second per client address (HTTP 429)")
        .argParser(positiveIntArg).default(100),
    )
    .addOption(
      envOption(
        "--trust-proxy <cidrs>",
        "proxies whose X-Forwarded-For / Forwarded name the client, comma separated CIDRs",
      ).argParser(cidrListArg),
    )
    .addOption(
      envOption(
        "--trust-proxy-header <header>",
        "the one header the trusted proxies set (the other is ignored: clients could write it)",
      ).choices(["x-forwarded-for", "forwarded"] as const).default("x-forwarded-for" as const),
    )
    .addOption(
      envOption("--header-timeout <duration>", "time for the TLS handshake and request head")
        .argParser(durationArg).default(10_000, "10s"),
    )
    .addOption(
      envOption("--max-cmd-timeout <duration>", "upper bound of a cmd timeout")
        .argParser(durationArg).default(30000, "30s"),
    )
    .addOption(
      envOption("--max-js-batch <n>", "upper bound of js_sub batch").argParser(positiveIntArg)
        .default(1000),
    )
    .addOption(
      envOption("--durable-inactive <duration>", "idle durable consumers expire after this")
        .argParser(durationArg).default(86_400_000, "24h"),
    )
    .addOption(
      envOption("--max-durables-per-user <n>", "durable consumers per user on one stream")
        .argParser(positiveIntArg).default(16),
    )
    .addOption(
      envOption("--log-format <format>", "text or json").choices(["text", "json"] as const)
        .default("text" as const),
    )
    .addOption(
      envOption("--log-level <level>", "debug, info, warn or error").choices(
        ["debug", "info", "warn", "error"] as const,
      ).default("info" as const),
    )
    .addOption(
      envOption("--drain-timeout <duration>", "on SIGTERM, time clients get before close 1001")
        .argParser(durationArg).default(10_000, "10s"),
    )
    .addOption(envOption("--gateway-id <id>", "id in session listings (default: random)"))
    .addOption(envOption("--data-dir <dir>", "dev mode state directory").default(".natsgate"))
    .addOption(
      envOption("--no-console", "do not serve the console page at / (the SDK at /client.js stays)"),
    )
    .addOption(new Option("--dev", "development mode: embedded NATS, dev secret, demo user"))
    .action(async (o, cmd) => {
      const allowNoExp = _flagOn(cmd, "allowNoExp", "--allow-no-exp", contextOf(cmd).env);
      const log = createLogger({
        level: isLogLevel(o.logLevel) ? o.logLevel : "info",
        format: o.logFormat,
      });
      const { hostname, port } = parseListen(o.listen);
      // A server keeps serving: a promise rejection nobody handled is a bug to log loudly, not a
      // reason to drop every client.
      const onRejection = (e: PromiseRejectionEvent) => {
        e.preventDefault();
        log.error("unhandled rejection (a bug; the gateway keeps serving)", { error: e.reason });
      };
      globalThis.addEventListener("unhandledrejection", onRejection);
      let jwtSecret = o.jwtSecret;
      let embedded: NatsServer | undefined;
      let nats = o.nats;
      if (o.dev && nats && cmd.getOptionValueSource("nats") === "env") {
        // Dev mode embeds its own NATS; a NATSGATE_NATS exported for other work must not divert it.
        log.warn("dev mode ignores NATSGATE_NATS; pass --nats to use another NATS", {
          NATSGATE_NATS: nats.join(","),
        });
        nats = undefined;
      }
      const cleanup: Array<() => Promise<void>> = [];
      try {
        if (o.dev) {
          await Deno.mkdir(o.dataDir, { recursive: true });
          jwtSecret ??= await _devSecret(o.dataDir);
        }
        let jwtPublicKey: string | undefined;
        if (o.jwtPublicKey) {
          jwtPublicKey = await Deno.readTextFile(o.jwtPublicKey).catch((err) => {
            throw new CliError(`cannot read --jwt-public-key: ${(err as Error).message}`, 2);
          });
        }
        if (!jwtSecret && !jwtPublicKey && !o.jwksUrl) {
          throw new CliError(
            "no JWT key: pass --jwt-secret, --jwt-public-key or --jwks-url (or their NATSGATE_ " +
              "env vars), or use --dev for development",
            2,
          );
        }
        if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
          throw new CliError("--tls-cert and --tls-key go together", 2);
        }
        if (!nats || nats.length === 0) {
          const binary = await requireNatsServer().catch((err) => {
            throw new CliError((err as Error).message);
          });
          embedded = await NatsServer.start({
            binary,
            storeDir: o.dev ? `${o.dataDir}/nats` : undefined,
            logFile: o.dev ? `${o.dataDir}/nats-server.log` : undefined,
          });
          cleanup.push(() => embedded!.stop());
          nats = [embedded.url];
          log.info("embedded nats-server started", { url: embedded.url });
        }
        const nc = await connectNats({
          servers: nats,
          credsFile: o.natsCreds,
          nkeySeedFile: o.natsNkey,
          user: o.natsUser,
          pass: o.natsPass,
          token: o.natsToken,
          tlsCaFile: o.natsTlsCa,
          reconnectForever: true,
        }).catch((err) => {
          throw new CliError(`cannot connect to NATS at ${nats!.join(",")}: ${err.message}`);
        });
        cleanup.unshift(() => nc.drain().catch(() => {}));
        if (o.dev) {
          // Admin commands started next to this one find its NATS here (cli/_nats_target.ts).
          const creds = o.natsCreds &&
            (o.natsCreds.startsWith("/") ? o.natsCreds : `${Deno.cwd()}/${o.natsCreds}`);
          cleanup.push(
            await writeDevRecord(o.dataDir, {
              servers: nats,
              ...(creds ? { creds } : {}),
              pid: Deno.pid,
              started: new Date().toISOString(),
            }),
          );
        }
        if (o.dev) await seedDemo(nc, o.authBucket, log);
        const gwOpts: GatewayOptions = {
          hostname,
          port,
          wsPath: o.wsPath,
          nc,
          authBucket: o.authBucket,
          defaultRole: o.defaultRole,
          jwtRolesClaim: o.jwtRolesClaim,
          jwtSecret,
          jwtPublicKey,
          jwksUrl: o.jwksUrl,
          jwtIssuer: o.jwtIssuer,
          jwtAudience: o.jwtAudience,
          allowNoExp,
          authCookie: o.authCookie,
          allowedOrigins: o.allowedOrigins ?? (o.dev ? ["*"] : []),
          maxConnsPerUser: o.maxConnsPerUser,
          id: o.gatewayId,
          log,
          httpHandler: consoleHandler({ console: o.console }),
          tls: o.tlsCert && o.tlsKey ? { certFile: o.tlsCert, keyFile: o.tlsKey } : undefined,
          headerTimeoutMs: o.headerTimeout,
          maxConns: o.maxConns,
          maxConnsPerIp: o.maxConnsPerIp,
          upgradeRatePerIp: o.upgradeRatePerIp,
          trustProxy: o.trustProxy,
          trustProxyHeader: o.trustProxyHeader,
          maxPendingTotal: o.maxPendingTotal,
          limits: {
            maxFrameBytes: o.maxFrameBytes,
            maxSubs: o.maxSubs,
            rate: o.rate,
            burst: o.burst,
            maxLinesPerFrame: o.maxLinesPerFrame,
            maxPendingCmds: o.maxPendingCmds,
            maxPendingBytes: o.maxPendingBytes,
            backpressureTimeoutMs: o.backpressureTimeoutMs,
            writeDeadlineMs: o.writeDeadline,
            maxCmdTimeoutMs: o.maxCmdTimeout,
            authTimeoutMs: o.authTimeout,
          },
          ...gatewayExtensions({
            maxJsBatch: o.maxJsBatch,
            durableInactiveMs: o.durableInactive,
            maxDurablesPerUser: o.maxDurablesPerUser,
          }),
        };
        const gw = await Gateway.start(gwOpts).catch((err) => {
          if (err instanceof Deno.errors.AddrInUse) {
            throw new CliError(`cannot listen on ${o.listen}: address in use`);
          }
          throw err;
        });
        let drainMs = 0;
        if (gw.tls) {
          const reload = () => {
            gw.reloadTls().catch((err) =>
              log.error("TLS reload failed; keeping the current certificate", { error: err })
            );
          };
          Deno.addSignalListener("SIGHUP", reload);
          cleanup.push(() => Promise.resolve(Deno.removeSignalListener("SIGHUP", reload)));
        }
        cleanup.unshift(() => gw.drain(drainMs));
        if (o.dev && jwtSecret) {
          const token = await mintToken({
            secret: jwtSecret,
            user: "demo",
            ttlSeconds: 86400,
            issuer: o.jwtIssuer,
            audience: o.jwtAudience,
          });
          const url = gw.wsUrl;
          console.log(
            [
              "",
              "natsgate dev mode",
              ...(o.console
                ? [`  console:   ${new URL("/", url.replace(/^ws/, "http")).href}`]
                : []),
              `  WebSocket: ${url}`,
              `  token (user demo, 24h): ${token}`,
              `  connect:   ${url}?token=<token>   or send {"op":"auth","data":{"token":"<token>"}}`,
              `  try:       {"op":"sub","target":"demo.hello","inbox":"1"}`,
              `             {"op":"pub","target":"demo.hello","data":{"hi":1}}`,
              `             {"op":"kv_sub","target":"demo","inbox":"2"}   (bucket demo, 3 keys)`,
              `             {"op":"js_sub","target":"DEMO","inbox":"3","data":{"deliver":"all"}}`,
              `  state in ${o.dataDir}/ (dev secret, NATS data). Ctrl-C stops.`,
              "",
            ].join("\n"),
          );
        }
        const signal = await _untilSignal(log);
        drainMs = signal === "SIGTERM" ? o.drainTimeout : 0;
        if (drainMs > 0) {
          // A second signal cuts the drain short.
          const now = () => {
            log.info("second signal: closing now");
            gw.close();
          };
          Deno.addSignalListener("SIGINT", now);
          Deno.addSignalListener("SIGTERM", now);
        }
      } finally {
        for (const fn of cleanup) await fn().catch(() => {});
      }
    });
}

/**
 * Whether a boolean flag is on. Commander turns a boolean flag on whenever its env var is set, even
 * to `false`; for flags that weaken security only `1`/`true` count, `0`/`false`/empty leave them
 * off, and anything else is an error.
 */
function _flagOn(
  cmd: { getOptionValue(key: string): unknown; getOptionValueSource(key: string): unknown },
  key: string,
  flag: string,
  env: (name: string) => string | undefined,
): boolean {
  if (cmd.getOptionValue(key) !== true) return false;
  if (cmd.getOptionValueSource(key) !== "env") return true;
  const value = (env(envName(flag)) ?? "").trim().toLowerCase();
  if (value === "1" || value === "true") return true;
  if (value === "" || value === "0" || value === "false") return false;
  throw new CliError(`invalid ${envName(flag)} ${JSON.stringify(value)}: use true or false`, 2);
}

function _untilSignal(log: Logger): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handlers = signals.map((signal) => {
      const handler = () => {
        log.info("shutting down", { signal });
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]));
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return handler;
    });
  });
}
