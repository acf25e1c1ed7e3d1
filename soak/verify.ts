/**
 * The soak's checks: from the messages acknowledged to well-behaved clients and the
 * fixed room membership, who must have received what exactly once, and what every
 * client's history must hold.
 *
 * @module
 */

import { roomMembers, type SoakPlan } from "./plan.ts";

/** A message the server acknowledged to a well-behaved client. */
export interface AckedMessage {
  /** The server's message id. */
  id: number;
  /** The sender's nick. */
  from: string;
  /** The room, for a room message. */
  room?: string;
  /** The recipient, for a direct message. */
  to?: string;
  /** The text. */
  text: string;
  /** The soak phase it was sent in (see phases.ts). */
  phase?: string;
}

/** What one client received of one message id. */
export interface ReceivedRecord {
  /** How many times the client library emitted it. */
  count: number;
  /** The sender it carried. */
  from: string;
  /** The text it carried. */
  text: string;
}

/** The outcome of {@linkcode checkDeliveries} for one client. */
export interface DeliveryResult {
  /** Deliveries this client should have had. */
  expected: number;
  /** Of those, received exactly once with the right sender and text. */
  delivered: number;
  /** Ids expected but never received. */
  missing: number[];
  /** Ids received more than once (expected or not). */
  duplicates: number[];
  /** Ids of the client's own messages that came back to it as events. */
  echoes: number[];
  /** Ids received with another sender or text than acknowledged. */
  mismatched: number[];
}

/** The outcome of {@linkcode checkHistory} for one client. */
export interface HistoryResult {
  /** Messages that must be in this client's history. */
  expected: number;
  /** Ids missing from it. */
  missing: number[];
  /** Ids present with another sender or text than acknowledged. */
  mismatched: number[];
  /** Ids the history listed more than once. */
  duplicates: number[];
}

/**
 * The acknowledged messages `nick` must receive: room messages of its rooms from
 * others, and direct messages to it.
 *
 * @example
 * ```ts
 * import { expectedFor } from "./verify.ts";
 * const plan = { clients: 2, rooms: 1, roomsPerClient: 1 };
 * expectedFor("good1", [{ id: 1, from: "good0", room: "soak-0", text: "hi" }], plan).length; // 1
 * ```
 */
export function expectedFor(
  nick: string,
  acked: readonly AckedMessage[],
  plan: SoakPlan,
  members: Map<string, Set<string>> = roomMembers(plan),
): AckedMessage[] {
  const self = nick.toLowerCase();
  const out: AckedMessage[] = [];
  for (const message of acked) {
    if (message.from.toLowerCase() === self) continue;
    if (message.room !== undefined) {
      if (members.get(message.room.toLowerCase())?.has(nick)) out.push(message);
    } else if (message.to?.toLowerCase() === self) {
      out.push(message);
    }
  }
  return out;
}

/** The acknowledged messages `nick` itself sent. */
export function sentBy(nick: string, acked: readonly AckedMessage[]): AckedMessage[] {
  const self = nick.toLowerCase();
  return acked.filter((m) => m.from.toLowerCase() === self);
}

/**
 * Compares what a client received with what it should have: each expected id exactly
 * once, with the acknowledged sender and text; its own messages never.
 */
export function checkDeliveries(
  expected: readonly AckedMessage[],
  received: ReadonlyMap<number, ReceivedRecord>,
  ownIds: ReadonlySet<number>,
): DeliveryResult {
  const result: DeliveryResult = {
    expected: expected.length,
    delivered: 0,
    missing: [],
    duplicates: [],
    echoes: [],
    mismatched: [],
  };
  for (const message of expected) {
    const got = received.get(message.id);
    if (got === undefined) {
      result.missing.push(message.id);
    } else if (got.from !== message.from || got.text !== message.text) {
      result.mismatched.push(message.id);
    } else if (got.count === 1) {
      result.delivered++;
    }
  }
  for (const [id, got] of received) {
    if (got.count > 1) result.duplicates.push(id);
    if (ownIds.has(id)) result.echoes.push(id);
  }
  return result;
}

/** Checks that every message in `mustHave` is in `history` once, as acknowledged. */
export function checkHistory(
  mustHave: readonly AckedMessage[],
  history: readonly { id: number; from: string; text: string }[],
): HistoryResult {
  const byId = new Map<number, { from: string; text: string }>();
  const duplicates: number[] = [];
  for (const message of history) {
    if (byId.has(message.id)) duplicates.push(message.id);
    else byId.set(message.id, message);
  }
  const result: HistoryResult = {
    expected: mustHave.length,
    missing: [],
    mismatched: [],
    duplicates,
  };
  for (const message of mustHave) {
    const got = byId.get(message.id);
    if (got === undefined) result.missing.push(message.id);
    else if (got.from !== message.from || got.text !== message.text) {
      result.mismatched.push(message.id);
    }
  }
  return result;
}

/**
 * Ids acknowledged more than once for different messages (two sends given one id):
 * a server fault, since every `say` and `dm` of the soak has its own request id and text.
 */
export function ackCollisions(acked: readonly AckedMessage[]): number[] {
  const seen = new Map<number, AckedMessage>();
  const collisions: number[] = [];
  for (const message of acked) {
    const first = seen.get(message.id);
    if (first === undefined) seen.set(message.id, message);
    else if (first.text !== message.text || first.from !== message.from) {
      collisions.push(message.id);
    }
  }
  return collisions;
}
