/**
 * Files in the browser client, in a real browser (headless Chromium through
 * puppeteer-core) with a terminal user (the client library's `FileTransfers`) on the same
 * server: a file goes browser → terminal and terminal → browser with matching SHA-256 on
 * both sides (the browser's copy saved through its **Save** link, as a user would), a
 * file name with markup shows as text, bytes damaged on the server are caught by the page
 * (`corrupt`, the sender hears it), an upload is cancelled halfway, an offer declined, one
 * over the page's size limit refused with a reason, transfers under way in the page
 * carry on after the server restarts, and the page uploads in the large chunks a server
 * offers (`large_chunks`), smaller under a smaller `--max-frame`, and downloads in frames
 * of a large chunk from such a server.
 * Takes docs/web-files.png (written there only by `deno task screenshots`).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import type { ChatClient, ChatEvent } from "../client/chat_client.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import { safeFileName } from "../protocol/file_names.ts";
import { MAX_RECEIVE_BYTES } from "../web/file_transfer.ts";
import { LARGE_FILE_CHUNK_BYTES } from "../protocol/file_chunks.ts";
import { DiskFileBytes } from "../server/disk_file_bytes.ts";
import { MemoryFileStore } from "../server/file_store.ts";
import { fileServiceOf } from "../server/files.ts";
import type { ChatServer } from "../server/server.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import {
  browserTest,
  launchBrowser,
  logInPage,
  openConversation,
  openPage,
  PAGE_WAIT_MS,
  pageUrl,
  screenshotToDocs,
  waitForMessage,
} from "./helpers/browser.ts";
import type { PageDocument, TestPage } from "./helpers/browser.ts";
import { sha256Of, writeRandomFile } from "./helpers/files.ts";
import { GatedFileBytes } from "./helpers/gated_file_bytes.ts";
import { connectClient, testServer, until } from "./helpers/harness.ts";
import { reservePorts } from "./helpers/ports.ts";

// The functions given to waitForFunction and evaluate run in the page.
declare const document: PageDocument;

/** A terminal user: a chat client, its file transfers, and what both reported. */
interface Terminal {
  client: ChatClient;
  files: FileTransfers;
  events: FileTransferEvent[];
  chat: ChatEvent[];
  close(): Promise<void>;
}

async function terminal(
  server: ChatServer,
  nick: string,
  options: { acceptDir?: string } = {},
): Promise<Terminal> {
  const client = await connectClient(server, nick);
  const events: FileTransferEvent[] = [];
  const chat: ChatEvent[] = [];
  client.onEvent((event) => chat.push(event));
  const files = new FileTransfers(client, { onEvent: (e) => events.push(e), ...options });
  return {
    client,
    files,
    events,
    chat,
    async close() {
      await files.close();
      await client.close();
    },
  };
}

/** Waits for the first event of `type` that `match` accepts, in `list`. */
function waitFor<E extends { type: string }>(
  list: E[],
  type: string,
  match: (event: E) => boolean = () => true,
): Promise<E> {
  return until(() => list.find((e) => e.type === type && match(e)), type, PAGE_WAIT_MS * 2);
}

/** Opens the direct conversation with `nick` from the Online list. */
async function openDm(page: Page, nick: string): Promise<void> {
  const selector = `#online-list button[title="message ${nick}"]`;
  await page.waitForSelector(selector);
  await page.click(selector);
  await page.waitForFunction(
    (title: string) => document.querySelector("#conversation-title")?.textContent === title,
    {},
    `@${nick}`,
  );
  await page.waitForSelector("#file-button:not([hidden])");
}

/** Waits until the page shows the transfer `selector` picks in state `state`. */
async function waitForTransfer(page: Page, selector: string, state: string): Promise<void> {
  await page.waitForSelector(`#file-list li${selector}[data-state="${state}"]`, {
    timeout: PAGE_WAIT_MS * 2,
  });
}

/** Picks `path` in the page's file input (as the file dialog would) to send it. */
async function sendFromPage(page: Page, path: string): Promise<void> {
  const input = await page.$("#file-input");
  assert.ok(input !== null, "the page has a file input");
  await (input as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(path);
}

/**
 * Clicks the **Save** link of the transfer of file `file` and waits for the browser to
 * write the download into `dir`; returns its path.
 */
async function saveFromPage(
  browser: Awaited<ReturnType<typeof launchBrowser>>,
  page: Page,
  file: number,
  dir: string,
): Promise<string> {
  const session = await browser.target().createCDPSession();
  try {
    await session.send("Browser.setDownloadBehavior", {
      behavior: "allow",
      downloadPath: dir,
      eventsEnabled: true,
    });
    let name = "";
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the download did not end")), 60_000);
      session.on("Browser.downloadWillBegin", (event) => name = event.suggestedFilename);
      session.on("Browser.downloadProgress", (event) => {
        if (event.state === "inProgress") return;
        clearTimeout(timer);
        if (event.state === "completed") resolve();
        else reject(new Error(`the download was ${event.state}`));
      });
    });
    await page.click(`#file-list li[data-file="${file}"] a.save`);
    await done;
    return join(dir, name);
  } finally {
    await session.detach();
  }
}

/** What a files test runs with; see {@linkcode filesTest}. */
interface FilesScene {
  /** A scratch folder, removed after the test. */
  tmp: string;
  server: ChatServer;
  browser: Browser;
  /** The terminal user. */
  bob: Terminal;
  /** A page logged in as alice. */
  page: TestPage;
}

/**
 * A browser test of files: a scratch folder, a server with `settings`, a browser, the
 * terminal user bob (saving what he accepts to `tmp`/bob when `bobAccepts`) and a page
 * logged in as alice; all closed after `fn`.
 */
function filesTest(
  name: string,
  settings: Parameters<typeof testServer>[0],
  bobAccepts: boolean,
  fn: (scene: FilesScene) => Promise<void>,
): void {
  browserTest(name, async () => {
    const tmp = await Deno.makeTempDir();
    const server = await testServer(settings);
    const browser = await launchBrowser();
    const bob = await terminal(server, "bob", bobAccepts ? { acceptDir: join(tmp, "bob") } : {});
    try {
      const page = await openPage(browser, pageUrl(server));
      await logInPage(page, "alice");
      await fn({ tmp, server, browser, bob, page });
    } finally {
      await bob.close();
      await browser.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  });
}

filesTest(
  "web files: browser -> terminal and terminal -> browser with matching SHA-256; a name with markup is text",
  { webPort: 0 },
  true,
  async ({ tmp, browser, bob, page }) => {
    await bob.client.dm("alice", "could you send me the report?");
    await openDm(page, "bob");
    await waitForMessage(page, "could you send me the report?");

    // Browser -> terminal: 3 MiB and a bit (several chunks, a window of them).
    const report = join(tmp, "report.bin");
    const reportSha = await writeRandomFile(report, 3 * 1024 * 1024 + 4321, 11);
    await sendFromPage(page, report);
    const saved = await waitFor(bob.events, "file_saved") as Extract<
      FileTransferEvent,
      { type: "file_saved" }
    >;
    assert.equal(saved.name, "report.bin");
    assert.equal(saved.sha256, reportSha);
    assert.equal(await sha256Of(saved.path), reportSha);
    // The page hears that bob checked and has it.
    await waitForTransfer(page, `[data-file="${saved.file}"]`, "delivered");

    // Terminal -> browser, under a name that is markup.
    const hostile = `<img src=x onerror="window.pwned=1;alert('file')">.txt`;
    const photo = join(tmp, hostile);
    const photoSha = await writeRandomFile(photo, 2 * 1024 * 1024 + 99, 12);
    await bob.client.dm("alice", "thanks! and here is the photo");
    await waitForMessage(page, "thanks! and here is the photo");
    const offer = await bob.files.send("alice", photo);
    await waitForTransfer(page, `[data-file="${offer.file}"]`, "offered");
    const shown = await page.$eval(
      `#file-list li[data-file="${offer.file}"] .file-name`,
      (node) => node.textContent,
    );
    assert.equal(shown, hostile);
    await page.click(`#file-list li[data-file="${offer.file}"] .accept`);
    await waitForTransfer(page, `[data-file="${offer.file}"]`, "saved");
    await waitFor(
      bob.chat,
      "file_completed",
      (e) => (e as { file?: number }).file === offer.file,
    );
    await screenshotToDocs(page, "web-files.png");
    const downloaded = await saveFromPage(browser, page, offer.file, join(tmp, "browser"));
    assert.equal(downloaded, join(tmp, "browser", safeFileName(hostile)));
    assert.equal(await sha256Of(downloaded), photoSha);

    const injected = await page.evaluate(() => ({
      pwned: (window as unknown as { pwned?: number }).pwned ?? null,
      images: document.querySelectorAll("#chat-view img").length,
    }));
    assert.deepEqual(injected, { pwned: null, images: 0 });
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.errors, []);
  },
);

filesTest(
  "web files: bytes damaged on the server are caught by the page as corrupt; the sender hears",
  { webPort: 0 },
  false,
  async ({ tmp, server, bob, page }) => {
    const path = join(tmp, "damaged.bin");
    await writeRandomFile(path, 1_500_000, 13);
    const offer = await bob.files.send("alice", path);
    // The server does not hash what it holds: a byte changed on its disk is the
    // recipient's to catch.
    const held = join(fileServiceOf(server.hub).dir, `${offer.file}.file`);
    const bytes = await Deno.readFile(held);
    bytes[1_000_000] ^= 0xff;
    await Deno.writeFile(held, bytes);
    await openDm(page, "bob");
    await waitForTransfer(page, `[data-file="${offer.file}"]`, "offered");
    await page.click(`#file-list li[data-file="${offer.file}"] .accept`);
    await waitForTransfer(page, `[data-file="${offer.file}"][data-code="corrupt"]`, "failed");
    const status = await page.$eval(
      `#file-list li[data-file="${offer.file}"] .file-status`,
      (node) => node.textContent ?? "",
    );
    assert.match(status, /^Failed \(corrupt\): its SHA-256 did not match/);
    const cancelled = await waitFor(bob.chat, "file_cancelled");
    assert.deepEqual(cancelled, {
      type: "file_cancelled",
      file: offer.file,
      by: "alice",
      name: "damaged.bin",
      reason: "corrupt",
    });
    assert.equal(
      await page.$(`#file-list li[data-file="${offer.file}"] a.save`),
      null,
      "no link to a damaged file",
    );
  },
);

filesTest(
  "web files: an upload cancelled halfway from the page, an offer declined, one over the page's limit",
  // Paced at 256 KiB/s: the 8 MiB upload is still going when Cancel is clicked.
  {
    webPort: 0,
    rateFileBytesPerSec: 256 * 1024,
    maxFileSize: 2 * MAX_RECEIVE_BYTES,
    fileQuotaBytes: 4 * MAX_RECEIVE_BYTES,
  },
  false,
  async ({ tmp, server, bob, page }) => {
    await openDm(page, "bob");
    const big = join(tmp, "big.bin");
    await writeRandomFile(big, 8 * 1024 * 1024, 14);
    await sendFromPage(page, big);
    const offered = await waitFor(bob.events, "file_offered") as Extract<
      FileTransferEvent,
      { type: "file_offered" }
    >;
    await waitForTransfer(page, `[data-file="${offered.file}"]`, "uploading");
    await page.waitForFunction(
      (file: number) =>
        Number(
          (document.querySelector(`#file-list li[data-file="${file}"] progress`) as unknown as {
            value: number;
          } | null)?.value ?? 0,
        ) > 0,
      { timeout: PAGE_WAIT_MS * 2 },
      offered.file,
    );
    await page.click(`#file-list li[data-file="${offered.file}"] .cancel`);
    await waitForTransfer(page, `[data-file="${offered.file}"]`, "cancelled");
    const cancelled = await waitFor(bob.chat, "file_cancelled");
    assert.equal((cancelled as { file: number }).file, offered.file);
    assert.equal(await fileServiceOf(server.hub).store.get(offered.file), null);

    // An offer declined from the page: the sender hears it.
    const note = join(tmp, "note.txt");
    await Deno.writeTextFile(note, "not for you");
    const offer = await bob.files.send("alice", note);
    await waitForTransfer(page, `[data-file="${offer.file}"]`, "offered");
    await page.click(`#file-list li[data-file="${offer.file}"] .decline`);
    await waitForTransfer(page, `[data-file="${offer.file}"]`, "declined");
    await waitFor(bob.chat, "file_declined", (e) => (e as { file?: number }).file === offer.file);

    // Over the page's limit: Accept says so (and takes nothing); Decline still answers.
    const huge = await bob.client.request("file_offer", {
      to: "alice",
      name: "huge.iso",
      size: MAX_RECEIVE_BYTES + 1,
      sha256: "0".repeat(64),
    });
    await waitForTransfer(page, `[data-file="${huge.file}"]`, "offered");
    await page.click(`#file-list li[data-file="${huge.file}"] .accept`);
    await waitForTransfer(page, `[data-file="${huge.file}"][data-code="too_large"]`, "failed");
    assert.ok(
      !bob.chat.some((e) => e.type === "file_accepted" && e.file === huge.file),
      "not accepted",
    );
    await page.click(`#file-list li[data-file="${huge.file}"] .decline`);
    await waitFor(bob.chat, "file_declined", (e) => (e as { file?: number }).file === huge.file);
    assert.deepEqual(page.errors, []);
  },
);

browserTest(
  "web files: an upload and a download in the page carry on after the server restarts",
  async () => {
    const tmp = await Deno.makeTempDir();
    const dataDir = join(tmp, "server");
    await Deno.mkdir(dataDir);
    // Paced at 512 KiB/s a session: both transfers are under way when the server stops.
    const settings = { dataDir, drainWindowMs: 0, rateFileBytesPerSec: 512 * 1024 };
    // Reserved against the other test files, so that the restart below can have them again.
    using reserved = reservePorts(2);
    const ports = { port: reserved.port, webPort: reserved.port + 1 };
    let server = await testServer({ ...settings, ...ports });
    const browser = await launchBrowser();
    let bob: Terminal | null = await terminal(server, "bob");
    try {
      const page = await openPage(browser, pageUrl(server));
      await logInPage(page, "alice");
      // Terminal -> browser: held whole by the server, then read by the page.
      const down = join(tmp, "down.bin");
      const downSha = await writeRandomFile(down, 3 * 1024 * 1024 + 5, 15);
      const offer = await bob.files.send("alice", down);
      await bob.close();
      bob = null;
      // bob is away: his offer opens the direct conversation in the sidebar.
      await openConversation(page, "dm", "bob");
      await waitForTransfer(page, `[data-file="${offer.file}"]`, "offered");
      await page.click(`#file-list li[data-file="${offer.file}"] .accept`);
      // Browser -> terminal (bob is away: the server holds it for him).
      const up = join(tmp, "up.bin");
      const upSha = await writeRandomFile(up, 3 * 1024 * 1024 + 7, 16);
      await sendFromPage(page, up);
      const moving = (state: string) =>
        page.waitForFunction(
          (s: string) =>
            [...document.querySelectorAll(`#file-list li[data-state="${s}"] progress`)].some(
              (p) => Number((p as unknown as { value: number }).value) > 0,
            ),
          { timeout: PAGE_WAIT_MS * 2 },
          state,
        );
      // Both at once: waited for in turn, the upload could end while the download is
      // awaited (a loaded machine), and the restart would then find it done.
      await Promise.all([moving("receiving"), moving("uploading")]);

      await server.shutdown();
      await page.waitForFunction(() => document.querySelector("#status.online") === null);
      server = await testServer({ ...settings, ...ports });
      await page.waitForFunction(() => document.querySelector("#status.online") !== null, {
        timeout: 60_000,
      });

      await waitForTransfer(page, `[data-file="${offer.file}"]`, "saved");
      const downloaded = await saveFromPage(browser, page, offer.file, join(tmp, "browser"));
      assert.equal(await sha256Of(downloaded), downSha);
      await waitForTransfer(page, "", "uploaded");
      bob = await terminal(server, "bob", { acceptDir: join(tmp, "bob") });
      const saved = await waitFor(bob.events, "file_saved") as Extract<
        FileTransferEvent,
        { type: "file_saved" }
      >;
      assert.equal(saved.name, "up.bin");
      assert.equal(await sha256Of(saved.path), upSha);
      await waitForTransfer(page, `[data-file="${saved.file}"]`, "delivered");
      assert.deepEqual(page.errors, []);
    } finally {
      await bob?.close();
      await browser.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

browserTest(
  "web files: Dismiss forgets a saved transfer and releases its blob: URL, the others kept",
  async () => {
    const tmp = await Deno.makeTempDir();
    const server = await testServer({ webPort: 0 });
    const browser = await launchBrowser();
    const bob = await terminal(server, "bob");
    try {
      const page = await openPage(browser, pageUrl(server));
      // The page's CSP (connect-src 'self') keeps it from fetching blob: URLs: the test's
      // fetches below need that lifted.
      await page.setBypassCSP(true);
      await page.reload({ waitUntil: "load" });
      await logInPage(page, "alice");
      await openDm(page, "bob");
      const saved: { file: number; url: string }[] = [];
      for (const [i, name] of ["one.bin", "two.bin"].entries()) {
        const path = join(tmp, name);
        await writeRandomFile(path, 100_000 + i, 20 + i);
        const offer = await bob.files.send("alice", path);
        const item = `#file-list li[data-file="${offer.file}"]`;
        await waitForTransfer(page, `[data-file="${offer.file}"]`, "offered");
        await page.click(`${item} .accept`);
        await waitForTransfer(page, `[data-file="${offer.file}"]`, "saved");
        const url = await page.$eval(`${item} a.save`, (node) => node.getAttribute("href"));
        assert.ok(url?.startsWith("blob:"), `a blob: URL, not ${url}`);
        saved.push({ file: offer.file, url });
      }
      // Whether a URL still gives the file's bytes, fetched in the page.
      const resolves = (url: string) =>
        page.evaluate(
          (u: string) => fetch(u).then((r) => r.arrayBuffer()).then((b) => b.byteLength, () => -1),
          url,
        );
      assert.equal(await resolves(saved[0].url), 100_000);
      await page.click(`#file-list li[data-file="${saved[0].file}"] .dismiss`);
      await page.waitForFunction(
        (f: number) => document.querySelector(`#file-list li[data-file="${f}"]`) === null,
        {},
        saved[0].file,
      );
      assert.equal(await resolves(saved[0].url), -1, "released on Dismiss");
      assert.equal(await resolves(saved[1].url), 100_001, "the other one is kept");
      assert.deepEqual(page.errors, []);
    } finally {
      await bob.close();
      await browser.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

browserTest(
  "web files: the page uploads in chunks of 1 MiB less 4 KiB to a server offering large_chunks, smaller under a small --max-frame",
  async () => {
    const tmp = await Deno.makeTempDir();
    const browser = await launchBrowser();
    try {
      // Today's server shares `large_chunks`: the page's chunks are 1 MiB less 4 KiB, not
      // 512 KiB; under `--max-frame 256 KiB` each chunk's frame fits it (255 KiB chunks).
      for (const [maxFrameSize, chunk] of [[0, LARGE_FILE_CHUNK_BYTES], [256 * 1024, 255 * 1024]]) {
        const dir = join(tmp, `server-${maxFrameSize}`);
        await Deno.mkdir(dir);
        // The server's file bytes note the size of every chunk it appends.
        const bytes = new GatedFileBytes(new DiskFileBytes(dir));
        const server = await testServer(
          { webPort: 0, ...(maxFrameSize > 0 ? { maxFrameSize } : {}) },
          { files: { store: new MemoryFileStore(), bytes } },
        );
        const accepts = maxFrameSize === 0;
        const bob = await terminal(server, "bob", accepts ? { acceptDir: join(dir, "bob") } : {});
        try {
          const page = await openPage(browser, pageUrl(server));
          await logInPage(page, "alice");
          await openDm(page, "bob");
          const size = 3 * 1024 * 1024 + 4321;
          const path = join(tmp, `large-${maxFrameSize}.bin`);
          const sha = await writeRandomFile(path, size, 30);
          await sendFromPage(page, path);
          if (accepts) {
            // The file arrives whole, SHA-256 checked, and the page hears it.
            const saved = await waitFor(bob.events, "file_saved") as Extract<
              FileTransferEvent,
              { type: "file_saved" }
            >;
            assert.equal(await sha256Of(saved.path), sha);
            await waitForTransfer(page, `[data-file="${saved.file}"]`, "delivered");
          } else {
            await waitForTransfer(page, "", "uploaded");
          }
          const expected = [];
          for (let at = 0; at < size; at += chunk) expected.push(Math.min(chunk, size - at));
          assert.deepEqual(bytes.appends, expected, `--max-frame ${maxFrameSize || "default"}`);
          assert.deepEqual(page.errors, []);
          await page.close();
        } finally {
          await bob.close();
          await server.shutdown();
        }
      }
    } finally {
      await browser.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
);

/**
 * The `file_data` bodies in what the page's WebSocket receives (`Network` events of the
 * page's DevTools session), in order.
 */
async function fileDataFrames(page: Page): Promise<{ bodies: number[]; stop(): Promise<void> }> {
  const session = await page.createCDPSession();
  await session.send("Network.enable");
  const bodies: number[] = [];
  // A chat frame: its payload's length, its header's length, the JSON header, the body.
  let pending = new Uint8Array(0);
  session.on("Network.webSocketFrameReceived", (event) => {
    if (event.response.opcode !== 2) return;
    const data = Uint8Array.from(atob(event.response.payloadData), (c) => c.charCodeAt(0));
    const bytes = new Uint8Array(pending.length + data.length);
    bytes.set(pending);
    bytes.set(data, pending.length);
    const view = new DataView(bytes.buffer);
    let at = 0;
    while (bytes.length - at >= 8 && bytes.length - at - 4 >= view.getUint32(at)) {
      const payload = view.getUint32(at);
      const head = view.getUint32(at + 4);
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(at + 8, at + 8 + head)));
      if (header.type === "file_data") bodies.push(payload - 4 - head);
      at += 4 + payload;
    }
    pending = bytes.slice(at);
  });
  return { bodies, stop: () => session.detach() };
}

filesTest(
  "web files: the page downloads in file_data frames of 1 MiB less 4 KiB from a server offering large_chunks",
  { webPort: 0 },
  false,
  async ({ tmp, browser, bob, page }) => {
    await openDm(page, "bob");
    const frames = await fileDataFrames(page);
    try {
      const size = 3 * LARGE_FILE_CHUNK_BYTES + 4321;
      const path = join(tmp, "large.bin");
      const sha = await writeRandomFile(path, size, 31);
      const offer = await bob.files.send("alice", path);
      await waitForTransfer(page, `[data-file="${offer.file}"]`, "offered");
      await page.click(`#file-list li[data-file="${offer.file}"] .accept`);
      await waitForTransfer(page, `[data-file="${offer.file}"]`, "saved");
      const downloaded = await saveFromPage(browser, page, offer.file, join(tmp, "browser"));
      assert.equal(await sha256Of(downloaded), sha);
      // One frame of a large chunk per read, not two of 512 KiB.
      assert.deepEqual(frames.bodies, [
        LARGE_FILE_CHUNK_BYTES,
        LARGE_FILE_CHUNK_BYTES,
        LARGE_FILE_CHUNK_BYTES,
        4321,
      ]);
      assert.deepEqual(page.errors, []);
    } finally {
      await frames.stop();
    }
  },
);
