/**
 * A real browser for the browser client's tests: Debian's `chromium` (or another
 * Chromium named by `CHROMIUM`), driven by npm `puppeteer-core` (no browser download).
 * Tests skip, saying why, when no Chromium can be found (`.ci/run` installs it).
 *
 * @module
 */

import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import type { ChatServer } from "../../server/server.ts";
import { testServer } from "./harness.ts";
import type { ChatClient, ChatEvent } from "../../client/chat_client.ts";

/** An element as the functions run in the page see it (they are typed without the DOM lib). */
export interface PageElement {
  textContent: string | null;
  scrollTop: number;
}

/** The page's `document`, for functions run in the page. */
export interface PageDocument {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { length: number };
}

// The functions given to waitForFunction and evaluate run in the page.
declare const document: PageDocument;

const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/** The Chromium executable, or null. */
export function findChromium(): string | null {
  const named = Deno.env.get("CHROMIUM");
  for (const path of named ? [named, ...CANDIDATES] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not there
    }
  }
  return null;
}

const CHROMIUM = findChromium();

/** Why the browser tests are skipped, or null when they run. */
export const BROWSER_SKIP: string | null = CHROMIUM === null
  ? "no Chromium found (/usr/bin/chromium; apt-get install chromium, or set CHROMIUM)"
  : null;
if (BROWSER_SKIP !== null) console.log(`browser tests skipped: ${BROWSER_SKIP}`);

/**
 * Registers a browser test: skipped (see {@linkcode BROWSER_SKIP}) when no Chromium is
 * found; without the op and resource sanitizers (the browser keeps its own).
 */
export function browserTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: BROWSER_SKIP !== null,
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}

/**
 * A browser test with a server serving the page (`webPort` 0) and a browser, both
 * closed after `fn` (terminal users it opens with `await using` close first).
 */
export function webTest(
  name: string,
  fn: (server: ChatServer, browser: Browser) => Promise<void>,
): void {
  browserTest(name, async () => {
    const server = await testServer({ webPort: 0 });
    const browser = await launchBrowser();
    try {
      await fn(server, browser);
    } finally {
      await browser.close();
      await server.shutdown();
    }
  });
}

/** Longest a test waits for something to show in the page. */
export const PAGE_WAIT_MS = 30_000;

/** Starts a headless Chromium (`--no-sandbox` when running as root). */
export function launchBrowser(): Promise<Browser> {
  const root = Deno.uid() === 0;
  return puppeteer.launch({
    executablePath: CHROMIUM!,
    headless: true,
    args: [
      "--headless=new",
      ...(root ? ["--no-sandbox"] : []),
      "--disable-dev-shm-usage",
      "--disable-gpu",
      "--no-first-run",
    ],
    timeout: 60_000,
    protocolTimeout: 120_000,
  });
}

/** The page's address on `server`. */
export function pageUrl(server: ChatServer, host = "127.0.0.1"): string {
  return `http://${host}:${server.webAddr!.port}/`;
}

/** A page that fails the test on any dialog (alert, confirm, prompt) and records errors. */
export async function openPage(
  browser: Pick<Browser, "newPage">,
  url: string,
  viewport = { width: 1100, height: 700 },
): Promise<Page & { dialogs: string[]; errors: string[] }> {
  const page = await browser.newPage() as Page & { dialogs: string[]; errors: string[] };
  page.dialogs = [];
  page.errors = [];
  page.on("dialog", (dialog) => {
    page.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on("pageerror", (err) => page.errors.push(String(err)));
  page.setDefaultTimeout(PAGE_WAIT_MS);
  await page.setViewport(viewport);
  await page.goto(url, { waitUntil: "load" });
  return page;
}

/** A page opened by {@linkcode openPage}. */
export type TestPage = Awaited<ReturnType<typeof openPage>>;

/** Registers (or logs in) `nick` in the page and waits for the chat view. */
export async function logInPage(page: Page, nick: string, register = true): Promise<void> {
  await page.type("#login-nick", nick);
  await page.type("#login-password", "password123");
  await page.click(register ? "#register-button" : "#login-button");
  await page.waitForSelector("#chat-view:not([hidden])");
  await page.waitForFunction(() => document.querySelector("#status.online") !== null);
}

/** Waits until a message with exactly `text` is shown in the open conversation. */
export async function waitForMessage(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (t: string) =>
      [...document.querySelectorAll("#message-list .text")].some((e) => e.textContent === t),
    { timeout: PAGE_WAIT_MS },
    text,
  );
}

/** The texts of the messages shown in the open conversation, in order. */
export function shownMessages(page: Page): Promise<string[]> {
  return page.$$eval("#message-list .text", (nodes) => nodes.map((n) => n.textContent ?? ""));
}

/** Sends `text` from the page's composer. */
export async function sendFromPage(page: Page, text: string): Promise<void> {
  await page.type("#composer-input", text);
  await page.click("#composer button[type=submit]");
}

/** Opens a conversation from the sidebar (`room` or `dm` list). */
export async function openConversation(
  page: Page,
  kind: "room" | "dm",
  name: string,
): Promise<void> {
  const selector = `#${kind}-list li[data-name="${name}"] button`;
  await page.waitForSelector(selector);
  await page.click(selector);
  await page.waitForFunction(
    (title: string) => document.querySelector("#conversation-title")?.textContent === title,
    {},
    `${kind === "room" ? "#" : "@"}${name}`,
  );
}

/** The README's screenshots, written by the browser tests only when asked (see below). */
export const DOCS_DIR = new URL("../../docs/", import.meta.url);

/**
 * The environment variable that has the browser tests write their screenshots into docs/
 * (the README's images): `deno task screenshots` sets it. Otherwise they go to a temporary
 * folder of the test process, removed when it ends: a test never writes into the repository.
 */
export const DOCS_SCREENSHOTS_ENV = "CHAT_DOCS_SCREENSHOTS";

/** Whether this process writes screenshots into docs/ ({@linkcode DOCS_SCREENSHOTS_ENV} is 1). */
export function screenshotsToDocs(): boolean {
  return Deno.env.get(DOCS_SCREENSHOTS_ENV) === "1";
}

let scratchScreenshots: string | null = null;

/** This process's folder for screenshots not asked for in docs/ (made at the first use). */
function screenshotFolder(): string {
  if (screenshotsToDocs()) return DOCS_DIR.pathname;
  if (scratchScreenshots === null) {
    const dir = Deno.makeTempDirSync({ prefix: "chat-screenshots-" });
    scratchScreenshots = dir;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // gone already
      }
    });
  }
  return scratchScreenshots;
}

/**
 * Takes a screenshot of `page` named `name`: into docs/ when {@linkcode DOCS_SCREENSHOTS_ENV}
 * is 1, into a temporary folder otherwise (the page is still drawn, and a failure to draw it
 * still fails the test). Returns the path written.
 *
 * @example
 * ```ts ignore
 * const path = await screenshotToDocs(page, "web-room.png"); // docs/web-room.png when asked
 * ```
 */
export async function screenshotToDocs(
  page: { screenshot(options: object): Promise<unknown> },
  name: string,
): Promise<string> {
  const dir = screenshotFolder();
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await page.screenshot({ path });
  return path;
}

/** Waits (up to `ms`) for the first event of `client` that `match` accepts. */
export async function nextClientEvent(
  client: ChatClient,
  match: (event: ChatEvent) => boolean,
  ms = PAGE_WAIT_MS,
): Promise<ChatEvent> {
  const events = client.events[Symbol.asyncIterator]();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error("timed out waiting for an event")), ms)
  );
  try {
    while (true) {
      const { value, done } = await Promise.race([events.next(), timeout]);
      if (done) throw new Error("the client's events ended");
      if (match(value)) return value;
    }
  } finally {
    clearTimeout(timer);
  }
}
