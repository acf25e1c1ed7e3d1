/**
 * The browser client in a real browser (headless Chromium through puppeteer-core):
 * a browser user and a terminal user (the client library) talk both ways, markup in a
 * message stays text and runs nothing, history loads as the view scrolls up, the page
 * resumes after the server restarts, and a page from another origin is refused.
 * Screenshots of the main views are taken (into docs/ only by `deno task screenshots`), and
 * taking them leaves the repository as it is.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { ChatClient } from "../client/chat_client.ts";
import {
  BROWSER_SKIP,
  browserTest,
  DOCS_DIR,
  launchBrowser,
  logInPage,
  nextClientEvent,
  openConversation,
  openPage,
  pageUrl,
  screenshotToDocs,
  sendFromPage,
  shownMessages,
  waitForMessage,
  webTest,
} from "./helpers/browser.ts";
import { connectClient, testServer } from "./helpers/harness.ts";
import { reservePorts } from "./helpers/ports.ts";
import type { PageDocument } from "./helpers/browser.ts";

// The functions given to waitForFunction and evaluate run in the page.
declare const document: PageDocument;

webTest(
  "web browser: a browser user and a terminal user exchange room messages and direct messages",
  async (server, browser) => {
    await using bob = await connectClient(server, "bob");
    await bob.join("lobby").catch(() => {});
    await bob.topic("lobby", "Welcome! Be kind.");
    await bob.say("lobby", "hi, anyone on the web?");
    const page = await openPage(browser, pageUrl(server));
    // Logging in to an account that does not exist says so; registering is one click.
    await page.type("#login-nick", "alice");
    await page.type("#login-password", "password123");
    await page.click("#login-button");
    await page.waitForFunction(() =>
      (document.querySelector("#login-error")?.textContent ?? "").startsWith("No account")
    );
    await screenshotToDocs(page, "web-login.png");
    await page.click("#register-button");
    await page.waitForSelector("#chat-view:not([hidden])");
    await waitForMessage(page, "hi, anyone on the web?");

    // Room: browser -> terminal, terminal -> browser.
    const heard = nextClientEvent(
      bob,
      (e) => e.type === "msg" && e.text === "hello from the browser",
    );
    await sendFromPage(page, "hello from the browser");
    await heard;
    await bob.say("lobby", "hello back from the terminal");
    await waitForMessage(page, "hello back from the terminal");
    await bob.say("lobby", "the page renders everything as text, even *this*");
    await waitForMessage(page, "the page renders everything as text, even *this*");
    await page.waitForFunction(() =>
      document.querySelector("#conversation-topic")?.textContent === "Welcome! Be kind."
    );
    await page.waitForSelector('#online-list button[title="message bob"]');
    await screenshotToDocs(page, "web-room.png");

    // Direct messages: terminal -> browser (unread badge), browser -> terminal.
    await bob.dm("alice", "psst, a direct message");
    await page.waitForSelector('#dm-list li[data-name="bob"] .badge');
    await openConversation(page, "dm", "bob");
    await waitForMessage(page, "psst, a direct message");
    const dm = nextClientEvent(
      bob,
      (e) => e.type === "dm" && e.text === "got it, replying in private",
    );
    await sendFromPage(page, "got it, replying in private");
    const received = await dm;
    assert.equal((received as { from: string }).from, "alice");
    await screenshotToDocs(page, "web-dm.png");

    // Creating a room from the page; the terminal user joins and hears it.
    await page.type("#join-room", "web-team");
    await page.click("#join-form button");
    await page.waitForFunction(() =>
      document.querySelector("#conversation-title")?.textContent === "#web-team"
    );
    await bob.join("web-team");
    const inRoom = nextClientEvent(
      bob,
      (e) => e.type === "msg" && e.text === "first in web-team",
    );
    await sendFromPage(page, "first in web-team");
    await inRoom;

    // Phone-sized and dark: the sidebar first, then the conversation.
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
    // (isMobile would reload the page: the width is what the layout follows.)
    await page.setViewport({ width: 390, height: 760 });
    await page.click("#back-button");
    await openConversation(page, "room", "lobby");
    // (The phone screenshots, light and dark at 390x844: tests/web_ui_test.ts.)
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
  },
);

webTest(
  "web browser: a burst of room messages, many to a WebSocket message, shows complete and in order",
  async (server, browser) => {
    await using bob = await connectClient(server, "bob");
    const page = await openPage(browser, pageUrl(server));
    // The WebSocket messages the page receives, counted by the browser itself.
    const cdp = await page.createCDPSession();
    await cdp.send("Network.enable");
    let received = 0;
    cdp.on("Network.webSocketFrameReceived", () => received++);
    await logInPage(page, "alice");
    await bob.say("lobby", "before the burst");
    await waitForMessage(page, "before the burst");
    const before = received;
    const texts = Array.from({ length: 300 }, (_, i) => `burst ${i} ${"x".repeat(900)}`);
    await Promise.all(texts.map((text) => bob.say("lobby", text)));
    await waitForMessage(page, texts.at(-1)!);
    const shown = await shownMessages(page);
    assert.deepEqual(shown.filter((text) => text.startsWith("burst ")), texts);
    // Several frames to a message: the page split each into its events.
    assert.ok(received - before < texts.length, `${received - before} messages for 300 frames`);
    assert.deepEqual(page.errors, []);
  },
);

webTest(
  "web browser: markup in messages and topics shows as text and runs nothing",
  async (server, browser) => {
    await using mallory = await connectClient(server, "mallory");
    const img = `<img src=x onerror="window.pwned=1;alert('img')">`;
    const script = `<script>window.pwned=2;alert('script')</script>`;
    const topic = `<b onmouseover="alert('topic')">bold?</b>`;
    await mallory.topic("lobby", topic);
    await mallory.say("lobby", img);
    await mallory.say("lobby", script);
    const page = await openPage(browser, pageUrl(server));
    await logInPage(page, "alice");
    await waitForMessage(page, img);
    await waitForMessage(page, script);
    await mallory.dm("alice", img);
    await openConversation(page, "dm", "mallory");
    await waitForMessage(page, img);
    await openConversation(page, "room", "lobby");
    await page.waitForFunction(
      (t: string) => document.querySelector("#conversation-topic")?.textContent === t,
      {},
      topic,
    );
    const injected = await page.evaluate(() => ({
      pwned: (window as unknown as { pwned?: number }).pwned ?? null,
      images: document.querySelectorAll("#chat-view img").length,
      scripts: document.querySelectorAll("body script").length,
      bold: document.querySelectorAll("#chat-view b").length,
    }));
    assert.deepEqual(injected, { pwned: null, images: 0, scripts: 0, bold: 0 });
    assert.deepEqual(page.dialogs, []);
  },
);

browserTest("web browser: older history loads as the view scrolls up", async () => {
  const server = await testServer({ webPort: 0 });
  const browser = await launchBrowser();
  const bob = await connectClient(server, "bob");
  try {
    const total = 130;
    for (let i = 1; i <= total; i++) await bob.say("lobby", `line ${i}`);
    const page = await openPage(browser, pageUrl(server));
    await logInPage(page, "alice");
    await waitForMessage(page, `line ${total}`);
    const first = await shownMessages(page);
    assert.ok(first.length < total, `only a page at first, not ${first.length}`);
    assert.ok(!first.includes("line 1"));
    // Scroll to the top until the first line is there: each scroll loads a page.
    const deadline = Date.now() + 60_000;
    while (!(await shownMessages(page)).includes("line 1")) {
      assert.ok(Date.now() < deadline, "line 1 never loaded");
      await page.evaluate(() => document.querySelector("#messages")!.scrollTop = 0);
      await page.waitForFunction(() =>
        document.querySelector("#history-status")?.textContent !== "Loading older messages…"
      );
    }
    const all = await shownMessages(page);
    assert.deepEqual(all, Array.from({ length: total }, (_, i) => `line ${i + 1}`));
    await page.waitForFunction(() =>
      document.querySelector("#history-status")?.textContent === "Beginning of the conversation."
    );
  } finally {
    await bob.close();
    await browser.close();
    await server.shutdown();
  }
});

browserTest(
  "web browser: the page resumes after the server restarts, nothing lost or doubled",
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "chat-web-restart-" });
    const browser = await launchBrowser();
    // Reserved against the other test files, so that the restart below can have them again.
    using reserved = reservePorts(2);
    const ports = { port: reserved.port, webPort: reserved.port + 1 };
    let server = await testServer({ dataDir, ...ports, drainWindowMs: 0 });
    let bob: ChatClient | null = null;
    try {
      const page = await openPage(browser, pageUrl(server));
      await logInPage(page, "alice");
      bob = await connectClient(server, "bob");
      await bob.say("lobby", "before the restart");
      await waitForMessage(page, "before the restart");
      await bob.close();
      bob = null;

      await server.shutdown();
      await page.waitForFunction(() => document.querySelector("#status.online") === null);
      // The page stays offline (the browser's network emulation) while the server restarts:
      // what is said meanwhile can only reach the page through the catch-up (sync).
      await page.setOfflineMode(true);
      // Written while the server is down: sent once the page is back.
      await sendFromPage(page, "typed while the server was down");
      server = await testServer({ dataDir, ...ports, drainWindowMs: 0 });
      bob = await connectClient(server, "bob");
      await bob.say("lobby", "said during the page's reconnect");
      await page.setOfflineMode(false);
      await page.waitForFunction(() => document.querySelector("#status.online") !== null, {
        timeout: 60_000,
      });
      await waitForMessage(page, "said during the page's reconnect");
      await waitForMessage(page, "typed while the server was down");
      await bob.say("lobby", "after the restart");
      await waitForMessage(page, "after the restart");
      const shown = await shownMessages(page);
      for (
        const text of [
          "before the restart",
          "typed while the server was down",
          "said during the page's reconnect",
          "after the restart",
        ]
      ) {
        assert.equal(shown.filter((t) => t === text).length, 1, `"${text}" shown once`);
      }
      const history = await bob.history({ room: "lobby", limit: 50 });
      const stored = history.messages.filter((m) => m.text === "typed while the server was down");
      assert.equal(stored.length, 1, "the message typed while down is stored once");
    } finally {
      await bob?.close();
      await browser.close();
      await server.shutdown();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);

browserTest("web browser: a page from another origin cannot open the WebSocket", async () => {
  const server = await testServer({ webPort: 0 });
  const browser = await launchBrowser();
  try {
    // A page of another site (another port on this machine: another origin, and a
    // loopback one, which the browser lets talk to loopback) opens a WebSocket to the
    // chat server.
    await using other = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () => new Response("<p>another site</p>", { headers: { "content-type": "text/html" } }),
    );
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${other.addr.port}/`, { waitUntil: "load" });
    const before = server.hub.metrics.counters.connectionsAccepted;
    const outcome = await page.evaluate((url: string) =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(url);
        socket.onopen = () => resolve("open");
        socket.onerror = () => resolve("refused");
      }), `ws://127.0.0.1:${server.webAddr!.port}/ws`);
    assert.equal(outcome, "refused");
    assert.equal(server.hub.metrics.counters.connectionsAccepted, before);
    // The same socket from the page's own origin opens.
    const own = await browser.newPage();
    await own.goto(pageUrl(server), { waitUntil: "load" });
    const ownOutcome = await own.evaluate((url: string) =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(url);
        socket.onopen = () => resolve("open");
        socket.onerror = () => resolve("refused");
      }), `ws://127.0.0.1:${server.webAddr!.port}/ws`);
    assert.equal(ownOutcome, "open");
  } finally {
    await browser.close();
    await server.shutdown();
  }
});

webTest(
  "web browser: two browser users: direct messages with receipts, block and unblock",
  async (server, browser) => {
    const alice = await openPage(browser, pageUrl(server));
    await logInPage(alice, "alice");
    const carolContext = await browser.createBrowserContext();
    const carol = await openPage(carolContext, pageUrl(server));
    await logInPage(carol, "carol");
    await alice.waitForSelector('#online-list button[title="message carol"]');
    await alice.click('#online-list button[title="message carol"]');
    await sendFromPage(alice, "hi carol, from one browser to another");
    // Delivered at once (carol is online), read once carol opens the conversation.
    await alice.waitForSelector("#message-list .receipt.delivered");
    await carol.waitForSelector('#dm-list li[data-name="alice"] .badge');
    await openConversation(carol, "dm", "alice");
    await waitForMessage(carol, "hi carol, from one browser to another");
    await alice.waitForSelector("#message-list .receipt.read");
    await sendFromPage(carol, "hello alice");
    await waitForMessage(alice, "hello alice");

    // Carol blocks alice: alice's next message is refused, and gets through after the unblock.
    await carol.click("#block-button");
    await carol.waitForFunction(() =>
      document.querySelector("#block-button")?.textContent === "Unblock"
    );
    await sendFromPage(alice, "are you there?");
    await alice.waitForFunction(() =>
      (document.querySelector("#notice")?.textContent ?? "").includes("blocked")
    );
    await carol.click("#block-button");
    await carol.waitForFunction(() =>
      document.querySelector("#block-button")?.textContent === "Block"
    );
    await sendFromPage(alice, "and now?");
    await waitForMessage(carol, "and now?");
    assert.deepEqual(await shownMessages(carol), [
      "hi carol, from one browser to another",
      "hello alice",
      "and now?",
    ]);
    assert.deepEqual([...alice.dialogs, ...carol.dialogs], []);
  },
);

// (Read here, not from the helper, so that this test also runs against the helper before
// screenshots went to a temporary folder, and fails there.)
const docsAsked = Deno.env.get("CHAT_DOCS_SCREENSHOTS") === "1";
if (docsAsked) {
  console.log(`screenshot test skipped: CHAT_DOCS_SCREENSHOTS=1 asks for screenshots in docs/`);
}

Deno.test({
  name:
    "web browser: a test's screenshot goes to a temporary folder, never into the repository's docs/",
  ignore: BROWSER_SKIP !== null || docsAsked,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const docsFile = new URL("web-room.png", DOCS_DIR);
    const fingerprint = async () => {
      const info = await Deno.stat(docsFile);
      const digest = createHash("sha256").update(await Deno.readFile(docsFile)).digest("hex");
      return { mtime: info.mtime?.getTime(), size: info.size, digest };
    };
    const before = await fingerprint();
    const server = await testServer({ webPort: 0 });
    const browser = await launchBrowser();
    try {
      const page = await openPage(browser, pageUrl(server));
      await page.waitForSelector("#login-nick");
      const written = await screenshotToDocs(page, "web-room.png");
      assert.deepEqual(await fingerprint(), before, "docs/web-room.png is left as it was");
      assert.equal(typeof written, "string", "the screenshot's path is returned");
      const root = new URL("../", import.meta.url).pathname;
      assert.ok(!written.startsWith(root), `${written} is outside the repository (${root})`);
      const png = await Deno.readFile(written);
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], "a PNG was written");
    } finally {
      await browser.close();
      await server.shutdown();
    }
  },
});
