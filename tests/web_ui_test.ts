/**
 * The browser client's views in a real browser (headless Chromium through
 * puppeteer-core): notifications of direct messages and mentions while the tab is in the
 * background; the sidebar (unread counts, join, create and leave rooms, topics, who is
 * online); a phone-sized layout in light and dark (screenshots written to docs/ by `deno task screenshots`).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { ChatClient } from "../client/chat_client.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import {
  browserTest,
  launchBrowser,
  logInPage,
  nextClientEvent,
  openConversation,
  openPage,
  pageUrl,
  screenshotToDocs,
  sendFromPage,
  waitForMessage,
  webTest,
} from "./helpers/browser.ts";
import type { PageDocument, TestPage } from "./helpers/browser.ts";
import { connectClient, testServer } from "./helpers/harness.ts";

// The functions given to waitForFunction and evaluate run in the page.
declare const document: PageDocument & {
  dispatchEvent(event: unknown): boolean;
  documentElement: { scrollWidth: number };
};
declare const window: Record<string, unknown> & {
  getComputedStyle(e: unknown): { [k: string]: string };
};
declare const Notification: { permission: string };
declare class Event {
  constructor(type: string);
}

type Page = TestPage;

/**
 * Runs in the page before its script: records every notification it creates (the real
 * one is still created) and lets the test say whether the tab is in the background.
 */
function watchNotifications(): void {
  const page = window as Record<string, unknown>;
  const notes: { title: string; body: string }[] = [];
  page.testNotes = notes;
  page.testHidden = false;
  const Real = page.Notification as new (title: string, options?: { body?: string }) => object;
  page.Notification = class extends Real {
    constructor(title: string, options?: { body?: string }) {
      super(title, options);
      notes.push({ title, body: options?.body ?? "" });
    }
  };
  const doc = document as unknown as object;
  Object.defineProperty(doc, "hidden", { get: () => page.testHidden === true });
  Object.defineProperty(doc, "visibilityState", {
    get: () => page.testHidden === true ? "hidden" : "visible",
  });
}

/** Puts the tab in the background (or back), as the browser would say it. */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((h: boolean) => {
    window.testHidden = h;
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

function notes(page: Page): Promise<{ title: string; body: string }[]> {
  return page.evaluate(() => window.testNotes as { title: string; body: string }[]);
}

async function waitNotes(page: Page, count: number): Promise<void> {
  await page.waitForFunction(
    (n: number) => (window.testNotes as unknown[]).length >= n,
    {},
    count,
  );
}

webTest(
  "web ui: notifications of direct messages, mentions and file offers while the tab is in the background, asked on a click",
  async (server, browser) => {
    const context = await browser.createBrowserContext();
    const page = await context.newPage() as Page;
    page.errors = [];
    page.dialogs = [];
    page.on("pageerror", (err) => page.errors.push(String(err)));
    await page.evaluateOnNewDocument(watchNotifications);
    await page.goto(pageUrl(server), { waitUntil: "load" });
    await logInPage(page, "alice");
    // Not asked yet: the button asks, on the user's click.
    assert.equal(await page.evaluate(() => Notification.permission), "default");
    await page.waitForSelector("#notify-button:not([hidden])");
    await context.overridePermissions(pageUrl(server).replace(/\/$/, ""), ["notifications"]);
    await page.click("#notify-button");
    await page.waitForSelector("#notify-button[hidden]");
    assert.equal(await page.evaluate(() => Notification.permission), "granted");

    await using bob = await connectClient(server, "bob");
    // In the foreground: nothing is notified.
    await bob.dm("alice", "seen in the foreground");
    await page.waitForSelector('#dm-list li[data-name="bob"] .badge');
    await setHidden(page, true);
    await bob.say("lobby", "no mention here");
    await bob.dm("alice", "psst, in the background");
    await waitNotes(page, 1);
    await bob.say("lobby", "hey @alice, look at this");
    await waitNotes(page, 2);
    await bob.say("lobby", "alicent is another name"); // a longer word is no mention
    await bob.say("lobby", "ALICE: and in capitals");
    await waitNotes(page, 3);
    // A file offered in the background is notified like a direct message.
    const tmp = await Deno.makeTempDir();
    const files = new FileTransfers(bob, { onEvent: () => {} });
    try {
      const path = join(tmp, "minutes.txt");
      await Deno.writeTextFile(path, "the minutes of the meeting\n");
      await files.send("alice", path);
      await waitNotes(page, 4);
    } finally {
      await files.close();
      await Deno.remove(tmp, { recursive: true });
    }
    assert.deepEqual(await notes(page), [
      { title: "bob (direct message)", body: "psst, in the background" },
      { title: "bob in #lobby", body: "hey @alice, look at this" },
      { title: "bob in #lobby", body: "ALICE: and in capitals" },
      { title: "bob (file)", body: "offers you minutes.txt" },
    ]);
    // Back in the foreground: nothing more.
    await setHidden(page, false);
    await bob.dm("alice", "back in the foreground");
    await openConversation(page, "dm", "bob");
    await waitForMessage(page, "back in the foreground");
    assert.equal((await notes(page)).length, 4);
    assert.deepEqual(page.errors, []);
  },
);

/** The unread badge of a sidebar entry ("" when none). */
function badge(page: Page, kind: "room" | "dm", name: string): Promise<string> {
  return page.evaluate(
    (selector: string) => document.querySelector(selector)?.textContent ?? "",
    `#${kind}-list li[data-name="${name}"] .badge`,
  );
}

browserTest(
  "web ui: unread counts, create, join and leave rooms, topics and who is online in the sidebar",
  async () => {
    const server = await testServer({ webPort: 0 });
    const browser = await launchBrowser();
    let bob: ChatClient | null = null;
    try {
      const page = await openPage(browser, pageUrl(server));
      await logInPage(page, "alice");
      // Who is online: bob comes and goes.
      bob = await connectClient(server, "bob");
      await page.waitForSelector('#online-list button[title="message bob"]');
      await page.waitForFunction(() =>
        document.querySelector("#online-count")?.textContent === "2"
      );

      // Create a room from the page, with a topic set by a command; bob sees both.
      await page.type("#join-room", "design");
      await page.click("#join-form button");
      await page.waitForFunction(() =>
        document.querySelector("#conversation-title")?.textContent === "#design"
      );
      await bob.join("design");
      const topicSeen = nextClientEvent(bob, (e) => e.type === "topic" && e.room === "design");
      await sendFromPage(page, "/topic mockups & <reviews>");
      await topicSeen;
      await page.waitForFunction(() =>
        document.querySelector("#conversation-topic")?.textContent === "mockups & <reviews>"
      );
      // A topic bob sets shows too.
      await bob.topic("design", "mockups, then reviews");
      await page.waitForFunction(() =>
        document.querySelector("#conversation-topic")?.textContent === "mockups, then reviews"
      );

      // Unread counts: messages in a room not on screen count until it is opened.
      await bob.say("lobby", "one");
      await bob.say("lobby", "two");
      await page.waitForFunction(() =>
        document.querySelector('#room-list li[data-name="lobby"] .badge')?.textContent === "2"
      );
      await bob.dm("alice", "a direct one");
      await page.waitForFunction(() =>
        document.querySelector('#dm-list li[data-name="bob"] .badge')?.textContent === "1"
      );
      assert.equal(await badge(page, "room", "design"), "");
      await openConversation(page, "room", "lobby");
      await waitForMessage(page, "two");
      assert.equal(await badge(page, "room", "lobby"), "");
      assert.equal(await badge(page, "dm", "bob"), "1");

      // Join an existing room by name (the /join command), then leave it with the button.
      await bob.join("ops");
      await bob.say("ops", "ops history line");
      await sendFromPage(page, "/join #ops");
      await waitForMessage(page, "ops history line");
      await page.waitForSelector('#room-list li[data-name="ops"]');
      const left = nextClientEvent(
        bob,
        (e) => e.type === "member" && e.room === "ops" && e.nick === "alice" && !e.joined,
      );
      await page.click("#leave-button");
      await left;
      await page.waitForFunction(() =>
        document.querySelector('#room-list li[data-name="ops"]') === null
      );
      assert.deepEqual(
        (await bob.request("members", { room: "ops" })).members.map((m) => m.nick),
        ["bob"],
      );

      // Bob leaves: gone from the online list.
      await bob.close();
      bob = null;
      await page.waitForFunction(() =>
        document.querySelector('#online-list button[title="message bob"]') === null
      );
      await page.waitForFunction(() =>
        document.querySelector("#online-count")?.textContent === "1"
      );
      assert.deepEqual(page.errors, []);
    } finally {
      await bob?.close();
      await browser.close();
      await server.shutdown();
    }
  },
);

/** The page's background color, as computed. */
function background(page: Page): Promise<string> {
  return page.evaluate(() =>
    window.getComputedStyle(document.querySelector("body")).backgroundColor
  );
}

webTest(
  "web ui: readable on a phone (390x844), light and dark by the system setting",
  async (server, browser) => {
    await using bob = await connectClient(server, "bob");
    await bob.topic("lobby", "Welcome! Be kind.");
    await bob.say(
      "lobby",
      "a line long enough to wrap on a phone's narrow screen, not to scroll sideways",
    );
    const page = await openPage(browser, pageUrl(server), { width: 390, height: 844 });
    const viewport = await page.$eval(
      'meta[name="viewport"]',
      (e) => (e as unknown as { content: string }).content,
    );
    assert.match(viewport, /width=device-width/);
    await logInPage(page, "alice");
    await bob.dm("alice", "hello on the phone");
    await page.waitForSelector('#dm-list li[data-name="bob"] .badge');
    const sideways = () => page.evaluate(() => document.documentElement.scrollWidth);

    // One column: the lists first, then the conversation over the whole screen.
    await page.click("#back-button");
    await page.waitForSelector("#sidebar", { visible: true });
    assert.ok(await sideways() <= 390, "nothing wider than the screen");
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);
    await screenshotToDocs(page, "web-phone-list.png");
    await openConversation(page, "room", "lobby");
    await page.waitForSelector("#sidebar", { hidden: true });
    await waitForMessage(
      page,
      "a line long enough to wrap on a phone's narrow screen, not to scroll sideways",
    );
    assert.ok(await sideways() <= 390, "nothing wider than the screen");
    const light = await background(page);
    await screenshotToDocs(page, "web-phone-light.png");

    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
    const dark = await background(page);
    await screenshotToDocs(page, "web-phone-dark.png");
    assert.equal(light, "rgb(255, 255, 255)");
    assert.equal(dark, "rgb(22, 24, 29)");
    assert.deepEqual(page.errors, []);
  },
);
