import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ensureGuest } from "../../../guests/src/index";
import { type ExampleServer, serveExample } from "../src/serve";

const artifacts = join(import.meta.dirname, "../../../test-artifacts");
let browser: BrowserContext;
let userDataDir: string;
const servers: ExampleServer[] = [];
type Kumo = { rowsOnScreen: () => string[] };

beforeAll(async () => {
  // Building the guest on a cold cache takes minutes: a hook has the longer timeout.
  await ensureGuest("i386", { progress: false });
  execFileSync(process.execPath, [join(import.meta.dirname, "../build.mjs")]);
  userDataDir = mkdtempSync(join(tmpdir(), "kumo-chromium-"));
  // A fresh profile per run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1000, height: 760 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  for (const server of servers) await server.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** The terminal's rows as xterm.js's DOM renderer shows them (runs in the page). */
function rowsOnScreen(): string[] {
  return [...document.querySelectorAll(".xterm-rows > div")].map((row) =>
    (row.textContent ?? "").replace(/\u00a0/g, " ").trimEnd(),
  );
}

test("boots to the shell prompt in headless Chromium, answers uname -m with i686", async () => {
  const server = await serveExample();
  servers.push(server);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(server.url);
  expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
  await page.addScriptTag({ content: `globalThis.rowsOnScreen = ${rowsOnScreen}` });
  const screen = () => page.evaluate(() => (globalThis as unknown as Kumo).rowsOnScreen());
  // The busybox shell's prompt is "~ # " (guests/README.md).
  await page.waitForFunction(
    () => (globalThis as unknown as Kumo).rowsOnScreen().includes("~ #"),
    undefined,
    { timeout: 280_000, polling: 500 },
  );
  await page.click("#terminal");
  await page.keyboard.type("uname -m\n");
  await page.waitForFunction(
    () => (globalThis as unknown as Kumo).rowsOnScreen().includes("i686"),
    undefined,
    { timeout: 60_000, polling: 250 },
  );
  const rows = await screen();
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "browser-example.png"), fullPage: true });
  const command = rows.indexOf("~ # uname -m");
  expect(command).toBeGreaterThanOrEqual(0);
  expect(rows[command + 1]).toBe("i686");
  expect(await page.textContent("#status")).toContain("SharedArrayBuffer");
  expect(errors).toEqual([]);
}, 360_000);

test("without COOP/COEP the page is not isolated and guest RAM is an ArrayBuffer", async () => {
  const server = await serveExample({ isolated: false });
  servers.push(server);
  const page = await browser.newPage();
  await page.goto(server.url);
  expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(false);
  await page.waitForFunction(
    () => document.getElementById("status")?.textContent?.includes("guest RAM in "),
    undefined,
    { timeout: 60_000 },
  );
  expect(await page.textContent("#status")).toMatch(/guest RAM in an ArrayBuffer/);
  await page.close();
}, 120_000);
