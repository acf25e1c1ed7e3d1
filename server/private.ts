/**
 * Private sessions brokered by the server (the course app's `startprivate`, done
 * properly): the server only introduces two clients; they then talk directly over an
 * end-to-end encrypted peer session (`peer/`), and the server never sees its keys.
 *
 * ```text
 * requester (alice)                  server                       target (bob)
 *   starts a peer listener (port P)
 *   private_start {nick:bob, sid, port:P} ->   checks: bob exists, is not alice,
 *                                             is online, has not blocked alice
 *                                             -> private_request {sid, from:alice}
 *                                                        <- private_accept {nick:alice}
 *   <- private_ready {sid, nick:bob, host:bob's IP}    ok {sid, host:alice's IP, port:P} ->
 *                                   bob dials alice's IP:P; the peer handshake runs
 *                                   (psk = sid, so a stranger cannot take the listener)
 * if bob cannot connect within a few seconds:
 *                                                        <- private_relay {sid}
 *   <- private_relay {sid, nick:bob}
 *   relay {sid} + body (encrypted records)  <->  relay {sid} + body, forwarded as is
 * ```
 *
 * `private_decline` tells the requester (`private_ended`, reason `declined`);
 * `private_stop` ends a pending or open session and tells the other side (`stopped`);
 * a side going offline ends it too (`offline`). The server keeps only the pairing, the
 * sid, the listener port and the two sessions: nothing secret. Relayed bytes are
 * forwarded unread (they are ChaCha20-Poly1305 records of the peer session).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { encodeFrame } from "../protocol/frame.ts";
import { userSubject } from "./broker.ts";
import type { CommandContext, CommandSpec } from "./commands.ts";
import { CommandError } from "./errors.ts";
import type { ChatHub, Session } from "./hub.ts";

const log = getLogger(["chat", "server", "private"]);

/** Largest relay frame body: a maximal peer record (64 KiB + tag + length) with room. */
export const MAX_RELAY_BYTES: number = 64 * 1024 + 1024;

type PairState = "offered" | "accepted" | "relay";

/** One private session as the server knows it. */
interface PrivatePair {
  readonly sid: string;
  readonly requester: Session;
  readonly targetKey: string;
  readonly targetNick: string;
  readonly port: number;
  target: Session | null;
  state: PairState;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`;
}

/** The private sessions of one hub; it hears of ended sessions to clean up after leavers. */
class PrivateRegistry {
  readonly #hub: ChatHub;
  readonly #bySid = new Map<string, PrivatePair>();
  readonly #byPair = new Map<string, PrivatePair>();

  constructor(hub: ChatHub) {
    this.#hub = hub;
    hub.onSessionEnded((session) => this.#sweep(session.account.key));
  }

  get(sid: string): PrivatePair | undefined {
    return this.#bySid.get(sid);
  }

  between(a: string, b: string): PrivatePair | undefined {
    return this.#byPair.get(pairKey(a, b));
  }

  add(pair: PrivatePair): void {
    this.#bySid.set(pair.sid, pair);
    this.#byPair.set(pairKey(pair.requester.account.key, pair.targetKey), pair);
  }

  remove(pair: PrivatePair): void {
    if (this.#bySid.get(pair.sid) === pair) this.#bySid.delete(pair.sid);
    const key = pairKey(pair.requester.account.key, pair.targetKey);
    if (this.#byPair.get(key) === pair) this.#byPair.delete(key);
  }

  /** Whether a side of the pair has gone (its session ended). */
  stale(pair: PrivatePair): boolean {
    return pair.requester.ended || (pair.target !== null && pair.target.ended);
  }

  /**
   * Ends the pair and tells each side with `private_ended`, except `except` (the side
   * that ended it, or the one that is gone); before an accept, "the target" is every
   * session of the target account.
   */
  end(pair: PrivatePair, reason: string, except: Session | null): void {
    this.remove(pair);
    if (except !== pair.requester) {
      pair.requester.send({ type: "private_ended", sid: pair.sid, nick: pair.targetNick, reason });
    }
    if (except === null || except.account.key !== pair.targetKey) {
      const event = {
        type: "private_ended",
        sid: pair.sid,
        nick: pair.requester.account.nick,
        reason,
      } as const;
      if (pair.target !== null) {
        pair.target.send(event);
      } else {
        this.#hub.broker.publish(userSubject(pair.targetKey), { event }).catch(() => {});
      }
    }
    log.debug("private session {sid} ended: {reason}", { sid: pair.sid, reason });
  }

  #sweep(accountKey: string): void {
    for (const pair of [...this.#bySid.values()]) {
      const involved = pair.requester.account.key === accountKey ||
        pair.targetKey === accountKey;
      if (!involved) continue;
      if (this.stale(pair)) {
        const gone = pair.requester.ended ? pair.requester : pair.target;
        this.end(pair, "offline", gone);
      } else if (pair.state === "offered" && this.#hub.online(pair.targetKey) === undefined) {
        this.end(pair, "offline", null);
      }
    }
  }
}

const registries = new WeakMap<ChatHub, PrivateRegistry>();

function registryOf(hub: ChatHub): PrivateRegistry {
  let registry = registries.get(hub);
  if (registry === undefined) {
    registry = new PrivateRegistry(hub);
    registries.set(hub, registry);
  }
  return registry;
}

/** Finds the caller's pair with `nick`, whichever side started it. */
async function pairWith(
  ctx: CommandContext,
  nick: string,
): Promise<{ pair: PrivatePair | undefined; other: { key: string; nick: string } }> {
  const other = await ctx.hub.requireAccount(nick);
  const pair = registryOf(ctx.hub).between(ctx.session.account.key, other.key);
  return { pair, other };
}

function isSide(pair: PrivatePair, session: Session): boolean {
  return pair.requester === session || pair.target === session;
}

/** The command table's entries for private sessions (see the module documentation). */
export const privateCommands: {
  private_start: CommandSpec<"private_start">;
  private_accept: CommandSpec<"private_accept">;
  private_decline: CommandSpec<"private_decline">;
  private_stop: CommandSpec<"private_stop">;
  private_relay: CommandSpec<"private_relay">;
  relay: CommandSpec<"relay">;
} = {
  private_start: {
    async run(ctx, { nick, sid, port }) {
      const { hub, session } = ctx;
      const self = session.account;
      const target = await hub.requireAccount(nick);
      if (target.key === self.key) {
        throw new CommandError("self", "you cannot start a private session with yourself");
      }
      const online = hub.online(target.key);
      if (online === undefined || online.hidden) {
        throw new CommandError("offline", `${target.nick} is not online`);
      }
      if ((await hub.blocksOf(target.key)).has(self.key)) {
        throw new CommandError(
          "blocked",
          `${target.nick} has blocked you: no private session is possible`,
        );
      }
      const registry = registryOf(hub);
      const existing = registry.between(self.key, target.key);
      if (existing !== undefined) {
        if (!registry.stale(existing)) {
          throw new CommandError(
            "already_private",
            `a private session with ${target.nick} is already open or being set up ` +
              `(/stopprivate ${target.nick} first)`,
          );
        }
        registry.end(existing, "offline", null);
      }
      if (registry.get(sid) !== undefined) {
        throw new CommandError("bad_message", "that private session id is in use");
      }
      registry.add({
        sid,
        requester: session,
        targetKey: target.key,
        targetNick: target.nick,
        port,
        target: null,
        state: "offered",
      });
      await hub.broker.publish(userSubject(target.key), {
        event: { type: "private_request", sid, from: self.nick },
        from: self.key,
      });
      log.info("{from} asks {to} for a private session", { from: self.nick, to: target.nick });
      return { nick: target.nick, sid };
    },
  },

  private_accept: {
    async run(ctx, { nick }) {
      const { pair, other } = await pairWith(ctx, nick);
      const session = ctx.session;
      if (
        pair === undefined || pair.state !== "offered" ||
        pair.targetKey !== session.account.key
      ) {
        throw new CommandError(
          "no_private_request",
          `${other.nick} has not asked you for a private session`,
        );
      }
      const registry = registryOf(ctx.hub);
      if (pair.requester.ended) {
        registry.remove(pair);
        throw new CommandError("offline", `${other.nick} is not online any more`);
      }
      pair.target = session;
      pair.state = "accepted";
      pair.requester.send({
        type: "private_ready",
        sid: pair.sid,
        nick: session.account.nick,
        host: session.port.ip,
      });
      return {
        nick: pair.requester.account.nick,
        sid: pair.sid,
        host: pair.requester.port.ip,
        port: pair.port,
      };
    },
  },

  private_decline: {
    async run(ctx, { nick }) {
      const { pair, other } = await pairWith(ctx, nick);
      if (
        pair === undefined || pair.state !== "offered" ||
        pair.targetKey !== ctx.session.account.key
      ) {
        throw new CommandError(
          "no_private_request",
          `${other.nick} has not asked you for a private session`,
        );
      }
      registryOf(ctx.hub).end(pair, "declined", ctx.session);
      return { nick: other.nick };
    },
  },

  private_stop: {
    async run(ctx, { nick }) {
      const { pair, other } = await pairWith(ctx, nick);
      const session = ctx.session;
      const mine = pair !== undefined &&
        (isSide(pair, session) ||
          (pair.state === "offered" && pair.targetKey === session.account.key));
      if (!mine) {
        throw new CommandError("no_private", `no private session with ${other.nick}`);
      }
      registryOf(ctx.hub).end(pair!, "stopped", session);
      return { nick: other.nick };
    },
  },

  private_relay: {
    run(ctx, { sid }) {
      const registry = registryOf(ctx.hub);
      const pair = registry.get(sid);
      const session = ctx.session;
      if (pair === undefined || pair.state === "offered" || !isSide(pair, session)) {
        return Promise.reject(new CommandError("no_private", "no such private session"));
      }
      const other = pair.requester === session ? pair.target! : pair.requester;
      if (other.ended) {
        registry.end(pair, "offline", other);
        return Promise.reject(
          new CommandError("offline", `${other.account.nick} is not online any more`),
        );
      }
      pair.state = "relay";
      other.send({ type: "private_relay", sid, nick: session.account.nick });
      log.info("private session {sid} relays through the server", { sid });
      return Promise.resolve({ sid });
    },
  },

  relay: {
    // Synchronous: relayed records keep their order while requests are pipelined.
    pipelined: true,
    run(ctx, { sid }) {
      const registry = registryOf(ctx.hub);
      const pair = registry.get(sid);
      const session = ctx.session;
      if (pair === undefined || pair.state !== "relay" || !isSide(pair, session)) {
        return Promise.reject(
          new CommandError("no_private", "no private session relays through this server"),
        );
      }
      const body = ctx.body;
      if (body === undefined || body.length === 0) {
        return Promise.reject(new CommandError("bad_message", "a relay frame carries a body"));
      }
      if (body.length > MAX_RELAY_BYTES) {
        return Promise.reject(
          new CommandError("bad_message", `a relay body is at most ${MAX_RELAY_BYTES} bytes`),
        );
      }
      const other = pair.requester === session ? pair.target! : pair.requester;
      if (other.ended || !other.port.send(encodeFrame({ type: "relay", sid }, body))) {
        registry.end(pair, "offline", other);
        return Promise.reject(
          new CommandError("offline", `${other.account.nick} is not online any more`),
        );
      }
      return Promise.resolve({});
    },
  },
};
