/**
 * Connection handling: one client socket, from `hello` through login to the end.
 *
 * This layer owns the socket (through a {@linkcode FramedConnection}), validates what
 * arrives, dispatches requests to the command table, turns results into `ok` /
 * `error` replies, and enforces deadlines (login, idle, stalled writes). Chat state
 * lives in the hub; this file holds no chat logic.
 *
 * @module
 */

import { roundStages } from "../transport/round_stages.ts";
import { getLogger } from "@logtape/logtape";
import { ProtocolError } from "../protocol/errors.ts";
import type { Frame } from "../protocol/frame.ts";
import { answerHello, SERVER_FEATURES } from "../protocol/hello.ts";
import { type ClientMessage, parseClientMessage, requestIdOf } from "../protocol/messages.ts";
import type { NoticeCode } from "../protocol/replies.ts";
import type { OutboundProgress } from "../transport/buffer_pool.ts";
import { ConnectionClosedError, QueueOverflowError } from "../transport/errors.ts";
import {
  type ByteChannel,
  FramedConnection,
  type FrameReceiver,
} from "../transport/framed_connection.ts";
import type { PartialFrameBudget } from "../transport/partial_frame_budget.ts";
import { type CommandContext, commands, type CommandSpec } from "./commands.ts";
import { isDiskFull } from "./disk_space.ts";
import { CommandError } from "./errors.ts";
import { InFlight } from "./in_flight.ts";
import type { DeadlineWheel, Timed } from "./deadline_wheel.ts";
import { wholeMs } from "./whole_ms.ts";
import { StoreError } from "./store.ts";
import {
  type Admission,
  FloodControl,
  MESSAGE_TYPES,
  PACED_TYPES,
  pacedBytes,
  requestCost,
} from "./flood_control.ts";
import type { ChatHub, Session, SessionPort } from "./hub.ts";

const log = getLogger(["chat", "server", "connection"]);

/** Resolves after `ms` milliseconds. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Largest frame accepted before login: enough for hello and login, no more. */
export const PRE_LOGIN_MAX_FRAME = 64 * 1024;
/** Pipelined requests in flight per connection before reading pauses. */
export const MAX_IN_FLIGHT = 512;
/** The server's name in its `hello`. */
export const SERVER_AGENT = "chat-server/1";

type Phase = "hello" | "login" | "session" | "closing";

/** Options of {@linkcode ClientConnection}. */
export interface ClientConnectionOptions {
  /** The client's IP address, for per-address limits. */
  ip: string;
  /** The client's port (with `ip`: its address for logs and the session). */
  port: number;
  /** Milliseconds a connection may take to complete hello and login. */
  loginTimeoutMs: number;
  /**
   * Gives the array an incoming payload is received into (file chunks: a pool of buffers
   * reused once their bytes are on disk). Default: a new array.
   */
  allocatePayload?: (length: number) => Uint8Array;
  /** The server's bound on bytes held for unfinished frames (all connections share it). */
  partialFrames?: PartialFrameBudget;
  /**
   * The server's bound on bytes that requests of a type with a `maxInFlight` above one
   * (file chunks) may hold read ahead, all connections together: a connection reads on
   * while one runs only with room for its frames here, else one at a time. Default: none.
   */
  readAhead?: PartialFrameBudget;
  /** The timer of the server's connections' deadlines (login, idle, stalled writes, unfinished frames). */
  deadlines: DeadlineWheel;
}

/**
 * One client connection. `serve()` serves it until it ends; its deadlines are checked
 * (`sweep()`) by the server's {@linkcode DeadlineWheel} when one may have come: an idle
 * connection with no deadline is not visited at all.
 */
export class ClientConnection implements SessionPort, FrameReceiver, Timed {
  /** The client's IP address. */
  readonly ip: string;
  readonly #port: number;
  readonly #hub: ChatHub;
  readonly #framed: FramedConnection;
  readonly #openedAt = wholeMs(performance.now());
  readonly #loginTimeoutMs: number;
  /** Pipelined requests running (created with the first: an idle connection has none). */
  #inFlight: InFlight | null = null;
  /** Per request type with a `maxInFlight` of its own, those running (made on first use). */
  #inFlightByType: Map<string, TypeInFlight> | null = null;
  readonly #readAhead: PartialFrameBudget | null;
  /** The connection's budget before login, then the session's, fresh at login (made on first use). */
  #flood: FloodControl | null = null;
  #bytesSeen = 0;
  /** Requests run and not yet answered: one of them may still succeed. */
  #awaiting = 0;
  #phase: Phase = "hello";
  #session: Session | null = null;
  /** The delivery of the direct messages held for the session, while it runs. */
  #held: Promise<void> | null = null;
  /** Called once the connection has ended (see {@linkcode serve}). */
  #onEnded: ((connection: ClientConnection) => void) | null = null;
  readonly #deadlines: DeadlineWheel;
  /** When the wheel checks it next (see {@linkcode Timed}); 0: not scheduled. */
  deadlineAt = 0;

  /** Wraps an accepted channel. */
  constructor(channel: ByteChannel, hub: ChatHub, options: ClientConnectionOptions) {
    this.ip = options.ip;
    this.#port = options.port;
    this.#hub = hub;
    this.#loginTimeoutMs = options.loginTimeoutMs;
    this.#deadlines = options.deadlines;
    this.#readAhead = options.readAhead ?? null;
    this.#framed = new FramedConnection(channel, {
      maxFrameSize: Math.min(PRE_LOGIN_MAX_FRAME, hub.config.maxFrameSize),
      maxQueueBytes: hub.config.maxQueueBytes,
      ...(options.allocatePayload ? { allocatePayload: options.allocatePayload } : {}),
      ...(options.partialFrames ? { partialFrames: options.partialFrames } : {}),
    });
  }

  /** The client's address and port (made when asked: logs, mostly, and no string kept). */
  get remote(): string {
    return `${this.ip}:${this.#port}`;
  }

  /** Flood control: the connection's budget before login, then the session's. */
  get #floodControl(): FloodControl {
    return this.#flood ??= new FloodControl(this.#hub.config, performance.now());
  }

  /** The logged-in session, if any. */
  get session(): Session | null {
    return this.#session;
  }

  /**
   * Serves the connection until it ends, then calls `onEnded` (once). Nothing waits in an
   * async function meanwhile: the connection is called back with what each read brings
   * ({@linkcode receiveFrames}), so an idle one holds its pending read and little else.
   */
  serve(onEnded: (connection: ClientConnection) => void): void {
    log.debug("connection from {remote}", { remote: this.remote });
    this.#onEnded = onEnded;
    this.#framed.receive(this);
    this.#arm(performance.now());
  }

  /** A deadline may have come (called by the wheel): checks, then schedules the next. */
  onDeadline(now: number): void {
    this.sweep(now, this.#deadlines.tickMs);
    this.#arm(now);
  }

  /** A frame started to arrive: its deadline is scheduled. */
  receivePartial(): void {
    this.#arm(performance.now());
  }

  /**
   * Schedules the next check of the connection's deadlines, if it has any: at every
   * tick while a write is under way (a stall counts in ticks without progress), else at
   * the earliest of the login, idle and unfinished-frame deadlines. Activity moves none
   * of them: a check that comes early finds its deadline moved and schedules it again.
   */
  #arm(now: number): void {
    if (this.#phase === "closing") return;
    const framed = this.#framed;
    if (framed.writeStalledMs > 0 || framed.queuedBytes > 0) {
      this.#deadlines.scheduleNextTick(this);
      return;
    }
    const config = this.#hub.config;
    let at = Infinity;
    const partialMs = framed.partialFrameMs;
    if (partialMs > 0 && config.frameTimeoutMs > 0) at = now - partialMs + config.frameTimeoutMs;
    if (this.#session === null) {
      at = Math.min(at, this.#openedAt + this.#loginTimeoutMs);
    } else if (config.idleTimeoutSec > 0) {
      at = Math.min(at, this.#session.lastCommandAt + config.idleTimeoutSec * 1000);
    }
    if (at !== Infinity) this.#deadlines.schedule(this, at);
  }

  /**
   * Handles the frames of one read (called by the connection's reader). They are
   * dispatched together: pipelined requests do not wait for one another, so their
   * deliveries share one write per receiver. A request that must finish before the next
   * holds the rest back; the promise says when the next read may start.
   */
  receiveFrames(frames: Frame[]): Promise<void> | undefined {
    if (roundStages.on) roundStages.read(performance.now());
    return this.#handleFrames(frames, 0);
  }

  #handleFrames(frames: Frame[], from: number): Promise<void> | undefined {
    // They arrived together: one look at the clock for them (again after any wait).
    const now = performance.now();
    for (let i = from; i < frames.length; i++) {
      if (this.#phase === "closing") return undefined;
      const pending = this.#onFrame(frames[i], now);
      if (pending !== undefined) return pending.then(() => this.#handleFrames(frames, i + 1));
    }
    return undefined;
  }

  /** The reading ended (called by the connection's reader): ends the session and the socket. */
  receiveEnd(error: unknown): void {
    const ended = () => this.#onEnded?.(this);
    this.#finish(error).then(ended, ended);
  }

  async #finish(error: unknown): Promise<void> {
    try {
      if (error instanceof ProtocolError) {
        this.#hub.metrics.counters.protocolErrors++;
        if (error.code === "server_busy") this.#hub.metrics.counters.partialFramesRefused++;
        log.info("closing {remote}: {code}: {message}", {
          remote: this.remote,
          code: error.code,
          message: error.message,
        });
        this.#trySend({ type: "error", code: error.code, message: error.message });
        await this.#framed.close(1000);
      } else if (error !== undefined) {
        log.warn("connection {remote} failed: {err}", { remote: this.remote, err: error });
      }
    } finally {
      this.#deadlines.cancel(this);
      await this.#inFlight?.atMost(0);
      await this.#endSession();
      await this.#framed.close(this.#hub.config.shutdownGraceMs);
      await this.#held;
    }
  }

  /** Bytes written to the client so far, and queued behind them. */
  outbound(): OutboundProgress {
    return { written: this.#framed.stats.bytesOut, queued: this.#framed.queuedBytes };
  }

  /** Resolves true once `offset` bytes are written to the client, false if they never will be. */
  whenWritten(offset: number): Promise<boolean> {
    return this.#framed.whenWritten(offset);
  }

  /** Queues encoded frames (`count` of them); on overflow the client is cut off as a slow consumer. */
  send(frame: Uint8Array, count = 1): boolean {
    if (this.#framed.closed) return false;
    try {
      this.#framed.sendEncoded(frame);
      this.#hub.metrics.counters.deliveries += count;
      // Checked at the next tick: the write may stall.
      this.#deadlines.scheduleNextTick(this);
      return true;
    } catch (err) {
      if (err instanceof QueueOverflowError) this.#cutOff("outbound queue overflow");
      else if (!(err instanceof ConnectionClosedError)) throw err;
      return false;
    }
  }

  /**
   * Ends the connection gracefully after an optional notice. The session ends at once
   * (presence goes out now); the socket closes once the client has read everything.
   */
  end(notice?: { code: NoticeCode; text: string }): void {
    if (this.#phase === "closing") return;
    if (notice !== undefined) this.#trySend({ type: "notice", ...notice });
    this.#phase = "closing";
    this.#endSession();
    this.#framed.close(this.#hub.config.shutdownGraceMs);
  }

  /** Bytes received and written so far. */
  get traffic(): { bytesIn: number; bytesOut: number } {
    const { bytesIn, bytesOut } = this.#framed.stats;
    return { bytesIn, bytesOut };
  }

  /** Sends a notice without ending anything (shutdown warnings). */
  notify(notice: { code: NoticeCode; text: string }): void {
    if (this.#phase !== "closing") this.#trySend({ type: "notice", ...notice });
  }

  /**
   * Enforces the login deadline, the idle timeout and the write deadline; called every
   * `intervalMs`. A write counts as stalled only over sweeps in which it made no progress,
   * and each such sweep counts for `intervalMs` however late it ran: when the server's own
   * event loop is what stalls, clients are not blamed for it.
   */
  sweep(now: number, intervalMs: number): void {
    if (this.#phase === "closing") return;
    const config = this.#hub.config;
    if (this.#framed.writeStalledPast(intervalMs, config.writeTimeoutMs)) {
      this.#cutOff(`a write stalled for over ${config.writeTimeoutMs} ms`);
      return;
    }
    // A frame that has started must finish, idle timeout or not: its payload is held whole.
    const frameMs = config.frameTimeoutMs;
    if (frameMs > 0 && this.#framed.partialFrameMs > frameMs) {
      this.#hub.metrics.counters.frameTimeouts++;
      log.info("closing {remote}: a frame took over {frameMs} ms to arrive", {
        remote: this.remote,
        frameMs,
      });
      this.#trySend({
        type: "error",
        code: "frame_timeout",
        message: `a frame must arrive whole within ${frameMs / 1000} s of its first byte`,
      });
      this.end();
      return;
    }
    if (this.#session === null) {
      if (now - this.#openedAt > this.#loginTimeoutMs) {
        this.#trySend({
          type: "error",
          code: "not_logged_in",
          message: `hello and login must complete within ${this.#loginTimeoutMs / 1000} s`,
        });
        this.end();
      }
      return;
    }
    const idleSec = config.idleTimeoutSec;
    if (idleSec > 0 && now - this.#session.lastCommandAt > idleSec * 1000) {
      this.#hub.metrics.counters.idleTimeouts++;
      log.info("{nick} idle for {idleSec} s: logging out", {
        nick: this.#session.account.nick,
        idleSec,
      });
      this.end({
        code: "idle_timeout",
        text: `logged out after ${idleSec} s without a command`,
      });
    }
  }

  /**
   * Handles one frame. Returns a promise when the next frame must wait for it: a
   * request that is not pipelined, a paced one waiting for its byte budget, or too many
   * in flight. Every frame after `hello` goes through flood control first, before login
   * too and whether or not it parses; an error reply costs more. `now`: when it arrived
   * (`performance.now()`).
   */
  #onFrame(frame: Frame, now: number): Promise<void> | undefined {
    let message: ClientMessage | null = null;
    let invalid: ProtocolError | null = null;
    try {
      message = parseClientMessage(frame.header);
    } catch (err) {
      if (!(err instanceof ProtocolError) || err.fatal) throw err;
      if (this.#phase === "hello") throw this.#expectedHello();
      invalid = err;
    }
    if (this.#phase === "hello") {
      if (message?.type !== "hello") throw this.#expectedHello();
      this.#bytesSeen = this.#framed.bytesIn;
      this.#trySend(answerHello(message, {
        features: SERVER_FEATURES,
        server: SERVER_AGENT,
        maxFrame: this.#hub.config.maxFrameSize,
        maxQueue: this.#hub.config.maxQueueBytes,
      }));
      this.#phase = "login";
      return;
    }
    const bytes = this.#framed.bytesIn - this.#bytesSeen;
    this.#bytesSeen = this.#framed.bytesIn;
    if (this.#session !== null) this.#hub.metrics.counters.requests++;
    if (message !== null && this.#session !== null && PACED_TYPES.has(message.type)) {
      const wait = this.#floodControl.pace(pacedBytes(message as { type: string }, bytes), now);
      if (wait > 0) {
        this.#hub.metrics.counters.pacedRequests++;
        const paced = message;
        return delay(wait * 1000).then(() =>
          this.#phase === "closing" ? undefined : this.#dispatch(paced, frame, performance.now())
        );
      }
      return this.#dispatch(message, frame, now);
    }
    const type = message?.type ?? "invalid";
    const cost = message === null ? 1 : requestCost(message as { type: string; limit?: number });
    const admission = this.#floodControl.admit(type, bytes, now, cost);
    if (!admission.admitted) {
      this.#refuse(requestIdOf(frame.header), admission);
      return;
    }
    if (invalid !== null) {
      const code = invalid.code === "unknown_type" ? "unknown_command" : "bad_message";
      const re = requestIdOf(frame.header);
      this.#trySend({ type: "error", re, code, message: invalid.message });
      this.#failed();
      return;
    }
    return this.#dispatch(message!, frame, now);
  }

  /** Answers a request that flood control refused; disconnects a persistent flooder. */
  #refuse(id: string | undefined, admission: Admission & { admitted: false }): void {
    const counters = this.#hub.metrics.counters;
    counters.rateLimited++;
    this.#trySend({
      type: "error",
      re: id,
      code: "rate_limited",
      message: `slow down: too many ${admission.what}; retry in ${admission.retryAfter} s`,
      retryAfter: admission.retryAfter,
    });
    if (admission.persistent) {
      counters.floodDisconnects++;
      log.warn("disconnecting {who} ({remote}) for flooding", {
        who: this.#session?.account.nick ?? "a client not logged in",
        remote: this.remote,
      });
      this.end({ code: "flood", text: "disconnected for sending too much, too fast" });
    }
  }

  /** Runs an admitted request. */
  #dispatch(message: ClientMessage, frame: Frame, now: number): Promise<void> | undefined {
    if (message.type === "hello") {
      this.#trySend({ type: "error", code: "bad_message", message: "hello was already exchanged" });
      this.#failed();
      return;
    }
    if (message.type === "login") {
      return this.#login(message.id, message.nick, message.password, {
        acksHeld: message.ack === true,
        register: message.register !== false,
        ...(message.token !== undefined ? { token: message.token } : {}),
      });
    }
    if (this.#session === null) {
      this.#trySend({
        type: "error",
        re: message.id,
        code: "not_logged_in",
        message: "log in first",
      });
      this.#failed();
      return;
    }
    if (MESSAGE_TYPES.has(message.type)) this.#hub.metrics.counters.messagesIn++;
    if (roundStages.on && message.type === "say") roundStages.say(message.text);
    const spec = commands[message.type] as CommandSpec<typeof message.type>;
    if (spec.activity !== false) this.#session.lastCommandAt = wholeMs(now);
    const ctx: CommandContext = { hub: this.#hub, session: this.#session, body: frame.body };
    let result: Promise<object>;
    try {
      result = spec.run(ctx, message as never);
    } catch (err) {
      result = Promise.reject(err);
    }
    if (spec.endsSession) {
      const done = this.#reply(message.id, result, null);
      const running = this.#inFlight?.atMost(0) ?? Promise.resolve();
      return running.then(() => done).then(() => this.end());
    }
    if (!spec.pipelined) return this.#reply(message.id, result, null);
    // Counted until answered, by the reply itself: no promise tracked per request.
    const inFlight = this.#inFlight ??= new InFlight();
    inFlight.begin();
    const most = spec.maxInFlight;
    let ofType: TypeInFlight | null = null;
    if (most !== undefined) {
      const byType = this.#inFlightByType ??= new Map();
      ofType = byType.get(message.type) ?? null;
      if (ofType === null) byType.set(message.type, ofType = new TypeInFlight());
      ofType.begin();
    }
    this.#reply(message.id, result, inFlight, ofType);
    if (ofType !== null) {
      if (ofType.size >= most!) return ofType.atMost(most! - 1);
      if (ofType.readAhead === 0 && !this.#mayReadAhead(ofType, most!)) return ofType.atMost(0);
    }
    if (inFlight.size >= MAX_IN_FLIGHT) return inFlight.atMost(MAX_IN_FLIGHT - 1);
    return undefined;
  }

  /**
   * Whether the connection may read on while requests of a type in `ofType` run (at most
   * `most`): the frames it may read meanwhile, `most - 1` of the largest, are reserved
   * from the server's read-ahead budget until none of the type runs any more. Without
   * room there, the connection reads on once they are done (one at a time): each holds
   * its body until answered (a file chunk, until written), so read-ahead alone, over
   * every connection, stays within the budget.
   */
  #mayReadAhead(ofType: TypeInFlight, most: number): boolean {
    const budget = this.#readAhead;
    if (budget === null) return true;
    const bytes = (most - 1) * this.#framed.maxFrameSize;
    if (!budget.tryReserve(bytes)) return false;
    ofType.readAhead = bytes;
    return true;
  }

  /** One request of a type with a `maxInFlight` settled: the last gives back its read-ahead. */
  #settledOfType(ofType: TypeInFlight): void {
    ofType.settled();
    if (ofType.size > 0 || ofType.readAhead === 0) return;
    this.#readAhead?.release(ofType.readAhead);
    ofType.readAhead = 0;
  }

  /**
   * Counts an error reply: it costs more, and a connection whose last requests all
   * failed (`--flood-strikes` of them in a row) is cut off like a flooder.
   */
  #failed(): void {
    const onlyErrors = this.#floodControl.failed(performance.now());
    // Pipelined requests still running may succeed: errors often come back before them.
    if (this.#phase === "closing" || !onlyErrors || this.#awaiting > 0) return;
    this.#hub.metrics.counters.floodDisconnects++;
    this.#hub.metrics.counters.errorDisconnects++;
    log.warn("disconnecting {who} ({remote}): nothing but errors", {
      who: this.#session?.account.nick ?? "a client not logged in",
      remote: this.remote,
    });
    this.end({ code: "flood", text: "disconnected: every recent request failed" });
  }

  async #login(
    id: string,
    nick: string,
    password: string | undefined,
    { acksHeld, register, token }: { acksHeld: boolean; register: boolean; token?: string },
  ): Promise<void> {
    if (this.#session !== null) {
      this.#trySend({
        type: "error",
        re: id,
        code: "already_logged_in",
        message: `already logged in as ${this.#session.account.nick}`,
      });
      return;
    }
    try {
      const { session, reply, heldThrough } = await this.#hub.login(this, nick, password, {
        register,
        ...(token !== undefined ? { token } : {}),
      });
      this.#session = session;
      session.acksHeld = acksHeld;
      this.#phase = "session";
      this.#framed.maxFrameSize = this.#hub.config.maxFrameSize;
      this.#trySend({ type: "ok", re: id, ...reply });
      // Made on the session's first request: an idle session holds none.
      this.#flood = null;
      // In the background, paced by what the client reads: its requests go on meanwhile.
      const held: Promise<void> = this.#hub.deliverPending(session, heldThrough).catch((err) =>
        log.error("delivering held messages to {nick} failed: {err}", {
          nick: session.account.nick,
          err,
        })
      ).then(() => {
        // Delivered: an idle connection keeps nothing of it.
        if (this.#held === held) this.#held = null;
      });
      this.#held = held;
    } catch (err) {
      this.#sendError(id, err);
    }
  }

  /**
   * Answers request `id` once `result` settles, then settles it in `inFlight` (a
   * pipelined request) and in `ofType` (one of a type with its own `maxInFlight`). Not an async function: a request waiting for its commit holds
   * one reaction on its result, not a suspended frame and a promise of its own.
   */
  #reply(
    id: string,
    result: Promise<object>,
    inFlight: InFlight | null,
    ofType: TypeInFlight | null = null,
  ): Promise<void> {
    this.#awaiting++;
    return result.then(
      (data) => this.#answer(id, true, data, inFlight, ofType),
      (err) => this.#answer(id, false, err, inFlight, ofType),
    );
  }

  /** Sends request `id`'s reply (`ok`) or error, then settles it where it is counted. */
  #answer(
    id: string,
    ok: boolean,
    outcome: unknown,
    inFlight: InFlight | null,
    ofType: TypeInFlight | null,
  ): void {
    this.#awaiting--;
    try {
      if (ok) this.#replyOk(id, outcome as object);
      else this.#sendError(id, outcome);
    } catch (err) {
      this.#replyFailed(id, err, inFlight);
    } finally {
      inFlight?.settled();
      if (ofType !== null) this.#settledOfType(ofType);
    }
  }

  /**
   * A reply that could not be sent: the read loop ends the connection for a request it
   * waits for; a pipelined one (nothing waits for it) is logged.
   */
  #replyFailed(id: string, err: unknown, inFlight: InFlight | null): void {
    if (inFlight === null) throw err;
    log.error("replying to request {id} from {remote} failed: {err}", {
      id,
      remote: this.remote,
      err,
    });
  }

  #replyOk(id: string, data: object): void {
    try {
      this.#trySend({ type: "ok", re: id, ...data });
      this.#flood?.succeeded();
    } catch (err) {
      this.#sendError(id, err);
    }
  }

  #sendError(id: string, err: unknown): void {
    this.#sendErrorReply(id, err);
    this.#failed();
  }

  #sendErrorReply(id: string, err: unknown): void {
    if (err instanceof CommandError) {
      this.#trySend({
        type: "error",
        re: id,
        code: err.code,
        message: err.message,
        ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
      });
      return;
    }
    if (isDiskFull(err)) {
      this.#hub.metrics.counters.storageFull++;
      log.error("request {id} from {remote}: the disk is full: {err}", {
        id,
        remote: this.remote,
        err,
      });
      const message = "the server's disk is full: nothing was stored; try again later";
      this.#trySend({ type: "error", re: id, code: "storage_full", message });
      return;
    }
    if (err instanceof StoreError && err.code === "unavailable") {
      this.#hub.metrics.counters.storeUnavailable++;
      log.warn("request {id} from {remote}: the database cannot be reached: {err}", {
        id,
        remote: this.remote,
        err: err.message,
      });
      const message = "the server cannot reach its database: nothing was done; try again " +
        "in a moment (a message resent with the same id is stored once)";
      this.#trySend({ type: "error", re: id, code: "store_unavailable", message, retryAfter: 1 });
      return;
    }
    log.error("request {id} from {remote} failed: {err}", { id, remote: this.remote, err });
    this.#trySend({ type: "error", re: id, code: "internal", message: "internal server error" });
  }

  #expectedHello(): ProtocolError {
    return new ProtocolError("bad_message", 'the first frame must be a "hello"');
  }

  #trySend(event: object): void {
    try {
      this.#framed.send(event);
      this.#deadlines.scheduleNextTick(this);
    } catch (err) {
      if (err instanceof QueueOverflowError) this.#cutOff("outbound queue overflow");
      else if (!(err instanceof ConnectionClosedError)) throw err;
    }
  }

  /** Ends the hub session, once, whatever ends the connection. */
  #endSession(): Promise<void> {
    const session = this.#session;
    if (session === null || session.ended) return Promise.resolve();
    log.info("{nick} disconnected ({remote})", { nick: session.account.nick, remote: this.remote });
    return this.#hub.endSession(session).catch((err) =>
      log.error("ending session failed: {err}", { err })
    );
  }

  #cutOff(reason: string): void {
    if (this.#framed.closed) return;
    log.warn("cutting off slow consumer {remote}: {reason}", { remote: this.remote, reason });
    this.#hub.metrics.counters.slowConsumerCutoffs++;
    this.#phase = "closing";
    // Logged out at once: no more deliveries queue up behind the stalled write.
    this.#endSession();
    this.#framed.closeWith({
      type: "notice",
      code: "slow_consumer",
      text: `disconnected for reading too slowly: ${reason}`,
    });
  }
}

/** The requests of one type running on a connection, and the bytes it reserved to read ahead. */
class TypeInFlight extends InFlight {
  /** Bytes reserved from the server's read-ahead budget (0: none). */
  readAhead = 0;
}
