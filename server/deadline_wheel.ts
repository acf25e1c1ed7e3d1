/**
 * One timer for the deadlines of every connection (login, idle, stalled writes,
 * unfinished frames): a wheel of slots, one per tick, each holding the items whose
 * deadline falls in it. An item is in at most one slot, at its earliest deadline; when
 * that comes, it is taken out and told, and it schedules itself again if it still has a
 * deadline. An idle connection with none is in no slot: the server spends nothing on
 * it, and its timer does not run while the wheel is empty.
 *
 * @example
 * ```ts
 * import { DeadlineWheel, type Timed } from "./deadline_wheel.ts";
 * const wheel = new DeadlineWheel(250);
 * const item: Timed = { deadlineAt: 0, onDeadline: (now) => console.log("due", now) };
 * wheel.schedule(item, performance.now() + 10_000); // told once, about 10 s from now
 * wheel.stop();
 * ```
 *
 * @module
 */

/** What the wheel holds. */
export interface Timed {
  /**
   * When the item is due (`performance.now()` ms), set by the wheel; 0 while it is in
   * no slot. Not to be changed by anyone else.
   */
  deadlineAt: number;
  /** Its deadline came (at `now`, a tick at or after it): it is in no slot now. */
  onDeadline(now: number): void;
}

/** Slots of the wheel by default: at 250 ms a tick, 128 s ahead. */
export const DEFAULT_WHEEL_SLOTS = 512;

/**
 * The wheel. A deadline further ahead than its slots reach is told at the end of its
 * reach, early: the item finds its deadline not yet come and schedules itself again.
 */
export class DeadlineWheel {
  readonly tickMs: number;
  readonly #slots: Set<Timed>[];
  /** Items in the wheel. */
  #size = 0;
  /** The tick the next run of the timer handles (ticks count from performance.now() 0). */
  #nextTick = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  /** A wheel of `slots` slots of `tickMs` each. */
  constructor(tickMs: number, slots = DEFAULT_WHEEL_SLOTS) {
    if (!(tickMs > 0) || !Number.isInteger(slots) || slots < 2) {
      throw new RangeError("a wheel needs a tick above 0 ms and at least 2 slots");
    }
    this.tickMs = tickMs;
    this.#slots = Array.from({ length: slots }, () => new Set<Timed>());
  }

  /** Items waiting for their deadline. */
  get size(): number {
    return this.#size;
  }

  /**
   * Tells `item` at the first tick at or after `at` (`performance.now()` ms; past or
   * present: the next tick), or earlier if it is already waiting for an earlier tick
   * (then nothing changes).
   */
  schedule(item: Timed, at: number): void {
    if (this.#stopped) return;
    if (this.#timer === undefined) this.#start();
    const slots = this.#slots.length;
    // Not before the next run's tick, nor past the wheel's reach.
    const tick = Math.min(
      Math.max(Math.ceil(at / this.tickMs), this.#nextTick),
      this.#nextTick + slots - 1,
    );
    const deadlineAt = tick * this.tickMs;
    if (item.deadlineAt !== 0) {
      if (item.deadlineAt <= deadlineAt) return;
      this.#remove(item);
    }
    item.deadlineAt = deadlineAt;
    this.#slots[tick % slots].add(item);
    this.#size++;
  }

  /** Tells `item` at the next tick (it waits for that, or for an earlier one). */
  scheduleNextTick(item: Timed): void {
    if (item.deadlineAt !== 0 && item.deadlineAt <= this.#nextTick * this.tickMs) return;
    this.schedule(item, 0);
  }

  /** Takes `item` out of the wheel: it is not told. */
  cancel(item: Timed): void {
    if (item.deadlineAt !== 0) this.#remove(item);
  }

  /** Stops the timer for good; nothing is told any more. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const slot of this.#slots) {
      for (const item of slot) item.deadlineAt = 0;
      slot.clear();
    }
    this.#size = 0;
  }

  #remove(item: Timed): void {
    const tick = Math.round(item.deadlineAt / this.tickMs);
    if (this.#slots[tick % this.#slots.length].delete(item)) this.#size--;
    item.deadlineAt = 0;
  }

  #start(): void {
    // Tick 0 is never used: a deadline of 0 means none.
    this.#nextTick = Math.max(1, Math.ceil(performance.now() / this.tickMs));
    this.#timer = setInterval(() => this.#run(), this.tickMs);
  }

  /**
   * Handles every tick that has come, at once: a late run (a stalled event loop) tells
   * each item once, and what they schedule again goes to the ticks to come.
   */
  #run(): void {
    const now = performance.now();
    const slots = this.#slots.length;
    const last = Math.floor(now / this.tickMs);
    const due: Timed[] = [];
    for (let n = 0; this.#nextTick <= last && n < slots; n++) {
      const slot = this.#slots[this.#nextTick % slots];
      this.#nextTick++;
      if (slot.size === 0) continue;
      for (const item of slot) {
        item.deadlineAt = 0;
        due.push(item);
      }
      slot.clear();
    }
    this.#nextTick = Math.max(this.#nextTick, last + 1);
    this.#size -= due.length;
    for (const item of due) {
      try {
        item.onDeadline(now);
      } catch (err) {
        // One item's failure must not stop the others' deadlines.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (this.#size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
