/** The console page and the SDK in a real Chromium, driven by playwright-core (no browser download).
 * Skipped, saying so, when /usr/bin/chromium is missing; CI installs Debian's chromium.
 * @module */

import assert from "node:assert/strict";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { consoleHandler } from "../src/server/static_assets.ts";
import { Stack } from "./_harness.ts";

const CHROMIUM = "/usr/bin/chromium";

// The page's globals as the functions given to page.evaluate() see them (this file is checked
// without the DOM library; these names are local to this module).
interface _PageElement {
  textContent: string | null;
  style: Record<string, string>;
  remove(): void;
}
declare const document: {
  querySelectorAll(selector: string): ArrayLike<_PageElement> & Iterable<_PageElement>;
  getElementById(id: string): _PageElement;
  createElement(tag: string): _PageElement;
  body: { append(node: _PageElement): void };
};
declare function getComputedStyle(element: _PageElement): { color: string };
declare const navigator: { clipboard: { readText(): Promise<string> } };

const hasChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
if (!hasChromium) console.log(`browser tests skipped: ${CHROMIUM} not found`);

const LAUNCH_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** A nats-server and a gateway serving the console page. */
function consoleStack(): Promise<Stack> {
  return Stack.start({ gateway: { httpHandler: consoleHandler({ console: true }) } });
}

/** Options of {@link withConsole}. */
interface ConsoleOptions {
  /** Connect the page as this user first. */
  as?: string;
  /** Browser console errors that are expected (others fail the test). */
  expectedErrors?: RegExp;
}

/** Runs `fn` on a fresh console page of `stack`'s gateway; page errors fail the test, a failure
 * leaves a screenshot. */
async function withConsole(
  stack: Stack,
  fn: (page: Page, context: BrowserContext) => Promise<void>,
  { as, expectedErrors }: ConsoleOptions = {},
): Promise<void> {
  const base = `http://127.0.0.1:${stack.gateway.addr.port}`;
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  const pageErrors: string[] = [];
  let page: Page | undefined;
  try {
    const context = await browser.newContext();
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error" && !expectedErrors?.test(msg.text())) pageErrors.push(msg.text());
    });
    await page.goto(`${base}/`);
    assert.equal(await page.title(), "natsgate console");
    if (as !== undefined) await connectAs(page, await stack.token(as));
    await fn(page, context);
    assert.deepEqual(pageErrors, []);
  } catch (err) {
    if (page) {
      const shot = await Deno.makeTempFile({ prefix: "natsgate_console_", suffix: ".png" });
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.error(`browser test failed; screenshot: ${shot}; page errors: ${pageErrors}`);
    }
    throw err;
  } finally {
    await browser.close();
  }
}

/** Pastes a token, connects and waits for the open state. */
async function connectAs(page: Page, token: string): Promise<void> {
  await page.fill("#token", token);
  await page.click("#connect");
  await page.waitForSelector('#state[data-state="open"]');
}

/** Titles of the log lines of one kind, as shown. */
function titles(page: Page, kind: string): Promise<string[]> {
  return page.locator(`#log li[data-kind="${kind}"] .title`).allTextContents();
}

/** The forms that need a connection, each disabled or not. */
function formsDisabled(page: Page): Promise<boolean[]> {
  return Promise.all(
    ["#sub-btn", "#kv-btn", "#js-btn", "#req-btn", "#pub-btn", "#sub-subject"].map((s) =>
      page.isDisabled(s)
    ),
  );
}

Deno.test({
  name: "browser: the console connects with a pasted token, subscribes and shows a message",
  ignore: !hasChromium,
  async fn() {
    await using stack = await consoleStack();
    await stack.setCaps("operator-view", {
      subjects: ["chat.>"],
      commands: ["svc.>"],
    });
    const echo = stack.nc.subscribe("svc.echo", {
      callback: (_e, m) => {
        m.respond(JSON.stringify({ echoed: m.json() }));
      },
    });
    await stack.nc.flush();
    const token = await stack.token("operator-view");
    try {
      await withConsole(stack, async (page, context) => {
        assert.equal(
          await page.inputValue("#url"),
          `ws://127.0.0.1:${stack.gateway.addr.port}/ws`,
        );
        assert.deepEqual(await formsDisabled(page), [true, true, true, true, true, true]);
        await connectAs(page, token);
        assert.equal(await page.textContent("#state"), "open");
        assert.deepEqual(await formsDisabled(page), [false, false, false, false, false, false]);
        const caps = JSON.parse(await page.textContent("#caps") ?? "null");
        assert.deepEqual(caps, { subjects: ["chat.>"], commands: ["svc.>"] });
        assert.match(await page.textContent("#who") ?? "", /user operator-view/);

        await page.fill("#sub-subject", "chat.room.*");
        await page.click("#sub-btn");
        await page.waitForSelector('#log li[data-kind="info"]:has-text("sub chat.room.*: ready")');
        assert.equal(await page.locator('#subs li[data-kind="core"]').count(), 1);

        stack.nc.publish(
          "chat.room.7",
          JSON.stringify({ text: "hello from NATS <b>", nested: { list: [1, 2] } }),
        );
        const entry = page.locator('#log li[data-kind="msg"]').first();
        await entry.waitFor();
        assert.match(await entry.textContent() ?? "", /chat\.room\.7/);
        const shown = await entry.locator("pre").textContent() ?? "";
        assert.deepEqual(JSON.parse(shown), {
          text: "hello from NATS <b>",
          nested: { list: [1, 2] },
        });
        assert.ok(shown.split("\n").length > 3, `pretty-printed over several lines: ${shown}`);
        assert.equal(await page.locator("#log b").count(), 0, "payloads are text, never markup");
        await page.waitForSelector('#subs li[data-kind="core"][data-count="1"]');
        assert.match(await page.textContent("#subs li") ?? "", /1 messages/);

        // Copy puts the pretty-printed payload on the clipboard.
        await context.grantPermissions(["clipboard-read", "clipboard-write"]);
        await entry.hover();
        await entry.locator("button.copy").click();
        await entry.locator('button.copy[data-copied="ok"]').waitFor();
        assert.equal(await page.evaluate(() => navigator.clipboard.readText()), shown);

        // A refused subscription is logged once (not by its promise, its end and the client
        // too); the forbidden request after it is the sentinel that all of that has arrived.
        await page.fill("#sub-subject", "secret.x");
        await page.click("#sub-btn");
        await page.fill("#req-subject", "chat.room.7");
        await page.click("#req-btn");
        await page.waitForSelector('#log li[data-kind="error"]:has-text("request chat.room.7")');
        const errors = await titles(page, "error");
        assert.deepEqual(errors, [
          "sub secret.x ended: forbidden",
          "request chat.room.7: forbidden",
        ]);
        assert.equal(await page.locator('#subs li[data-kind="core"]').count(), 1);

        // A request from the form.
        await page.fill("#req-subject", "svc.echo");
        await page.fill("#req-payload", '{"n": 1}');
        await page.click("#req-btn");
        const reply = page.locator('#log li[data-kind="reply"]').first();
        await reply.waitFor();
        assert.deepEqual(JSON.parse(await reply.locator("pre").textContent() ?? "null"), {
          echoed: { n: 1 },
        });

        await page.click("#disconnect");
        await page.waitForSelector('#state[data-state="closed"]');
        assert.deepEqual(await formsDisabled(page), [true, true, true, true, true, true]);
        assert.equal(await page.isDisabled("#connect"), false);
        assert.deepEqual(await titles(page, "error"), errors, "closing is a state, not errors");

        // A refused token: the closed state says why, once.
        await page.fill("#token", "not-a-jwt");
        await page.click("#connect");
        await page.waitForSelector(
          '#log li[data-kind="state"][data-level="bad"]:has-text("unauthorized")',
        );
        assert.equal(await page.locator('#log li:has-text("unauthorized")').count(), 1);
        assert.deepEqual(await titles(page, "error"), errors);
      });
    } finally {
      echo.unsubscribe();
    }
  },
});

Deno.test({
  name:
    "browser: reconnecting shows as a warning with forms disabled; capabilities logged on change only",
  ignore: !hasChromium,
  async fn() {
    await using stack = await consoleStack();
    await stack.setCaps("op", { subjects: ["chat.>"] });
    await withConsole(stack, async (page) => {
      const firstWho = await page.textContent("#who");
      assert.deepEqual(await titles(page, "caps"), ["capabilities"]);
      // The colour of the --warn custom property, resolved by the page itself.
      const warn = await page.evaluate(() => {
        const probe = document.createElement("span");
        probe.style.color = "var(--warn)";
        document.body.append(probe);
        const color = getComputedStyle(probe).color;
        probe.remove();
        return color;
      });
      const stateColor = () =>
        page.evaluate(() => getComputedStyle(document.getElementById("state")).color);
      assert.notEqual(await stateColor(), warn, "open is not a warning");

      const port = stack.gateway.addr.port;
      await stack.gateway.close();
      await page.waitForSelector('#state[data-state="reconnecting"]');
      assert.equal(await stateColor(), warn, "reconnecting is styled as a warning");
      assert.deepEqual(await formsDisabled(page), [true, true, true, true, true, true]);
      assert.equal(await page.isDisabled("#disconnect"), false, "a reconnect can be given up");
      const line = page.locator('#log li[data-kind="state"]:has-text("reconnecting")').first();
      assert.equal(await line.getAttribute("data-level"), "warn");
      assert.match(await line.textContent() ?? "", /1001/, "the line says why");

      stack.gateway = await stack.extraGateway({ port });
      await page.waitForSelector('#state[data-state="open"]');
      assert.notEqual(await page.textContent("#who"), firstWho, "a new session");
      assert.deepEqual(await formsDisabled(page), [false, false, false, false, false, false]);
      // The reconnect's cap_update is the same document: no second dump. A real change is
      // logged, and is the sentinel that the reconnect's update was processed before it.
      await stack.setCaps("op", { subjects: ["chat.>", "news.>"] });
      await page.waitForSelector('#log li[data-kind="caps"]:has-text("capabilities changed")');
      assert.deepEqual(await titles(page, "caps"), ["capabilities", "capabilities changed"]);
      assert.deepEqual(JSON.parse(await page.textContent("#caps") ?? "null"), {
        subjects: ["chat.>", "news.>"],
      });
      // Chromium logs each refused attempt itself: the socket's, and the SDK's HTTP probe for
      // the reason. When the gateway comes back between a failed socket and its probe, the probe
      // gets the gateway's ordinary 426 (no refusal: the SDK reconnects), which Chromium logs too.
    }, {
      as: "op",
      expectedErrors: new RegExp(
        "(WebSocket connection to .* failed: |Failed to load resource: ).*ERR_CONNECTION_REFUSED" +
          "|Failed to load resource: the server responded with a status of 426",
      ),
    });
  },
});

Deno.test({
  name: "browser: the log pauses, filters and keeps counting per subscription",
  ignore: !hasChromium,
  async fn() {
    await using stack = await consoleStack();
    await stack.setCaps("op", { subjects: ["chat.>"] });
    await withConsole(stack, async (page) => {
      for (const subject of ["chat.a.*", "chat.b.*"]) {
        await page.fill("#sub-subject", subject);
        await page.click("#sub-btn");
        await page.waitForSelector(`#log li[data-kind="info"]:has-text("sub ${subject}: ready")`);
      }
      const count = (target: string, n: number) =>
        page.waitForSelector(`#subs li[data-target="${target}"][data-count="${n}"]`);
      stack.nc.publish("chat.a.1", JSON.stringify({ n: "a1" }));
      stack.nc.publish("chat.b.1", JSON.stringify({ n: "b1" }));
      await count("chat.a.*", 1);
      await count("chat.b.*", 1);
      await page.waitForSelector('#log li[data-kind="msg"]:has-text("chat.b.1")');

      // Paused: messages are counted but the view holds still.
      await page.click("#log-pause");
      stack.nc.publish("chat.a.2", JSON.stringify({ n: "while paused" }));
      await count("chat.a.*", 2);
      assert.match(await page.textContent("#log-paused") ?? "", /paused · 1 new/);
      assert.equal(await page.locator('#log li:has-text("while paused")').count(), 0);
      await page.click("#log-pause");
      await page.waitForSelector('#log li[data-kind="msg"]:has-text("while paused")');
      assert.equal(await page.textContent("#log-paused"), "");

      // The filter shows only matching lines, of every kind; clearing it shows all again.
      await page.fill("#log-filter", "chat.b");
      await page.waitForFunction(() =>
        [...document.querySelectorAll("#log li")].every((li) => li.textContent!.includes("chat.b"))
      );
      assert.deepEqual(await titles(page, "msg"), ["chat.b.1"]);
      assert.deepEqual(await titles(page, "info"), ["sub chat.b.*: ready"]);
      await page.fill("#log-filter", "");
      await page.waitForFunction(() =>
        document.querySelectorAll('#log li[data-kind="msg"]').length === 3
      );
      assert.deepEqual(await titles(page, "msg"), ["chat.a.1", "chat.b.1", "chat.a.2"]);

      await page.click("#log-clear");
      assert.equal(await page.locator("#log li").count(), 0);
      assert.equal(await page.textContent("#log-count"), "0");
      stack.nc.publish("chat.b.2", JSON.stringify({ n: "after clear" }));
      await count("chat.b.*", 2);
      await page.waitForSelector('#log li[data-kind="msg"]:has-text("chat.b.2")');
    }, { as: "op" });
  },
});

Deno.test({
  name:
    "browser: a 20 000-message stream is followed to the end without the page's socket being cut",
  ignore: !hasChromium,
  async fn() {
    const N = 20_000;
    await using stack = await consoleStack();
    const jsm = await jetstreamManager(stack.nc);
    await jsm.streams.add({ name: "FLOOD", subjects: ["flood.>"] });
    const js = jetstream(stack.nc);
    const acks: Promise<unknown>[] = [];
    for (let i = 1; i <= N; i++) {
      const payload = { i, text: "x".repeat(100), nested: { list: [i, i + 1] } };
      acks.push(js.publish(`flood.${i % 10}`, JSON.stringify(payload)));
      if (acks.length === 500) await Promise.all(acks.splice(0));
    }
    await Promise.all(acks);
    await stack.setCaps("op", { streams: { FLOOD: [">"] } });
    await withConsole(stack, async (page) => {
      const who = await page.textContent("#who");
      await page.fill("#js-stream", "FLOOD");
      await page.selectOption("#js-deliver", "all");
      await page.click("#js-btn");
      await page.waitForSelector(`#subs li[data-kind="js"][data-count="${N}"]`, {
        timeout: 300_000,
      });
      const last = page.locator('#log li[data-kind="js"]').last();
      await last.locator(`.title:has-text("FLOOD #${N} ")`).waitFor();
      assert.deepEqual(JSON.parse(await last.locator("pre").textContent() ?? "null"), {
        i: N,
        text: "x".repeat(100),
        nested: { list: [N, N + 1] },
      });
      // The message ring holds the latest 1000; the lines from before the flood are all there,
      // and the connection never changed: one `open`, no reconnect, the same session.
      await page.waitForFunction(() =>
        document.querySelectorAll('#log li[data-kind="js"]').length === 1000
      );
      assert.equal(
        await page.locator('#log li[data-kind="js"]').first().locator(".title").textContent(),
        `FLOOD #${N - 999} flood.${(N - 999) % 10}`,
      );
      assert.deepEqual(await titles(page, "state"), ["open"]);
      assert.deepEqual(await titles(page, "caps"), ["capabilities"]);
      assert.deepEqual(await titles(page, "info"), ["js FLOOD >: ready"]);
      assert.deepEqual(await titles(page, "error"), []);
      assert.equal(await page.textContent("#state"), "open");
      assert.equal(await page.textContent("#who"), who, "same session: the socket was never cut");
      assert.equal(await page.textContent("#log-count"), String(N + 3));
    }, { as: "op" });
  },
});

Deno.test({
  name: "browser: the SDK imported from /client.js runs unchanged in the page",
  ignore: !hasChromium,
  async fn() {
    await using stack = await consoleStack();
    await stack.setCaps("u", { publish: ["chat.>"], subjects: ["chat.>"] });
    const token = await stack.token("u");
    const base = `http://127.0.0.1:${stack.gateway.addr.port}`;
    const got: string[] = [];
    const sub = stack.nc.subscribe("chat.from-browser", {
      callback: (_e, m) => {
        got.push(m.string());
      },
    });
    await stack.nc.flush();
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/`);
      const result = await page.evaluate(async (tok: string) => {
        const sdk = await import("/client.js");
        const client = await sdk.connect("/ws", { token: tok });
        const echoed = new Promise((resolve) => {
          const s = client.subscribe("chat.from-browser", (m: { payload: unknown }) => {
            resolve(m.payload);
            s.unsubscribe();
          });
          s.ready.then(() => client.publish("chat.from-browser", { from: "browser" }));
        });
        const payload = await echoed;
        let code = "";
        try {
          await client.request("svc.none", 1);
        } catch (err) {
          code = `${(err as { name: string }).name}:${(err as { code: string }).code}`;
        }
        const state = client.state;
        await client.close();
        return { payload, code, state, closed: client.state };
      }, token);
      assert.deepEqual(result, {
        payload: { from: "browser" },
        code: "ForbiddenError:forbidden",
        state: "open",
        closed: "closed",
      });
      assert.deepEqual(got, ['{"from":"browser"}']);
    } finally {
      await browser.close();
      sub.unsubscribe();
    }
  },
});
