/**
 * "Remember me": the page keeps the nick and a session token (never the password) in
 * `localStorage` when the box is ticked, and logs in with them when it loads again. The
 * token is the server's (`token_issue`, see server/session_tokens.ts): "Log out" revokes
 * it, `/logout everywhere` revokes every token of the account.
 *
 * Also a one-line note for the login form across a reload (why a session ended): in
 * `sessionStorage`, and no secret.
 *
 * @module
 */

const SESSION_KEY = "chat.session";
const NOTE_KEY = "chat.note";

/** A remembered login. */
export interface Remembered {
  nick: string;
  token: string;
}

/** The remembered login, or null (none, or storage is not available). */
export function remembered(): Remembered | null {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) ?? "null");
    if (typeof saved?.nick === "string" && typeof saved?.token === "string") return saved;
  } catch {
    // unreadable or unavailable: nothing remembered
  }
  return null;
}

/** Remembers `nick` and its session `token` on this device. */
export function remember(nick: string, token: string): void {
  try {
    localStorage.setItem(SESSION_KEY, JSON.stringify({ nick, token } satisfies Remembered));
  } catch {
    // storage refused (private mode, quota): the session just is not remembered
  }
}

/** Forgets the remembered login. */
export function forget(): void {
  try {
    localStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing to forget
  }
}

/** Leaves a note for the login form after the next reload. */
export function leaveNote(text: string): void {
  try {
    sessionStorage.setItem(NOTE_KEY, text);
  } catch {
    // the note is lost: the login form shows without it
  }
}

/** The note left before the reload, once. */
export function takeNote(): string | null {
  try {
    const note = sessionStorage.getItem(NOTE_KEY);
    sessionStorage.removeItem(NOTE_KEY);
    return note;
  } catch {
    return null;
  }
}
