/**
 * Who the well-behaved clients of a soak run are and which rooms each is in. The
 * membership is fixed for the whole run, so that who should receive what can be
 * computed afterwards from the acknowledged messages alone.
 *
 * @module
 */

/** The shape of the well-behaved population. */
export interface SoakPlan {
  /** Number of well-behaved clients. */
  clients: number;
  /** Number of rooms they chat in. */
  rooms: number;
  /** Rooms each client joins (at most `rooms`). */
  roomsPerClient: number;
}

/** The password of every well-behaved account. */
export const GOOD_PASSWORD = "soak-good-password";

/** The nick of well-behaved client number `index`. */
export function goodNick(index: number): string {
  return `good${index}`;
}

/** The well-behaved client number of a nick, or -1 when it is not one. */
export function goodIndex(nick: string): number {
  const match = /^good(\d+)$/i.exec(nick);
  return match === null ? -1 : Number(match[1]);
}

/** The name of room number `index`. */
export function roomName(index: number): string {
  return `soak-${index}`;
}

/**
 * The rooms client `index` joins: `roomsPerClient` consecutive rooms starting at its
 * own index, so that every room gets about the same number of members.
 *
 * @example
 * ```ts
 * import { roomsOf } from "./plan.ts";
 * roomsOf(3, { clients: 10, rooms: 4, roomsPerClient: 2 }); // ["soak-3", "soak-0"]
 * ```
 */
export function roomsOf(index: number, plan: SoakPlan): string[] {
  const count = Math.min(plan.roomsPerClient, plan.rooms);
  const rooms: string[] = [];
  for (let k = 0; k < count; k++) rooms.push(roomName((index + k) % plan.rooms));
  return rooms;
}

/** The nicks of the well-behaved members of each room, keyed by lower-case room name. */
export function roomMembers(plan: SoakPlan): Map<string, Set<string>> {
  const members = new Map<string, Set<string>>();
  for (let r = 0; r < plan.rooms; r++) members.set(roomName(r), new Set());
  for (let i = 0; i < plan.clients; i++) {
    for (const room of roomsOf(i, plan)) members.get(room)!.add(goodNick(i));
  }
  return members;
}

/** Checks a plan's numbers; returns the problem or null. */
export function planProblem(plan: SoakPlan): string | null {
  if (!Number.isInteger(plan.clients) || plan.clients < 2) {
    return "at least 2 well-behaved clients are needed";
  }
  if (!Number.isInteger(plan.rooms) || plan.rooms < 1) return "at least 1 room is needed";
  if (!Number.isInteger(plan.roomsPerClient) || plan.roomsPerClient < 1) {
    return "each client must join at least 1 room";
  }
  return null;
}
