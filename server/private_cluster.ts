/**
 * Private sessions between users on different nodes of a cluster (see `private.ts`).
 *
 * A pair lives on its requester's node (its home). When the target answers from
 * another node, that node asks the home over the `private` topic of the
 * {@linkcode ClusterBus} (accept, decline, stop, relay), keeps a {@linkcode Mirror} of
 * the pair for its session, and the home holds the target as a {@linkcode RemoteSide}:
 * events and relayed records for it travel over the bus to its node, which hands them
 * to the session. A side's session ending tells the other node (`gone`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { getLogger } from "@logtape/logtape";
import { encodeFrame } from "../protocol/frame.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";
import { CommandError } from "./errors.ts";
import type { Session } from "./hub.ts";

const log = getLogger(["chat", "server", "private_cluster"]);

/** The bus topic of private sessions across nodes. */
export const PRIVATE_TOPIC = "private";

/** How long a node waits for the others' answers to a request. */
const ANSWER_TIMEOUT_MS = 5000;

/** One side of a private session: a session here or on another node. */
export interface Side {
  /** Account key. */
  readonly key: string;
  /** Display nick. */
  readonly nick: string;
  /** The client's address. */
  readonly ip: string;
  /** Its session, when it is on this node. */
  readonly session: Session | null;
  /** Whether it has gone. */
  readonly ended: boolean;
  /** Sends it an event. */
  send(event: ServerMessage): void;
  /** Forwards it a relayed record; false when it has gone. */
  relay(sid: string, body: Uint8Array): boolean;
}

/** A session of this node as a side. */
export function localSide(session: Session): Side {
  return {
    key: session.account.key,
    get nick() {
      return session.account.nick;
    },
    ip: session.port.ip,
    session,
    get ended() {
      return session.ended;
    },
    send: (event) => void session.send(event),
    relay: (sid, body) =>
      !session.ended && session.port.send(encodeFrame({ type: "relay", sid }, body)),
  };
}

/** A side whose session is on another node. */
export interface RemoteSide extends Side {
  /** Its node. */
  readonly node: string;
  /** Its session's id. */
  readonly sessionId: string;
  ended: boolean;
}

/** This node's view of a pair homed on another node, for its target session here. */
export interface Mirror {
  readonly sid: string;
  readonly home: string;
  readonly session: Session;
  readonly requesterKey: string;
  state: "accepted" | "relay";
}

/** What a target's node asks the home of a pair. */
export type PrivateAsk =
  | {
    t: "accept";
    requesterKey: string;
    targetKey: string;
    session: string;
    nick: string;
    ip: string;
  }
  | { t: "decline"; requesterKey: string; targetKey: string }
  | { t: "stop"; requesterKey: string; targetKey: string }
  | { t: "relay_start"; sid: string };

/** A home's answer: `none` when it is not the pair's home. */
export type PrivateAnswer =
  | { none: true }
  | { ok: Record<string, unknown> }
  | { error: { code: string; message: string } };

type Wire =
  | { t: "ask"; to: string; rid: number; ask: PrivateAsk }
  | { t: "answer"; to: string; rid: number; answer: PrivateAnswer }
  | { t: "event"; to: string; sid: string; event: ServerMessage }
  | { t: "relay"; to: string; sid: string; body: string }
  | { t: "gone"; to: string; sid: string };

/** What the link calls back on the node's registry. */
export interface PrivateHandlers {
  /** A request from the node `from` about a pair this node may be the home of. */
  ask(from: string, ask: PrivateAsk): PrivateAnswer;
  /** An event for the target of a mirrored pair. */
  event(sid: string, event: ServerMessage): void;
  /** A relayed record for a side of pair `sid` on this node. */
  relay(from: string, sid: string, body: Uint8Array): void;
  /** The other node's side of pair `sid` has gone. */
  gone(from: string, sid: string): void;
}

/**
 * The bus link of one node for private sessions.
 *
 * @example
 * ```ts ignore
 * const link = new PrivateLink(hub.bus, handlers);
 * await link.start();
 * const answer = await link.ask(["node-b"], { t: "relay_start", sid: "x1" });
 * ```
 */
export class PrivateLink {
  readonly #bus: ClusterBus;
  readonly #handlers: PrivateHandlers;
  readonly #waiting = new Map<number, (answer: PrivateAnswer) => void>();
  #nextRid = 0;
  #stop: (() => void) | undefined;

  /** A link over `bus` delivering to `handlers`. */
  constructor(bus: ClusterBus, handlers: PrivateHandlers) {
    this.#bus = bus;
    this.#handlers = handlers;
  }

  /** Listens. */
  async start(): Promise<void> {
    this.#stop = await this.#bus.listen(PRIVATE_TOPIC, (message) => this.#receive(message));
  }

  /** Stops listening. */
  close(): void {
    this.#stop?.();
  }

  /** A side on node `node` (session `sessionId`). */
  remoteSide(
    node: string,
    sessionId: string,
    who: { key: string; nick: string; ip: string },
  ): RemoteSide {
    const send = (message: Wire) => this.#bus.send(PRIVATE_TOPIC, message);
    const side: RemoteSide = {
      ...who,
      node,
      sessionId,
      session: null,
      ended: false,
      send: (event) => {
        const sid = (event as { sid?: string }).sid ?? "";
        send({ t: "event", to: node, sid, event });
      },
      relay: (sid, body) => {
        if (side.ended) return false;
        send({ t: "relay", to: node, sid, body: Buffer.from(body).toString("base64") });
        return true;
      },
    };
    return side;
  }

  /**
   * Asks `nodes` (where the pair's requester has sessions); resolves to the home's
   * answer and node, or `none` when no node is its home.
   */
  async ask(
    nodes: readonly string[],
    ask: PrivateAsk,
  ): Promise<{ home: string; answer: PrivateAnswer }> {
    const answers = nodes.map((to) =>
      new Promise<{ home: string; answer: PrivateAnswer }>((resolve) => {
        const rid = ++this.#nextRid;
        const timer = setTimeout(() => {
          this.#waiting.delete(rid);
          resolve({ home: to, answer: { none: true } });
        }, ANSWER_TIMEOUT_MS);
        this.#waiting.set(rid, (answer) => {
          clearTimeout(timer);
          this.#waiting.delete(rid);
          resolve({ home: to, answer });
        });
        this.#bus.send(PRIVATE_TOPIC, { t: "ask", to, rid, ask } satisfies Wire);
      })
    );
    for (const got of await Promise.all(answers)) if (!("none" in got.answer)) return got;
    return { home: "", answer: { none: true } };
  }

  /** Forwards a relayed record to the pair's home. */
  relayHome(home: string, sid: string, body: Uint8Array): void {
    const wire: Wire = { t: "relay", to: home, sid, body: Buffer.from(body).toString("base64") };
    this.#bus.send(PRIVATE_TOPIC, wire);
  }

  /** Tells `node` that this node's side of pair `sid` has gone. */
  gone(node: string, sid: string): void {
    this.#bus.send(PRIVATE_TOPIC, { t: "gone", to: node, sid } satisfies Wire);
  }

  #receive({ from, data }: ClusterMessage): void {
    const message = data as Wire;
    if (message.to !== this.#bus.nodeId) return;
    try {
      switch (message.t) {
        case "ask": {
          const answer = this.#handlers.ask(from, message.ask);
          const wire: Wire = { t: "answer", to: from, rid: message.rid, answer };
          this.#bus.send(PRIVATE_TOPIC, wire);
          break;
        }
        case "answer":
          this.#waiting.get(message.rid)?.(message.answer);
          break;
        case "event":
          this.#handlers.event(message.sid, message.event);
          break;
        case "relay":
          this.#handlers.relay(from, message.sid, Buffer.from(message.body, "base64"));
          break;
        case "gone":
          this.#handlers.gone(from, message.sid);
          break;
      }
    } catch (err) {
      log.error("a private-session message from {from} failed: {err}", { from, err });
    }
  }
}

/** The reply data of an answer, or its error thrown. */
export function answered<T>(answer: PrivateAnswer, otherwise: CommandError): T {
  if ("ok" in answer) return answer.ok as T;
  if ("error" in answer) {
    throw new CommandError(answer.error.code as CommandError["code"], answer.error.message);
  }
  throw otherwise;
}

/** An answer carrying a command error. */
export function errorAnswer(code: CommandError["code"], message: string): PrivateAnswer {
  return { error: { code, message } };
}
