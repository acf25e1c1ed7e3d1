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
 * forwarded unread (they are AES-GCM records of the peer session).
 *
 * In a cluster the two may be on different nodes: the pair lives on the requester's
 * node and the target's node reaches it over the bus (`private_cluster.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ServerMessage } from "../protocol/messages.ts";
import type { ReplyMap } from "../protocol/replies.ts";
import { userSubject } from "./broker.ts";
import type { CommandContext, CommandSpec } from "./commands.ts";
import { CommandError } from "./errors.ts";
import type { ChatHub, Session } from "./hub.ts";
import {
  answered,
  errorAnswer,
  localSide,
  type Mirror,
  type PrivateAnswer,
  type PrivateAsk,
  PrivateLink,
  type RemoteSide,
  type Side,
} from "./private_cluster.ts";

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
  target: Side | null;
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
  /** Pairs homed on other nodes whose target session is here, by sid. */
  readonly mirrors = new Map<string, Mirror>();
  /** To the other nodes. */
  readonly link: PrivateLink;

  constructor(hub: ChatHub) {
    this.#hub = hub;
    this.link = new PrivateLink(hub.bus, {
      ask: (from, ask) => this.#answer(from, ask),
      event: (sid, event) => this.#mirrorEvent(sid, event),
      relay: (from, sid, body) => this.#relayIn(from, sid, body),
      gone: (from, sid) => this.#remoteGone(from, sid),
    });
    hub.presence.onNodeGone((node) => this.#nodeGone(node));
    hub.onSessionEnded((session) => {
      this.#sweep(session.account.key);
      for (const mirror of [...this.mirrors.values()]) {
        if (mirror.session !== session) continue;
        this.mirrors.delete(mirror.sid);
        this.link.gone(mirror.home, mirror.sid);
      }
    });
  }

  /** The mirrored pair of `session` with the account `otherKey`, if any. */
  mirrorWith(session: Session, otherKey: string): Mirror | undefined {
    for (const mirror of this.mirrors.values()) {
      if (mirror.session === session && mirror.requesterKey === otherKey) return mirror;
    }
    return undefined;
  }

  /** Nodes other than this one where the account has sessions. */
  nodesOf(key: string): string[] {
    const shares = this.#hub.presence.entry(key)?.shares;
    return [...shares?.keys() ?? []].filter((node) => node !== this.#hub.bus.nodeId);
  }

  /** Answers another node's request about a pair homed here. */
  #answer(from: string, ask: PrivateAsk): PrivateAnswer {
    if (ask.t === "relay_start") {
      const pair = this.#bySid.get(ask.sid);
      const target = pair?.target as RemoteSide | null | undefined;
      if (pair === undefined || pair.state === "offered" || target?.node !== from) {
        return { none: true };
      }
      if (pair.requester.ended) {
        this.end(pair, "offline", pair.requester);
        return errorAnswer("offline", `${pair.requester.account.nick} is not online any more`);
      }
      pair.state = "relay";
      pair.requester.send({ type: "private_relay", sid: pair.sid, nick: target.nick });
      log.info("private session {sid} relays through the server", { sid: pair.sid });
      return { ok: { sid: pair.sid } };
    }
    const pair = this.between(ask.requesterKey, ask.targetKey);
    if (pair === undefined || pair.targetKey !== ask.targetKey) return { none: true };
    const nick = pair.requester.account.nick;
    if (ask.t === "accept") {
      if (pair.state !== "offered") return { none: true };
      if (pair.requester.ended) {
        this.remove(pair);
        return errorAnswer("offline", `${nick} is not online any more`);
      }
      const target = this.link.remoteSide(from, ask.session, {
        key: ask.targetKey,
        nick: ask.nick,
        ip: ask.ip,
      });
      pair.target = target;
      pair.state = "accepted";
      pair.requester.send({ type: "private_ready", sid: pair.sid, nick: ask.nick, host: ask.ip });
      return { ok: { nick, sid: pair.sid, host: pair.requester.port.ip, port: pair.port } };
    }
    const remote = pair.target as RemoteSide | null;
    if (pair.state !== "offered" && remote?.node !== from) return { none: true };
    if (ask.t === "decline" && pair.state !== "offered") return { none: true };
    this.end(pair, ask.t === "decline" ? "declined" : "stopped", "target");
    return { ok: { nick } };
  }

  /** An event for the target session of a mirrored pair. */
  #mirrorEvent(sid: string, event: ServerMessage): void {
    const mirror = this.mirrors.get(sid);
    if (mirror === undefined) return;
    if (event.type === "private_ended") this.mirrors.delete(sid);
    if (event.type === "private_relay") mirror.state = "relay";
    mirror.session.send(event);
  }

  /** A relayed record from another node, for a side here. */
  #relayIn(from: string, sid: string, body: Uint8Array): void {
    const mirror = this.mirrors.get(sid);
    if (mirror !== undefined && mirror.home === from) {
      if (!localSide(mirror.session).relay(sid, body)) {
        this.mirrors.delete(sid);
        this.link.gone(from, sid);
      }
      return;
    }
    const pair = this.#bySid.get(sid);
    if (pair === undefined || pair.state !== "relay") return;
    if ((pair.target as RemoteSide | null)?.node !== from) return;
    if (!localSide(pair.requester).relay(sid, body)) this.end(pair, "offline", pair.requester);
  }

  /** A node is gone: so are the sides of pairs on it. */
  #nodeGone(node: string): void {
    for (const pair of [...this.#bySid.values()]) {
      if ((pair.target as RemoteSide | null)?.node === node) this.#remoteGone(node, pair.sid);
    }
    for (const mirror of [...this.mirrors.values()]) {
      if (mirror.home === node) this.#remoteGone(node, mirror.sid);
    }
  }

  /** The side of pair `sid` on node `from` has gone. */
  #remoteGone(from: string, sid: string): void {
    const pair = this.#bySid.get(sid);
    const target = pair?.target as RemoteSide | null | undefined;
    if (pair !== undefined && target?.node === from) {
      target.ended = true;
      this.end(pair, "offline", "target");
      return;
    }
    const mirror = this.mirrors.get(sid);
    if (mirror !== undefined && mirror.home === from) {
      this.mirrors.delete(sid);
      mirror.session.send({
        type: "private_ended",
        sid,
        nick: this.#hub.presence.entry(mirror.requesterKey)?.nick ?? mirror.requesterKey,
        reason: "offline",
      });
    }
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
   * that ended it, or the one that is gone; `target`: the target side, wherever it is);
   * before an accept, "the target" is every session of the target account.
   */
  end(pair: PrivatePair, reason: string, except: Session | Side | "target" | null): void {
    this.remove(pair);
    if (except !== pair.requester) {
      pair.requester.send({ type: "private_ended", sid: pair.sid, nick: pair.targetNick, reason });
    }
    const exceptTarget = except === "target" ||
      (except !== null && "account" in except && except.account.key === pair.targetKey) ||
      (except !== null && except === pair.target);
    if (!exceptTarget) {
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
        this.end(pair, "offline", pair.requester.ended ? pair.requester : "target");
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

/**
 * Starts the hub's private sessions: listens to the other nodes of a cluster for pairs
 * between their users and this node's. Called once the hub has started.
 */
export async function startPrivateSessions(hub: ChatHub): Promise<void> {
  await registryOf(hub).link.start();
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
  return pair.requester === session || pair.target?.session === session;
}

/** The side of `pair` other than `session`'s. */
function otherSide(pair: PrivatePair, session: Session): Side {
  return pair.requester === session ? pair.target! : localSide(pair.requester);
}

/**
 * Asks the home node of a pair between `requesterKey` and the caller (on another
 * node); resolves to its reply data and its node.
 *
 * @throws {CommandError} the home's refusal, or `otherwise` when there is no such pair.
 */
async function askHome(
  ctx: CommandContext,
  requesterKey: string,
  ask: PrivateAsk,
  otherwise: CommandError,
): Promise<{ reply: Record<string, unknown>; home: string }> {
  const registry = registryOf(ctx.hub);
  const nodes = registry.nodesOf(requesterKey);
  if (nodes.length === 0) throw otherwise;
  const { home, answer } = await registry.link.ask(nodes, ask);
  return { reply: answered(answer, otherwise), home };
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
      if (!hub.presence.isVisible(target.key)) {
        throw new CommandError("offline", `${target.nick} is not online`);
      }
      if ((await hub.blocksOf(target.key)).has(self.key)) {
        throw new CommandError(
          "blocked",
          `${target.nick} has blocked you: no private session is possible`,
        );
      }
      const registry = registryOf(hub);
      const mirrored = registry.mirrorWith(session, target.key);
      if (mirrored !== undefined) {
        throw new CommandError(
          "already_private",
          `a private session with ${target.nick} is already open or being set up ` +
            `(/stopprivate ${target.nick} first)`,
        );
      }
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
      const registry = registryOf(ctx.hub);
      const none = new CommandError(
        "no_private_request",
        `${other.nick} has not asked you for a private session`,
      );
      if (pair === undefined) {
        // Asked from another node, perhaps: its home decides.
        const self = session.account;
        const { reply, home } = await askHome(ctx, other.key, {
          t: "accept",
          requesterKey: other.key,
          targetKey: self.key,
          session: session.id,
          nick: self.nick,
          ip: session.port.ip,
        }, none);
        const sid = reply.sid as string;
        registry.mirrors.set(sid, {
          sid,
          home,
          session,
          requesterKey: other.key,
          state: "accepted",
        });
        return reply as ReplyMap["private_accept"];
      }
      if (pair.state !== "offered" || pair.targetKey !== session.account.key) throw none;
      if (pair.requester.ended) {
        registry.remove(pair);
        throw new CommandError("offline", `${other.nick} is not online any more`);
      }
      pair.target = localSide(session);
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
      const none = new CommandError(
        "no_private_request",
        `${other.nick} has not asked you for a private session`,
      );
      if (pair === undefined) {
        const targetKey = ctx.session.account.key;
        await askHome(ctx, other.key, { t: "decline", requesterKey: other.key, targetKey }, none);
        return { nick: other.nick };
      }
      if (pair.state !== "offered" || pair.targetKey !== ctx.session.account.key) throw none;
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
      const none = new CommandError("no_private", `no private session with ${other.nick}`);
      if (pair === undefined) {
        const registry = registryOf(ctx.hub);
        const mirror = registry.mirrorWith(session, other.key);
        const targetKey = session.account.key;
        await askHome(ctx, other.key, { t: "stop", requesterKey: other.key, targetKey }, none);
        if (mirror !== undefined) registry.mirrors.delete(mirror.sid);
        return { nick: other.nick };
      }
      if (!mine) throw none;
      registryOf(ctx.hub).end(pair!, "stopped", session);
      return { nick: other.nick };
    },
  },

  private_relay: {
    run(ctx, { sid }) {
      const registry = registryOf(ctx.hub);
      const pair = registry.get(sid);
      const session = ctx.session;
      const mirror = registry.mirrors.get(sid);
      if (mirror !== undefined && mirror.session === session) {
        const none = new CommandError("no_private", "no such private session");
        const ask = { t: "relay_start", sid } as const;
        return registry.link.ask([mirror.home], ask).then(({ answer }) => {
          const reply = answered<{ sid: string }>(answer, none);
          mirror.state = "relay";
          return reply;
        });
      }
      if (pair === undefined || pair.state === "offered" || !isSide(pair, session)) {
        return Promise.reject(new CommandError("no_private", "no such private session"));
      }
      const other = otherSide(pair, session);
      if (other.ended) {
        registry.end(pair, "offline", other);
        return Promise.reject(
          new CommandError("offline", `${other.nick} is not online any more`),
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
      const mirror = registry.mirrors.get(sid);
      const mirrored = mirror !== undefined && mirror.session === session &&
        mirror.state === "relay";
      if (!mirrored && (pair === undefined || pair.state !== "relay" || !isSide(pair, session))) {
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
      if (mirrored) {
        registry.link.relayHome(mirror.home, sid, body);
        return Promise.resolve({});
      }
      const other = otherSide(pair!, session);
      if (other.ended || !other.relay(sid, body)) {
        registry.end(pair!, "offline", other);
        return Promise.reject(
          new CommandError("offline", `${other.nick} is not online any more`),
        );
      }
      return Promise.resolve({});
    },
  },
};
