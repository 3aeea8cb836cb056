/** The console page and the SDK in a real Chromium, driven by playwright-core (no browser download).
 * Skipped, saying so, when /usr/bin/chromium is missing; CI installs Debian's chromium.
 * @module */

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { consoleHandler } from "../src/server/static_assets.ts";
import { Stack } from "./_harness.ts";

const CHROMIUM = "/usr/bin/chromium";

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

Deno.test({
  name: "browser: the console connects with a pasted token, subscribes and shows a message",
  ignore: !hasChromium,
  async fn() {
    const httpHandler = consoleHandler({ console: true });
    await using stack = await Stack.start({ gateway: { httpHandler } });
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
    const base = `http://127.0.0.1:${stack.gateway.addr.port}`;
    const dir = await Deno.makeTempDir({ prefix: "natsgate_browser_" });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    const pageErrors: string[] = [];
    let page;
    try {
      const context = await browser.newContext();
      page = await context.newPage();
      page.on("pageerror", (err) => pageErrors.push(String(err)));
      page.on("console", (msg) => {
        if (msg.type() === "error") pageErrors.push(msg.text());
      });
      await page.goto(`${base}/`);
      assert.equal(await page.title(), "natsgate console");
      assert.equal(await page.inputValue("#url"), `ws://127.0.0.1:${stack.gateway.addr.port}/ws`);

      await page.fill("#token", token);
      await page.click("#connect");
      await page.waitForSelector('#state[data-state="open"]');
      assert.equal(await page.textContent("#state"), "open");
      const caps = JSON.parse(await page.textContent("#caps") ?? "null");
      assert.deepEqual(caps, { subjects: ["chat.>"], commands: ["svc.>"] });
      assert.match(await page.textContent("#who") ?? "", /user operator-view/);

      await page.fill("#sub-subject", "chat.room.*");
      await page.click("#sub-btn");
      await page.waitForSelector('#log li[data-kind="info"]:has-text("sub chat.room.*: ready")');
      assert.equal(await page.locator('#subs li[data-kind="core"]').count(), 1);

      stack.nc.publish("chat.room.7", JSON.stringify({ text: "hello from NATS <b>" }));
      const entry = page.locator('#log li[data-kind="msg"]').first();
      await entry.waitFor();
      assert.match(await entry.textContent() ?? "", /chat\.room\.7/);
      const body = JSON.parse(await entry.locator("pre").textContent() ?? "null");
      assert.deepEqual(body, { text: "hello from NATS <b>" });
      assert.equal(await page.locator("#log b").count(), 0, "payloads are text, never markup");

      // A request from the form, and a forbidden one showing its error code.
      await page.fill("#req-subject", "svc.echo");
      await page.fill("#req-payload", '{"n": 1}');
      await page.click("#req-btn");
      const reply = page.locator('#log li[data-kind="reply"]').first();
      await reply.waitFor();
      assert.deepEqual(JSON.parse(await reply.locator("pre").textContent() ?? "null"), {
        echoed: { n: 1 },
      });
      await page.fill("#req-subject", "chat.room.7");
      await page.click("#req-btn");
      await page.waitForSelector('#log li[data-kind="error"]:has-text("forbidden")');

      await page.click("#disconnect");
      await page.waitForSelector('#state[data-state="closed"]');
      assert.deepEqual(pageErrors, []);
    } catch (err) {
      if (page) {
        const shot = `${dir}/console-failure.png`;
        await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
        console.error(`browser test failed; screenshot: ${shot}`);
      }
      throw err;
    } finally {
      await browser.close();
      echo.unsubscribe();
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "browser: the SDK imported from /client.js runs unchanged in the page",
  ignore: !hasChromium,
  async fn() {
    const httpHandler = consoleHandler({ console: true });
    await using stack = await Stack.start({ gateway: { httpHandler } });
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
        code: "NatsgateError:forbidden",
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
