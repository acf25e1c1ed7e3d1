/**
 * "Remember me" in a real browser (headless Chromium through puppeteer-core): the page
 * keeps a server-issued session token, never the password; a reload logs in with it;
 * "log out everywhere" (from the terminal or from the page) and "Log out" revoke it;
 * reconnects use the session's token, so a revoked one ends the session. See
 * web/remember.ts and server/session_tokens.ts.
 */

import assert from "node:assert/strict";
import { tokenHash } from "../server/session_tokens.ts";
import type { ChatServer } from "../server/server.ts";
import {
  logInPage,
  openPage,
  PAGE_WAIT_MS,
  pageUrl,
  waitForMessage,
  webTest,
} from "./helpers/browser.ts";
import type { PageDocument, TestPage } from "./helpers/browser.ts";
import { connectClient, until } from "./helpers/harness.ts";

// The functions given to waitForFunction and evaluate run in the page.
declare const document: PageDocument;
declare const localStorage: {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
};
declare const sessionStorage: { getItem(key: string): string | null };

type Page = TestPage;

/** What the page keeps in its storage, as text. */
function storedText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const all = (s: { getItem(k: string): string | null }, keys: string[]) =>
      keys.map((k) => `${k}=${s.getItem(k)}`).join(";");
    return all(localStorage, ["chat.session"]) + all(sessionStorage, ["chat.note"]);
  });
}

/** The remembered login in the page's localStorage, or null. */
async function rememberedOf(page: Page): Promise<{ nick: string; token: string } | null> {
  return JSON.parse(await page.evaluate(() => localStorage.getItem("chat.session") ?? "null"));
}

/** Registers `nick` with "remember me" ticked and waits for the chat view. */
async function registerRemembered(page: Page, nick: string): Promise<void> {
  await page.type("#login-nick", nick);
  await page.type("#login-password", "password123");
  await page.click("#login-remember");
  await page.click("#register-button");
  await waitOnline(page);
}

async function waitOnline(page: Page): Promise<void> {
  await page.waitForSelector("#chat-view:not([hidden])");
  await page.waitForFunction(() => document.querySelector("#status.online") !== null);
}

/** Waits for the login view with an error line that includes `text`. */
async function waitLoginView(page: Page, text: string): Promise<void> {
  await page.waitForSelector("#login-view:not([hidden])");
  await page.waitForFunction(
    (t: string) => (document.querySelector("#login-error")?.textContent ?? "").includes(t),
    { timeout: PAGE_WAIT_MS },
    text,
  );
}

/** The one session of `nick` on `server`, once it has exactly one. */
function onlySession(server: ChatServer, nick: string) {
  return until(
    () => {
      const sessions = server.hub.online(nick)?.sessions;
      return sessions?.length === 1 ? sessions[0] : undefined;
    },
    `one session of ${nick}`,
    PAGE_WAIT_MS,
  );
}

webTest(
  "web remember: a reload stays logged in with the token (never the password); log out everywhere from the terminal logs the page out",
  async (server, browser) => {
    const page = await openPage(browser, pageUrl(server));
    await registerRemembered(page, "alice");
    const saved = await rememberedOf(page);
    assert.equal(saved?.nick, "alice");
    assert.equal(
      (await server.hub.store.getToken(await tokenHash(saved!.token)))?.accountKey,
      "alice",
    );
    assert.ok(!(await storedText(page)).includes("password123"), "no password in storage");

    await page.reload({ waitUntil: "load" });
    await waitOnline(page);
    assert.equal(await page.$eval("#me-nick", (e) => e.textContent), "alice");
    await using terminal = await connectClient(server, "alice");
    await terminal.say("lobby", "said from the terminal after the reload");
    await waitForMessage(page, "said from the terminal after the reload");

    // The terminal session logs out everywhere: the page is logged out and forgets.
    const reply = await terminal.request("token_revoke", { all: true });
    assert.equal(reply.revoked, 1);
    await waitLoginView(page, "Logged out");
    assert.equal(await rememberedOf(page), null);
    await page.reload({ waitUntil: "load" });
    await page.waitForSelector("#login-view:not([hidden])");
    assert.equal(await page.$eval("#chat-view", (e) => (e as { hidden?: boolean }).hidden), true);
    assert.deepEqual(page.errors, []);
  },
);

webTest(
  "web remember: Log out revokes the page's token; unticked, nothing is stored; a revoked remembered token asks to log in again",
  async (server, browser) => {
    const page = await openPage(browser, pageUrl(server));
    await logInPage(page, "alice");
    assert.equal(await rememberedOf(page), null, "not remembered unless ticked");
    await page.click("#logout-button");
    await page.waitForSelector("#login-view:not([hidden])");

    await page.type("#login-nick", "alice");
    await page.type("#login-password", "password123");
    await page.click("#login-remember");
    await page.click("#login-button");
    await waitOnline(page);
    const { token } = (await rememberedOf(page))!;
    const hash = await tokenHash(token);
    assert.notEqual(await server.hub.store.getToken(hash), null);
    await page.click("#logout-button");
    await page.waitForSelector("#login-view:not([hidden])");
    assert.equal(await rememberedOf(page), null);
    // The page revokes it before it logs out and reloads.
    assert.equal(await server.hub.store.getToken(hash), null, "the token is revoked");

    // A remembered token the server no longer knows: the login form, with the reason.
    await page.evaluate(
      (t: string) =>
        localStorage.setItem("chat.session", JSON.stringify({ nick: "alice", token: t })),
      token,
    );
    await page.reload({ waitUntil: "load" });
    await waitLoginView(page, "Log in again");
    assert.equal(await rememberedOf(page), null);
    assert.equal(
      await page.$eval("#login-nick", (e) => (e as { value?: string }).value),
      "alice",
    );
    assert.deepEqual(page.errors, []);
  },
);

webTest(
  "web remember: reconnects log in with the session's token: one revoked ends the session; /logout everywhere ends the others",
  async (server, browser) => {
    const page = await openPage(browser, pageUrl(server));
    await logInPage(page, "alice");
    await using bob = await connectClient(server, "bob");
    // The connection drops: the page reconnects (with its token) and resumes.
    const first = await onlySession(server, "alice");
    first.port.end();
    await until(
      () => {
        const sessions = server.hub.online("alice")?.sessions;
        return sessions?.length === 1 && !sessions.includes(first) || undefined;
      },
      "alice's page back",
      PAGE_WAIT_MS,
    );
    await bob.say("lobby", "after the reconnect");
    await waitForMessage(page, "after the reconnect");
    // Back online means its token was renewed (new one issued, old one revoked).
    await page.waitForFunction(() => document.querySelector("#status.online") !== null);

    // Its token revoked behind its back, the next reconnect fails: the password is gone.
    assert.equal(await server.hub.store.removeTokens("alice"), 1);
    (await onlySession(server, "alice")).port.end();
    await waitLoginView(page, "Logged out");

    // Two pages of one account: /logout everywhere in one logs the other out.
    const other = await openPage(await browser.createBrowserContext(), pageUrl(server));
    await logInPage(page, "alice", false);
    await logInPage(other, "alice", false);
    await page.type("#composer-input", "/logout everywhere");
    await page.click("#composer button[type=submit]");
    await waitLoginView(other, "Logged out");
    await page.waitForSelector("#login-view:not([hidden])");
    await until(() => server.hub.online("alice") === undefined || undefined, "alice gone");
    assert.deepEqual([...page.errors, ...other.errors], []);
  },
);

webTest(
  "web remember: a page that does not remember holds a one-hour token, renewed after each reconnect (the old one revoked); remembered, the full --token-ttl",
  async (server, browser) => {
    // The tokens the server issues, as it issues them.
    const issued: string[] = [];
    const tokens = server.hub.tokens;
    const issue = tokens.issue.bind(tokens);
    tokens.issue = async (key, ttl) => {
      const made = await issue(key, ttl);
      issued.push(made.token);
      return made;
    };
    const store = server.hub.store;
    const recordOf = async (token: string) => await store.getToken(await tokenHash(token));
    const ttlOf = async (token: string) => {
      const record = await recordOf(token);
      assert.ok(record !== null, "the token is valid");
      return record.expiresAt - record.createdAt;
    };
    const page = await openPage(browser, pageUrl(server));
    await logInPage(page, "alice");
    await until(() => issued.length === 1 || undefined, "alice's token", PAGE_WAIT_MS);
    assert.equal(await ttlOf(issued[0]), 3600_000, "one hour, not --token-ttl");

    // A reconnect renews it: a new one-hour token, the old one revoked.
    const first = await onlySession(server, "alice");
    first.port.end();
    await until(() => issued.length === 2 || undefined, "a renewed token", PAGE_WAIT_MS);
    // Back online (after the renewal, which came after the page was reconnecting).
    await page.waitForFunction(() => document.querySelector("#status.online") !== null);
    assert.equal(await recordOf(issued[0]), null, "the old token revoked");
    assert.equal(await ttlOf(issued[1]), 3600_000);
    assert.equal(issued.length, 2);

    // Remembered: the server's full ttl, kept as is.
    const other = await openPage(await browser.createBrowserContext(), pageUrl(server));
    await registerRemembered(other, "carol");
    await until(() => issued.length === 3 || undefined, "carol's token", PAGE_WAIT_MS);
    assert.equal(await ttlOf(issued[2]), server.hub.config.tokenTtlSec * 1000);
    assert.equal((await rememberedOf(other))?.token, issued[2]);
    assert.deepEqual([...page.errors, ...other.errors], []);
  },
);
