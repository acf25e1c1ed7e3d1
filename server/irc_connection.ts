/**
 * An IRC client connection: registration (`CAP`, `PASS`, `NICK`, `USER`) onto the same
 * accounts as the chat protocol, then IRC commands through {@linkcode ircCommands} to the
 * chat command handlers; as a {@linkcode SessionPort}, it turns the hub's events into
 * IRC lines (`eventLines` in irc_events.ts). The same defences as a chat connection: flood
 * control on every line, the login deadline, the idle timeout, stalled writes, a bounded
 * outbound queue and bounded lines.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  encodeIrcLine,
  formatFittedIrcMessage,
  IrcLineError,
  type IrcMessage,
  MAX_LINE_BYTES,
  parseIrcLine,
  type SplitLine,
  utf8Length,
} from "../protocol/irc_line.ts";
import type { NoticeCode } from "../protocol/replies.ts";
import type { OutboundProgress } from "../transport/buffer_pool.ts";
import { ConnectionClosedError, QueueOverflowError } from "../transport/errors.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { LineConnection } from "../transport/line_connection.ts";
import { isDiskFull } from "./disk_space.ts";
import { CommandError } from "./errors.ts";
import { FloodControl, LOGIN_COST } from "./flood_control.ts";
import type { ChatHub, Session, SessionPort } from "./hub.ts";
import { type IrcClient, ircCommands, joinRoom } from "./irc_commands.ts";
import type { Publication } from "./broker.ts";
import { ircFanout } from "./irc_fanout.ts";
import { MAX_IN_FLIGHT } from "./connection.ts";
import { InFlight } from "./in_flight.ts";
import { IrcNumericError } from "./irc_errors.ts";
import { labeledLines, MAX_LABEL_BYTES } from "./irc_labels.ts";
import { isupportGroups } from "./irc_isupport.ts";
import { newIrcRequestId } from "./irc_request_id.ts";
import { newSaslState, type SaslState } from "./irc_sasl.ts";
import { IRC_SERVER_NAME, newBatchId, oneLine, serverNotice } from "./irc_events.ts";
import { wholeMs } from "./whole_ms.ts";

const log = getLogger(["chat", "server", "irc"]);

/** Whether a message has no tags (no array made to count them). */
function hasNoTags(tags: Record<string, string>): boolean {
  for (const _ in tags) return false;
  return true;
}

/** Login failures that end the registration (the client cannot fix them with another NICK). */
const PASSWORD_FAILURES = new Set(["bad_password", "wrong_password", "locked", "no_account"]);

/** Options of {@linkcode IrcConnection}. */
export interface IrcConnectionOptions {
  /** The client's address and port. */
  remote: string;
  /** The client's IP address, for per-address limits. */
  ip: string;
  /** Milliseconds a connection may take to register. */
  loginTimeoutMs: number;
}

/** One IRC client. `run()` serves it; `sweep()` enforces deadlines. */
export class IrcConnection implements SessionPort, IrcClient {
  readonly remote: string;
  readonly ip: string;
  readonly hub: ChatHub;
  readonly caps: Set<string> = new Set();
  readonly sasl: SaslState = newSaslState();
  capVersion = 0;
  readonly #lines: LineConnection;
  readonly #openedAt = performance.now();
  readonly #loginTimeoutMs: number;
  #flood: FloodControl;
  #session: Session | null = null;
  #closing = false;
  #nick: string | null = null;
  #userGiven = false;
  #password: string | undefined = undefined;
  #capHeld = false;
  #registering = false;
  #held: Promise<void> = Promise.resolve();
  /** Messages to channels pipelined and not yet done. */
  #inFlight: InFlight | null = null;
  /** While a labelled command runs: its replies, sent labelled once it is done. */
  #captured: string[] | null = null;
  /** The label of the command whose replies are captured. */
  #label = "";
  /** Told of an event that cannot be translated: one closure per connection, not per delivery. */
  readonly #onBadEvent = (err: unknown): void =>
    log.error("an event for IRC client {remote} could not be translated: {err}", {
      remote: this.remote,
      err,
    });

  /** Wraps an accepted channel. */
  constructor(channel: ByteChannel, hub: ChatHub, options: IrcConnectionOptions) {
    this.remote = options.remote;
    this.ip = options.ip;
    this.hub = hub;
    this.#loginTimeoutMs = options.loginTimeoutMs;
    this.#flood = new FloodControl(hub.config, performance.now());
    this.#lines = new LineConnection(channel, { maxQueueBytes: hub.config.maxQueueBytes });
  }

  get session(): Session | null {
    return this.#session;
  }

  get nick(): string {
    return this.#session?.account.nick ?? this.#nick ?? "*";
  }

  /** Bytes received and written so far. */
  get traffic(): { bytesIn: number; bytesOut: number } {
    return this.#lines.stats;
  }

  /** Serves the connection until it ends; never throws. */
  /** Serves the connection until it ends ({@linkcode run}), then calls `onEnded`. */
  serve(onEnded: (connection: IrcConnection) => void): void {
    const ended = () => onEnded(this);
    this.run().then(ended, ended);
  }

  async run(): Promise<void> {
    log.debug("IRC connection from {remote}", { remote: this.remote });
    try {
      for await (const { lines, bytes } of this.#lines.batches()) {
        const share = Math.ceil(bytes / lines.length);
        for (const line of lines) {
          const pending = this.#onLine(line, share);
          if (pending !== undefined) await pending;
          if (this.#closing) break;
        }
        if (this.#closing) break;
      }
    } catch (err) {
      log.warn("IRC connection {remote} failed: {err}", { remote: this.remote, err });
    } finally {
      await this.#inFlight?.atMost(0);
      await this.#endSession();
      await this.#lines.close(this.hub.config.shutdownGraceMs);
      await this.#held;
    }
  }

  // --- SessionPort ---

  /** It formats the publications' events handed with a delivery, never their frames. */
  readonly readsEvents = true;

  /**
   * Translates hub events to IRC lines and queues them: their publications' events when
   * given, else the encoded frames decoded; a fan-out's events are translated once for
   * all its IRC receivers ({@linkcode ircFanout}).
   */
  send(
    frames: Uint8Array,
    count = 1,
    publications?: readonly Publication[],
    first = 0,
  ): boolean {
    if (this.#lines.closed) return false;
    const bytes = ircFanout.bytesFor(frames, this, this.#onBadEvent, count, publications, first);
    if (bytes === null) return true;
    const sent = this.#queueBytes(bytes);
    if (sent) this.hub.metrics.counters.deliveries++;
    return sent;
  }

  outbound(): OutboundProgress {
    const { bytesOut } = this.#lines.stats;
    return { written: bytesOut, queued: this.#lines.queuedBytes };
  }

  whenWritten(offset: number): Promise<boolean> {
    return this.#lines.whenWritten(offset);
  }

  /** Ends the connection after an optional notice, with an `ERROR` line. */
  end(notice?: { code: NoticeCode; text: string }): void {
    this.quit(notice?.text ?? "Closing link");
  }

  /** Sends a notice without ending anything (shutdown warnings). */
  notify(notice: { code: NoticeCode; text: string }): void {
    if (!this.#closing) this.#queue(serverNotice(this, notice.text));
  }

  // --- IrcClient ---

  /** Never throws: parameters are made carriable (a client's own words may not be). */
  reply(numeric: string, ...params: string[]): void {
    const all = [this.nick, ...params].map((param, i, list) => {
      const clean = oneLine(param);
      if (i === list.length - 1) return clean;
      return clean === "" ? "*" : clean.replace(/ /g, "_").replace(/^:/, "_");
    });
    this.sendLines([
      formatFittedIrcMessage({ source: IRC_SERVER_NAME, command: numeric, params: all }),
    ]);
  }

  sendLines(lines: readonly string[]): void {
    if (this.#captured !== null) this.#captured.push(...lines);
    else this.#queue(lines);
  }

  setNick(nick: string): Promise<void> {
    this.#nick = nick;
    return this.#tryRegister();
  }

  setUser(): Promise<void> {
    this.#userGiven = true;
    return this.#tryRegister();
  }

  setPassword(password: string): void {
    this.#password = password;
  }

  holdRegistration(held: boolean): Promise<void> {
    this.#capHeld = held;
    return held ? Promise.resolve() : this.#tryRegister();
  }

  quit(reason: string): void {
    if (this.#closing) return;
    this.#releaseCaptured();
    this.#closing = true;
    this.#queue([`ERROR :Closing link: ${this.ip} (${reason.replace(/[\r\n\0]/g, " ")})`]);
    this.#endSession();
    this.#lines.close(this.hub.config.shutdownGraceMs);
  }

  admitLogin(): number {
    const admission = this.#flood.admit("login", 0, performance.now(), LOGIN_COST);
    return admission.admitted ? 0 : Math.max(1, admission.retryAfter);
  }

  /** A request id in time order (a PRIVMSG's is its message's client id: see request_id.ts). */
  newId(): string {
    return newIrcRequestId();
  }

  /**
   * Enforces the registration deadline, the idle timeout and the write deadline, as
   * {@linkcode ClientConnection.sweep} does.
   */
  sweep(now: number, intervalMs: number): void {
    if (this.#closing) return;
    const config = this.hub.config;
    if (this.#lines.writeStalledPast(intervalMs, config.writeTimeoutMs)) {
      this.#cutOff(`a write stalled for over ${config.writeTimeoutMs} ms`);
      return;
    }
    if (this.#session === null) {
      if (now - this.#openedAt > this.#loginTimeoutMs) {
        this.quit(`Registration must complete within ${this.#loginTimeoutMs / 1000} s`);
      }
      return;
    }
    const idleSec = config.idleTimeoutSec;
    if (idleSec > 0 && now - this.#session.lastCommandAt > idleSec * 1000) {
      this.hub.metrics.counters.idleTimeouts++;
      this.quit(`logged out after ${idleSec} s without a command`);
    }
  }

  // --- lines ---

  /**
   * Handles one line. Returns what the reading must wait for before the next line:
   * the command's completion, except for a message to a channel, which is pipelined as
   * a chat client's `say` is (appended in order, synchronously up to its append; at most
   * {@linkcode MAX_IN_FLIGHT} at once): one sender's lines do not each wait for the
   * previous one's store and fan-out. A line with tags (a label) is not pipelined.
   */
  #onLine(split: SplitLine, bytes: number): Promise<void> | undefined {
    let message: IrcMessage | null = null;
    let problem: IrcLineError | null = null;
    if (split.ok) {
      try {
        message = parseIrcLine(split.line);
      } catch (err) {
        if (!(err instanceof IrcLineError)) throw err;
        if (err.code === "empty") return;
        problem = err;
      }
    } else {
      problem = new IrcLineError(split.code, split.message);
    }
    const label = message?.tags.label;
    if (
      label === undefined || label === "" || utf8Length(label) > MAX_LABEL_BYTES ||
      !this.caps.has("labeled-response")
    ) {
      return this.#dispatch(message, problem, bytes);
    }
    return this.#dispatchLabeled(message, problem, bytes, label);
  }

  /** Runs a labelled command: its replies (not the hub's events meanwhile) go back labelled, together. */
  async #dispatchLabeled(
    message: IrcMessage | null,
    problem: IrcLineError | null,
    bytes: number,
    label: string,
  ): Promise<void> {
    this.#captured = [];
    this.#label = label;
    try {
      await this.#dispatch(message, problem, bytes);
    } finally {
      this.#releaseCaptured();
    }
  }

  /** Sends the replies of the labelled command running, labelled (a quit sends them first). */
  #releaseCaptured(): void {
    const captured = this.#captured;
    if (captured === null) return;
    this.#captured = null;
    this.#queue(labeledLines(this.#label, captured, this.caps.has("batch"), newBatchId()));
  }

  #dispatch(
    message: IrcMessage | null,
    problem: IrcLineError | null,
    bytes: number,
  ): Promise<void> | undefined {
    const now = performance.now();
    const spec = message === null ? undefined : ircCommands[message.command];
    const registered = this.#session !== null;
    if (registered) this.hub.metrics.counters.requests++;
    const type = spec?.message ? "say" : spec?.toldToOthers ? "away" : "irc";
    const cost = message?.command === "USER" || message?.command === "NICK" ? LOGIN_COST / 2 : 1;
    const admission = this.#flood.admit(type, bytes, now, cost);
    if (!admission.admitted) {
      this.hub.metrics.counters.rateLimited++;
      this.reply(
        "263",
        message?.command ?? "*",
        `Please wait ${admission.retryAfter} s and try again`,
      );
      if (admission.persistent) {
        this.hub.metrics.counters.floodDisconnects++;
        this.quit("Excess flood");
      }
      return;
    }
    if (problem !== null) {
      this.hub.metrics.counters.protocolErrors++;
      if (problem.code === "line_too_long" || problem.code === "tags_too_long") {
        this.reply("417", `Input line was too long (${MAX_LINE_BYTES} bytes, tags aside)`);
      } else if (problem.code === "bad_command") {
        this.reply("421", "*", `Unknown command: ${problem.message}`);
      } else {
        this.reply("400", "*", problem.message);
      }
      this.#failed();
      return;
    }
    const command = message!.command;
    if (spec === undefined) {
      if (registered) this.reply("421", command, "Unknown command");
      else this.reply("451", "You have not registered");
      this.#failed();
      return;
    }
    if (!registered && !spec.beforeRegistration) {
      this.reply("451", "You have not registered");
      this.#failed();
      return;
    }
    if (registered && spec.onlyBeforeRegistration) {
      this.reply("462", "You may not reregister");
      this.#failed();
      return;
    }
    if (message!.params.length < spec.minParams) {
      this.reply("461", command, "Not enough parameters");
      this.#failed();
      return;
    }
    if (registered && spec.activity !== false) this.#session!.lastCommandAt = wholeMs(now);
    if (registered && spec.message) this.hub.metrics.counters.messagesIn++;
    // Called at once, so a channel message is appended before the next line is read; a
    // throw is a rejection.
    let result: void | Promise<unknown>;
    try {
      result = spec.run(this, message!);
    } catch (err) {
      result = Promise.reject(err);
    }
    const pipelined = spec.message === true && message!.params[0]?.startsWith("#") === true &&
      hasNoTags(message!.tags);
    if (!pipelined) {
      return Promise.resolve(result).then(
        () => this.#flood.succeeded(),
        (err: unknown) => this.#commandFailed(command, err),
      );
    }
    // Counted until settled, by its own reaction: one reaction per message, no closure.
    const inFlight = this.#inFlight ??= new InFlight();
    inFlight.begin();
    Promise.resolve(result).then(this.#messageDoneOnce(), this.#messageFailedOf(command));
    if (inFlight.size >= MAX_IN_FLIGHT) return inFlight.atMost(MAX_IN_FLIGHT - 1);
    return undefined;
  }

  /** A command failed: its error as a numeric, counted against the client. */
  #commandFailed(command: string, err: unknown): void {
    this.#replyError(command, err);
    this.#failed();
  }

  /** A pipelined message's reaction when done; made once, on the first (an idle client has none). */
  #messageDone: (() => void) | null = null;
  /** Per command of the pipelined messages (PRIVMSG, NOTICE): its failure's reaction. */
  #messageFailed: Map<string, (err: unknown) => void> | null = null;

  #messageDoneOnce(): () => void {
    return this.#messageDone ??= () => {
      this.#flood.succeeded();
      this.#inFlight!.settled();
    };
  }

  #messageFailedOf(command: string): (err: unknown) => void {
    const byCommand = this.#messageFailed ??= new Map();
    let failed = byCommand.get(command);
    if (failed === undefined) {
      failed = (err: unknown) => {
        this.#commandFailed(command, err);
        this.#inFlight!.settled();
      };
      byCommand.set(command, failed);
    }
    return failed;
  }

  #replyError(command: string, err: unknown): void {
    if (err instanceof IrcNumericError) {
      this.reply(err.numeric, ...err.params);
      return;
    }
    if (err instanceof CommandError) {
      this.reply("400", command, err.message);
      return;
    }
    if (isDiskFull(err)) {
      this.hub.metrics.counters.storageFull++;
      this.reply("400", command, "the server's disk is full: nothing was stored; try again later");
      return;
    }
    log.error("IRC {command} from {remote} failed: {err}", { command, remote: this.remote, err });
    this.reply("400", command, "internal server error");
  }

  /** An error reply costs more; nothing but errors, and the client is cut off. */
  #failed(): void {
    if (this.#closing || !this.#flood.failed(performance.now())) return;
    this.hub.metrics.counters.floodDisconnects++;
    this.hub.metrics.counters.errorDisconnects++;
    this.quit("every recent command failed");
  }

  // --- registration ---

  /** Registers once the nick and user are given and capabilities negotiated. */
  #tryRegister(): Promise<void> {
    if (this.#session !== null || this.#registering || this.#capHeld) return Promise.resolve();
    if (this.#nick === null || !this.#userGiven) return Promise.resolve();
    this.#registering = true;
    // Authenticated through SASL: the account is the nick.
    return this.#register(this.sasl.account ?? this.#nick);
  }

  async #register(nick: string): Promise<void> {
    const admission = this.#flood.admit("login", 0, performance.now(), LOGIN_COST);
    if (!admission.admitted) {
      this.#registering = false;
      this.quit(`too many attempts: retry in ${admission.retryAfter} s`);
      return;
    }
    try {
      const authenticated = this.sasl.account !== null;
      const { session, reply, heldThrough } = await this.hub.login(
        this,
        nick,
        authenticated ? undefined : this.#password,
        { register: true, authenticated },
      );
      this.#session = session;
      this.#flood = new FloodControl(this.hub.config, performance.now());
      this.#welcome();
      for (const room of reply.rooms) {
        try {
          await joinRoom(this, room);
        } catch (err) {
          log.warn("IRC client {nick} could not rejoin {room}: {err}", { nick, room, err });
        }
      }
      if (reply.pending > 0) {
        const n = reply.pending;
        this.#queue(
          serverNotice(this, `${n} direct message${n === 1 ? "" : "s"} came while you were away`),
        );
      }
      this.#held = this.hub.deliverPending(session, heldThrough).catch((err) =>
        log.error("delivering held messages to {nick} failed: {err}", { nick, err })
      );
    } catch (err) {
      this.#registering = false;
      if (!(err instanceof CommandError)) {
        log.error("IRC registration of {nick} from {remote} failed: {err}", {
          nick,
          remote: this.remote,
          err,
        });
        this.quit("internal server error");
        return;
      }
      if (err.code === "nick_in_use") {
        this.#nick = null;
        this.reply("433", nick, "Nickname is already in use");
      } else if (err.code === "bad_name") {
        this.#nick = null;
        this.reply("432", nick, `Erroneous nickname: ${err.message}`);
      } else if (PASSWORD_FAILURES.has(err.code)) {
        this.reply("464", `Password incorrect: ${err.message}`);
        this.quit(err.message);
      } else {
        this.quit(err.message);
      }
      this.#failed();
    }
  }

  #welcome(): void {
    const nick = this.nick;
    this.reply("001", `Welcome to chat, ${nick}`);
    this.reply("002", `Your host is ${IRC_SERVER_NAME}, running chat`);
    this.reply("003", "This server speaks IRC beside the chat protocol");
    this.reply("004", IRC_SERVER_NAME, "chat", "i", "t");
    for (const tokens of isupportGroups()) {
      this.reply("005", ...tokens, "are supported by this server");
    }
    this.reply("422", "MOTD File is missing");
  }

  // --- output ---

  #queue(lines: readonly string[]): boolean {
    if (lines.length === 0) return true;
    return this.#queueBytes(encodeIrcLine(lines.join("\r\n")));
  }

  #queueBytes(bytes: Uint8Array): boolean {
    try {
      this.#lines.send(bytes);
      return true;
    } catch (err) {
      if (err instanceof QueueOverflowError) this.#cutOff("outbound queue overflow");
      else if (!(err instanceof ConnectionClosedError)) throw err;
      return false;
    }
  }

  #endSession(): Promise<void> {
    const session = this.#session;
    if (session === null || session.ended) return Promise.resolve();
    log.info("{nick} (IRC) disconnected ({remote})", {
      nick: session.account.nick,
      remote: this.remote,
    });
    return this.hub.endSession(session).catch((err) =>
      log.error("ending session failed: {err}", { err })
    );
  }

  #cutOff(reason: string): void {
    if (this.#lines.closed) return;
    log.warn("cutting off slow IRC consumer {remote}: {reason}", { remote: this.remote, reason });
    this.hub.metrics.counters.slowConsumerCutoffs++;
    this.#closing = true;
    this.#endSession();
    this.#lines.closeWith(
      encodeIrcLine(`ERROR :Closing link: reading too slowly: ${reason}`),
      1000,
    );
  }
}
