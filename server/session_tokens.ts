/**
 * Session tokens: "remember me" without keeping the password.
 *
 * After a login, a client may ask for a token (`token_issue`) and log in with it later
 * (`login {nick, token}`) instead of the password: the browser page keeps one in
 * `localStorage` when "remember me" is ticked, and uses one for its reconnects so that
 * it never holds the password after the login. A token is 32 random bytes (base64url);
 * the store keeps only its SHA-256 (a copy of the database logs nobody in), with the
 * account and an expiry (`--token-ttl`, or a shorter `ttl` the client asks for: the page
 * holds short ones, renewed while connected, when "remember me" is not ticked). A token is revoked by `token_revoke {token}`
 * (the page's "Log out"), all of an account's at once by `token_revoke {all: true}`
 * ("log out everywhere", which also ends the account's other sessions on every node),
 * and all of them when the account's password changes (`--credentials`). A login with a
 * wrong, expired or revoked token counts against the lockout like a wrong password
 * (`server/hub.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";
import type { CommandSpec } from "./commands.ts";
import { CommandError } from "./errors.ts";
import type { OnlineAccount } from "./hub.ts";
import type { Store } from "./store.ts";

const log = getLogger(["chat", "server", "tokens"]);

/** Random bytes in a token. */
export const TOKEN_BYTES = 32;
/** The bus topic on which "log out everywhere" reaches every node. */
export const SESSIONS_TOPIC = "sessions";

/** A new token: {@linkcode TOKEN_BYTES} random bytes, base64url. */
export function newSessionToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/**
 * The SHA-256 of a token in lowercase hex: what the store keeps and looks up.
 *
 * @example
 * ```ts
 * import { tokenHash } from "./session_tokens.ts";
 * (await tokenHash("abc")).slice(0, 8); // "ba7816bf"
 * ```
 */
export async function tokenHash(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What {@linkcode SessionTokens} needs of the server. */
export interface SessionTokensOptions {
  /** Where the tokens' hashes are kept. */
  store: Store;
  /** Node-to-node messages: "log out everywhere" ends sessions on every node. */
  bus: ClusterBus;
  /** Seconds a token works after it is issued. */
  ttlSec: number;
  /** The account with sessions on this node, if any. */
  online: (key: string) => OnlineAccount | undefined;
  /** Wall clock, ms since the epoch. */
  now: () => number;
}

interface EndSessions {
  key: string;
  /** The session that asked: it stays. */
  except: string;
}

/**
 * Issues, checks and revokes session tokens.
 *
 * @example
 * ```ts
 * import { LocalClusterBus } from "./cluster_bus.ts";
 * import { MemoryStore } from "./memory_store.ts";
 * import { SessionTokens } from "./session_tokens.ts";
 * const tokens = new SessionTokens({
 *   store: new MemoryStore(), bus: new LocalClusterBus(), ttlSec: 3600,
 *   online: () => undefined, now: Date.now,
 * });
 * const { token } = await tokens.issue("alice");
 * await tokens.accountOf(token); // "alice"
 * ```
 */
export class SessionTokens {
  readonly #options: SessionTokensOptions;
  #stop: (() => void) | undefined;

  /** Tokens kept in `options.store`, ending sessions through `options.bus`. */
  constructor(options: SessionTokensOptions) {
    this.#options = options;
  }

  /** Listens for "log out everywhere" from every node (this one included). */
  async start(): Promise<void> {
    this.#stop = await this.#options.bus.listen(SESSIONS_TOPIC, (m) => this.#endSessions(m));
  }

  /** Stops listening. */
  close(): void {
    this.#stop?.();
  }

  /**
   * Issues a token for `accountKey`: the token (shown once) and its expiry (ms). It works
   * `ttlSec` seconds, at most (and by default) the server's `ttlSec`: the page asks for
   * short ones when it does not remember the login, and renews them while connected.
   */
  async issue(
    accountKey: string,
    ttlSec?: number,
  ): Promise<{ token: string; expires: number }> {
    const token = newSessionToken();
    const createdAt = this.#options.now();
    const ttl = Math.min(ttlSec ?? this.#options.ttlSec, this.#options.ttlSec);
    const expires = createdAt + ttl * 1000;
    await this.#options.store.addToken({
      hash: await tokenHash(token),
      accountKey,
      createdAt,
      expiresAt: expires,
    });
    return { token, expires };
  }

  /** The account `token` logs in to, or null when it is unknown, revoked or expired. */
  async accountOf(token: string): Promise<string | null> {
    const record = await this.#options.store.getToken(await tokenHash(token));
    if (record === null || record.expiresAt <= this.#options.now()) return null;
    return record.accountKey;
  }

  /** Revokes `token` if it is `accountKey`'s; false when it was not (or no longer). */
  async revoke(accountKey: string, token: string): Promise<boolean> {
    return await this.#options.store.removeToken(await tokenHash(token), accountKey);
  }

  /**
   * Revokes every token of `accountKey` and ends its sessions on every node but
   * `exceptSession` (the one asking); resolves to how many tokens there were.
   */
  async revokeAll(accountKey: string, exceptSession: string): Promise<number> {
    const revoked = await this.#options.store.removeTokens(accountKey);
    this.#options.bus.send(
      SESSIONS_TOPIC,
      {
        key: accountKey,
        except: exceptSession,
      } satisfies EndSessions,
    );
    return revoked;
  }

  #endSessions(message: ClusterMessage): void {
    const { key, except } = message.data as EndSessions;
    const account = this.#options.online(key);
    if (account === undefined) return;
    for (const session of account.sessions) {
      if (session.id === except || session.ended) continue;
      log.info("ending a session of {nick} from {remote}: logged out everywhere", {
        nick: account.nick,
        remote: session.port.remote,
      });
      session.port.end({
        code: "logged_out",
        text: "logged out: your account logged out everywhere from another session",
      });
    }
  }
}

/** The command table's entries for session tokens (see the module documentation). */
export const tokenCommands: {
  token_issue: CommandSpec<"token_issue">;
  token_revoke: CommandSpec<"token_revoke">;
} = {
  token_issue: {
    run: ({ hub, session }, { ttl }) => hub.tokens.issue(session.account.key, ttl),
  },
  token_revoke: {
    async run({ hub, session }, { token, all }) {
      if ((token === undefined) === (all !== true)) {
        throw new CommandError("bad_message", "token_revoke takes a token or all: true");
      }
      const key = session.account.key;
      if (all === true) return { revoked: await hub.tokens.revokeAll(key, session.id) };
      return { revoked: await hub.tokens.revoke(key, token!) ? 1 : 0 };
    },
  },
};
