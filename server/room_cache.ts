/**
 * The rooms a node has in memory (members, topic), kept true on every node of a
 * cluster: the node that changes a room's members or topic stores the change, applies
 * it, and tells the others on the `rooms` topic of the {@linkcode ClusterBus}; each
 * applies it to its cache and to its own sessions of the account (subscribing or
 * unsubscribing them), then says so: the change is done (the command answers) once
 * every other node has applied it ({@linkcode ClusterApplied}), so that a request on
 * another node right after the answer sees it, as on one server. A node whose bus reconnects
 * reads its cached rooms again.
 * Blocks travel with presence (`cluster_presence.ts`); contacts are read from the
 * store, never cached.
 *
 * On one server nobody else listens: the messages go nowhere.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Broker, roomSubject } from "./broker.ts";
import { ClusterApplied, type ClusterAppliedOptions } from "./cluster_applied.ts";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";
import type { OnlineAccount, RoomState } from "./hub.ts";
import { withKey, withoutKey } from "./key_set.ts";
import type { RoomRecord, Store } from "./store.ts";

const log = getLogger(["chat", "server", "room_cache"]);

/** The bus topic of room changes. */
export const ROOMS_TOPIC = "rooms";

/** A change to a room, as stored by the node that made it. */
export type RoomChange =
  | { t: "member"; room: string; key: string; added: boolean }
  | { t: "topic"; room: string; topic: string; by: string };

/** What the cache needs of the hub. */
export interface RoomCacheDeps {
  /** Storage. */
  readonly store: Store;
  /** Fan-out, to (un)subscribe sessions. */
  readonly broker: Broker;
  /** The node-to-node bus. */
  readonly bus: ClusterBus;
  /** The account with this key if it has sessions on this node. */
  online(key: string): OnlineAccount | undefined;
  /** How a change waits for the other nodes to apply it (default: not at all). */
  readonly applied?: ClusterAppliedOptions;
}

/**
 * Rooms cached on this node, coherent with the other nodes.
 *
 * @example
 * ```ts ignore
 * const rooms = new RoomCache({ store, broker, bus, online: (key) => hub.online(key) });
 * await rooms.start();
 * const lobby = await rooms.room("lobby");
 * await rooms.setTopic(lobby!, "welcome", "Ann");
 * ```
 */
export class RoomCache {
  readonly #deps: RoomCacheDeps;
  readonly #rooms = new Map<string, RoomState>();
  readonly #changes: ClusterApplied;
  #stop: (() => void) | undefined;

  /** A cache over `deps`; {@linkcode start} it. */
  constructor(deps: RoomCacheDeps) {
    this.#deps = deps;
    this.#changes = new ClusterApplied(deps.bus, ROOMS_TOPIC, deps.applied);
    deps.bus.onReconnect(() => {
      this.#reload().catch((err) => log.error("reloading rooms failed: {err}", { err }));
    });
  }

  /** Listens to the other nodes. */
  async start(): Promise<void> {
    this.#stop = await this.#deps.bus.listen(ROOMS_TOPIC, (message) => this.#receive(message));
  }

  /** Stops listening (changes waiting for answers are done). */
  close(): void {
    this.#stop?.();
    this.#changes.close();
  }

  /** The room's state, loading it from the store; undefined when it does not exist. */
  async room(key: string): Promise<RoomState | undefined> {
    const cached = this.#rooms.get(key);
    if (cached !== undefined) return cached;
    const record = await this.#deps.store.getRoom(key);
    if (record === null) return undefined;
    return this.#cache(record, await this.#deps.store.roomMembers(key));
  }

  /** The cached room state, if loaded. */
  cached(key: string): RoomState | undefined {
    return this.#rooms.get(key);
  }

  /** Adds a member (stored, then on every node); false when it already was one. */
  async addMember(room: RoomState, accountKey: string): Promise<boolean> {
    const added = await this.#deps.store.addMember(room.key, accountKey);
    await this.#applyMember(room, accountKey, true);
    await this.#tell({ t: "member", room: room.key, key: accountKey, added: true });
    return added;
  }

  /** Removes a member (stored, then on every node); false when it was none. */
  async removeMember(room: RoomState, accountKey: string): Promise<boolean> {
    const removed = await this.#deps.store.removeMember(room.key, accountKey);
    await this.#applyMember(room, accountKey, false);
    await this.#tell({ t: "member", room: room.key, key: accountKey, added: false });
    return removed;
  }

  /** Sets a room's topic (stored, then on every node). */
  async setTopic(room: RoomState, topic: string, by: string): Promise<void> {
    await this.#deps.store.setTopic(room.key, topic, by);
    room.topic = topic;
    room.topicBy = by;
    await this.#tell({ t: "topic", room: room.key, topic, by });
  }

  /** Tells the other nodes; resolves once each applied it (or after a while). */
  #tell(change: RoomChange): Promise<void> {
    return this.#changes.send(change);
  }

  #cache(record: RoomRecord, members: string[]): RoomState {
    const existing = this.#rooms.get(record.key);
    if (existing !== undefined) return existing;
    const state: RoomState = {
      key: record.key,
      name: record.name,
      topic: record.topic,
      topicBy: record.topicBy,
      members: new Set(members),
    };
    this.#rooms.set(record.key, state);
    return state;
  }

  /** Applies a membership change to the cache and to this node's sessions of the account. */
  async #applyMember(room: RoomState | undefined, accountKey: string, added: boolean) {
    if (added) room?.members.add(accountKey);
    else room?.members.delete(accountKey);
    const online = this.#deps.online(accountKey);
    if (online === undefined || room === undefined) return;
    const { broker } = this.#deps;
    const subject = roomSubject(room.key);
    if (added) {
      online.rooms = withKey(online.rooms, room.key);
      await Promise.all(online.sessions.map((s) => broker.subscribe(subject, s)));
    } else {
      online.rooms = withoutKey(online.rooms, room.key);
      for (const session of online.sessions) broker.unsubscribe(subject, session);
    }
  }

  #receive(message: ClusterMessage): void {
    const { from, data } = message;
    if (from === this.#deps.bus.nodeId || this.#changes.receive(message)) return;
    const change = data as RoomChange;
    if (change.t === "topic") {
      const room = this.#rooms.get(change.room);
      if (room !== undefined) {
        room.topic = change.topic;
        room.topicBy = change.by;
      }
      this.#changes.applied(message);
      return;
    }
    // The account's sessions here need the room's state (`say` reads it from the cache).
    const load = this.#deps.online(change.key) !== undefined && change.added;
    const room = load ? this.room(change.room) : Promise.resolve(this.#rooms.get(change.room));
    room.then((state) => this.#applyMember(state, change.key, change.added)).catch((err) =>
      log.error("applying a member change of {room} from {from} failed: {err}", {
        room: change.room,
        from,
        err,
      })
    ).finally(() => this.#changes.applied(message));
  }

  /** Reads every cached room again (the bus was cut off: changes may have been missed). */
  async #reload(): Promise<void> {
    for (const room of [...this.#rooms.values()]) {
      const record = await this.#deps.store.getRoom(room.key);
      if (record === null) continue;
      room.topic = record.topic;
      room.topicBy = record.topicBy;
      const members = new Set(await this.#deps.store.roomMembers(room.key));
      for (const key of members) {
        if (!room.members.has(key)) await this.#applyMember(room, key, true);
      }
      for (const key of [...room.members]) {
        if (!members.has(key)) await this.#applyMember(room, key, false);
      }
    }
  }
}
