/**
 * An unbounded-by-default async queue with a single consumer, used for the client's
 * event stream.
 *
 * @module
 */

/**
 * A queue that producers `push` into and one consumer drains with `for await`.
 * `end()` lets the consumer finish once what is queued has been read.
 *
 * When more than `maxItems` are waiting, the oldest are dropped and counted in
 * {@linkcode EventQueue.dropped}, so that a client nobody reads events from cannot
 * grow without bound.
 *
 * @example
 * ```ts
 * import { EventQueue } from "./event_queue.ts";
 * const queue = new EventQueue<number>();
 * queue.push(1);
 * queue.end();
 * for await (const n of queue) console.log(n); // 1
 * ```
 */
export class EventQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #head = 0;
  #ended = false;
  #waiter: ((result: IteratorResult<T>) => void) | null = null;
  #dropped = 0;
  readonly #maxItems: number;

  /** Creates a queue holding at most `maxItems` unread items (default 100 000). */
  constructor(maxItems = 100_000) {
    this.#maxItems = maxItems;
  }

  /** Items waiting to be read. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Items dropped because too many were waiting. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Whether `end()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds an item; ignored after `end()`. Returns false when an old item was dropped. */
  push(item: T): boolean {
    if (this.#ended) return true;
    if (this.#waiter !== null) {
      const wake = this.#waiter;
      this.#waiter = null;
      wake({ value: item, done: false });
      return true;
    }
    this.#items.push(item);
    if (this.size > this.#maxItems) {
      this.#head++;
      this.#dropped++;
      this.#compact();
      return false;
    }
    return true;
  }

  /** Ends the queue: the consumer reads what is left, then finishes. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiter !== null && this.size === 0) {
      const wake = this.#waiter;
      this.#waiter = null;
      wake({ value: undefined, done: true });
    }
  }

  /** Resolves with the next item, or `done` once the queue is ended and empty. */
  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.#items[this.#head];
      this.#items[this.#head] = undefined as T;
      this.#head++;
      this.#compact();
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== null) {
      return Promise.reject(new Error("EventQueue supports a single reader at a time"));
    }
    return new Promise((resolve) => this.#waiter = resolve);
  }

  /** Iterates the items until the queue is ended and drained. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: (): Promise<IteratorResult<T>> => Promise.resolve({ value: undefined, done: true }),
    };
  }

  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
