/**
 * What the terminal client remembers about the conversation on screen: the
 * current room, the current direct conversation, who last wrote to us, and the
 * nicks and rooms seen so far (for tab completion).
 *
 * @module
 */

import { nameKey } from "../protocol/names.ts";
import { type DisplayItem, isMention } from "./render.ts";

/** A direct message we sent, as remembered for its receipts. */
export interface SentMessage {
  /** To whom. */
  readonly to: string;
  /** The text sent. */
  readonly text: string;
}

/** How many sent direct messages are remembered for their receipts. */
export const SENT_REMEMBERED = 1000;

/** Where plain text (a line that is not a command) goes. */
export type Target = { kind: "room"; room: string } | { kind: "dm"; nick: string };

/**
 * The client-side state of one terminal session. The command handlers change it
 * when a command is issued (so that the next line already goes to the new room);
 * {@linkcode SessionState.observe} keeps it in step with what the server says.
 *
 * @example
 * ```ts
 * import { SessionState } from "./session_state.ts";
 * const state = new SessionState("alice", "lobby");
 * state.target; // { kind: "room", room: "lobby" }
 * state.query = "bob";
 * state.label; // "@bob"
 * ```
 */
export class SessionState {
  /** Our own nick. */
  self: string;
  /** The current room, or null when in none. */
  room: string | null;
  /** The nick of the current direct conversation (`/query`); wins over `room`. */
  query: string | null = null;
  /** Who sent the last direct message we received (for `/r`). */
  lastDmFrom: string | null = null;
  /**
   * Why we are away (`/away TEXT`), or null when here. Only this client knows: the
   * server keeps no away status. While away, what was missed is counted.
   */
  away: string | null = null;
  /** Direct messages received (by sender) and mentions, while away. */
  readonly missed = { dms: new Map<string, number>(), mentions: 0 };
  readonly #joined = new Map<string, string>();
  readonly #rooms = new Map<string, string>();
  readonly #nicks = new Map<string, string>();
  readonly #sent = new Map<number, SentMessage>();
  readonly #online = new Map<string, boolean>();
  /** Files whose offer was shown (see {@linkcode SessionState.repeatsOffer}). */
  readonly #offersShown = new Set<number>();

  /** Starts in `room` (when given) as `self`. */
  constructor(self: string, room: string | null = null, joined: readonly string[] = []) {
    this.self = self;
    this.room = room;
    for (const r of joined) this.addJoined(r);
    if (room !== null) this.addJoined(room);
  }

  /** Where plain text goes now, or null when nowhere. */
  get target(): Target | null {
    if (this.query !== null) return { kind: "dm", nick: this.query };
    if (this.room !== null) return { kind: "room", room: this.room };
    return null;
  }

  /** The target for a prompt: `#room`, `@nick` or empty. */
  get label(): string {
    const target = this.target;
    if (target === null) return "";
    return target.kind === "dm" ? `@${target.nick}` : `#${target.room}`;
  }

  /** Rooms we are a member of (display names). */
  get joinedRooms(): string[] {
    return [...this.#joined.values()];
  }

  /** Every room name seen (joined or listed). */
  get knownRooms(): string[] {
    return [...this.#rooms.values()];
  }

  /** Every nick seen, ours excluded. */
  get knownNicks(): string[] {
    return [...this.#nicks.values()];
  }

  /** Whether we are a member of `room`, as far as we know. */
  isJoined(room: string): boolean {
    return this.#joined.has(nameKey(room));
  }

  /** Records that we are a member of `room`. */
  addJoined(room: string): void {
    this.#joined.set(nameKey(room), room);
    this.#rooms.set(nameKey(room), room);
  }

  /**
   * Records that we left `room`; when it was the current room, another joined
   * room (or none) becomes current.
   */
  removeJoined(room: string): void {
    this.#joined.delete(nameKey(room));
    if (this.room !== null && nameKey(this.room) === nameKey(room)) {
      this.room = this.joinedRooms[0] ?? null;
    }
  }

  /** Remembers a nick for completion. */
  addNick(nick: string): void {
    if (nameKey(nick) !== nameKey(this.self)) this.#nicks.set(nameKey(nick), nick);
  }

  /**
   * The direct message we sent with server id `id`, when it is one of the last
   * {@linkcode SENT_REMEMBERED} sent (or seen sent by another session) here.
   */
  sentMessage(id: number): SentMessage | undefined {
    return this.#sent.get(id);
  }

  #remember(id: number, message: SentMessage): void {
    if (this.#sent.has(id)) return;
    this.#sent.set(id, message);
    if (this.#sent.size > SENT_REMEMBERED) {
      this.#sent.delete(this.#sent.keys().next().value!);
    }
  }

  /**
   * Whether `item` says of someone's presence only what was said last (a contact
   * coming online is announced twice by the server, as `contact` and as `presence`):
   * not worth a second line. Call before {@linkcode SessionState.observe}.
   */
  repeatsPresence(item: DisplayItem): boolean {
    if (item.type !== "presence" && item.type !== "contact") return false;
    // A change of away status says something new of an account still online.
    if (item.type === "presence" && item.away !== undefined) return false;
    return this.#online.get(nameKey(item.nick)) === item.online;
  }

  /**
   * Whether `item` is the offer of a file whose offer was shown already (the server tells
   * an offer again when its sender offers the file again before its first byte, as after
   * a cluster fail-over): shown once. Call before {@linkcode SessionState.observe}.
   */
  repeatsOffer(item: DisplayItem): boolean {
    return item.type === "file_offer" && this.#offersShown.has(item.file);
  }

  /** Keeps the state in step with an event or reply about to be shown. */
  observe(item: DisplayItem): void {
    switch (item.type) {
      case "file_offer":
        this.#offersShown.add(item.file);
        return;
      case "msg":
        this.addNick(item.from);
        if (
          this.away !== null && nameKey(item.from) !== nameKey(this.self) &&
          isMention(item.text, this.self)
        ) {
          this.missed.mentions++;
        }
        return;
      case "dm":
        this.addNick(item.from);
        this.addNick(item.to);
        if (nameKey(item.from) !== nameKey(this.self)) {
          this.lastDmFrom = item.from;
          if (this.away !== null) {
            this.missed.dms.set(item.from, (this.missed.dms.get(item.from) ?? 0) + 1);
          }
        } else this.#remember(item.id, { to: item.to, text: item.text });
        return;
      case "broadcast":
        this.addNick(item.from);
        return;
      case "presence":
      case "contact":
        this.addNick(item.nick);
        this.#online.set(nameKey(item.nick), item.online);
        return;
      case "member":
        if (nameKey(item.nick) === nameKey(this.self)) {
          if (item.joined) this.addJoined(item.room);
          else this.removeJoined(item.room);
        } else {
          this.addNick(item.nick);
        }
        return;
      case "reply":
        this.#observeReply(item);
        return;
    }
  }

  #observeReply(item: Extract<DisplayItem, { type: "reply" }>): void {
    switch (item.request) {
      case "join":
        this.addJoined(item.data.room);
        // The server's spelling of the name replaces what was typed.
        if (this.room !== null && nameKey(this.room) === nameKey(item.data.room)) {
          this.room = item.data.room;
        }
        for (const nick of item.data.members) this.addNick(nick);
        return;
      case "leave":
        this.removeJoined(item.data.room);
        return;
      case "dm": {
        const msg = item.data.msg;
        this.#remember(msg.id, { to: msg.to, text: msg.text });
        return;
      }
      case "rooms":
        for (const room of item.data.rooms) this.#rooms.set(nameKey(room.name), room.name);
        return;
      case "members":
        for (const member of item.data.members) this.addNick(member.nick);
        return;
      case "contacts":
        for (const contact of item.data.contacts) this.addNick(contact.nick);
        return;
      case "who":
      case "whoelse":
        for (const nick of item.data.users) this.addNick(nick);
        return;
      case "blocks":
        for (const nick of item.data.nicks) this.addNick(nick);
        return;
    }
  }
}
