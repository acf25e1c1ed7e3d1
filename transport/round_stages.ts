/**
 * Where a round of the fan-out spends its time, for the bench (issue #16, the latency
 * floor at a fixed load): each group commit starts a round, and the round's stages are
 * timed on the server's own clock: its reads, the commit, the hand-off to the broker and
 * its encoding, the writes started from the outbound line (the first, the last, their
 * count) and settled. Off unless the process calls {@linkcode RoundStages.enable} (the
 * bench's server process does when `CHAT_ROUND_STAGES` is set; the server itself reads no
 * environment variable for it: a `chat serve` allowed only its own would stop at a
 * permission prompt in a terminal); each hook is then one
 * `performance.now()` and a store into a preallocated table, and costs one branch when off.
 * The bench server reports {@linkcode RoundStages.summary} in its `stats`
 * (`bench/fixed_rate.ts --stages`).
 *
 * @example
 * ```ts
 * import { roundStages, Stage } from "./round_stages.ts";
 * roundStages.enable();
 * roundStages.read(performance.now());
 * roundStages.commitStart(1);
 * roundStages.mark(Stage.CommitEnd);
 * roundStages.summary().rounds; // 1
 * ```
 *
 * @module
 */

/** The columns of a round's row. */
export const Stage = {
  /** `performance.now()` of the round's first read. */
  FirstRead: 0,
  /** Reads before its commit. */
  Reads: 1,
  /** Messages committed. */
  Messages: 2,
  CommitStart: 3,
  CommitEnd: 4,
  /** The broker starts delivering (its first delivery after the commit). */
  FanoutStart: 5,
  FanoutEnd: 6,
  FirstWrite: 7,
  LastWrite: 8,
  /** Writes started from the outbound line while it was the last round. */
  Writes: 9,
  LastSettled: 10,
  /** The earliest send stamp of its messages, ms since the epoch (a bench `say`'s text). */
  EarliestSent: 11,
  /** `Date`-clock time of the read that brought that message. */
  EarliestSentRead: 12,
  /** The previous round's commit end. */
  PreviousCommitEnd: 13,
} as const;

const WIDTH = 14;
/** Rounds kept (the first ones after a reset): 20,000 rows, 2.2 MB, when enabled. */
const MAX_ROUNDS = 20_000;

/** Percentiles of one stage over the rounds, ms (or a count). */
export interface StageFigures {
  p10: number;
  p50: number;
  p90: number;
  n: number;
}

/** The stage timings of the rounds since the last reset (see the module's notes). */
export class RoundStages {
  #on = false;
  #rows: Float64Array | null = null;
  #rounds = 0;
  /** The round being gathered: its reads, before its commit. */
  readonly #next = new Float64Array(WIDTH);
  /** The row of the last committed round: deliveries and writes count there. */
  #last = -1;
  #lastCommitEnd = 0;

  /** Whether the hooks record. */
  get on(): boolean {
    return this.#on;
  }

  /** Starts recording (tests, and the bench's server process). */
  enable(): void {
    this.#on = true;
  }

  /** A read brought frames (`now`: `performance.now()`). */
  read(now: number): void {
    const next = this.#next;
    if (next[Stage.Reads] === 0) next[Stage.FirstRead] = now;
    next[Stage.Reads]++;
  }

  /** A `say` of the gathered round: a bench stamp (`…|<ms since the epoch>`) is noted. */
  say(text: string): void {
    const bar = text.lastIndexOf("|");
    if (bar < 0) return;
    const sent = Number(text.slice(bar + 1));
    if (!(sent > 0)) return;
    const next = this.#next;
    if (next[Stage.EarliestSent] === 0 || sent < next[Stage.EarliestSent]) {
      next[Stage.EarliestSent] = sent;
      next[Stage.EarliestSentRead] = performance.timeOrigin + performance.now();
    }
  }

  /** A group commit of `messages` starts: the gathered round becomes the last. */
  commitStart(messages: number): void {
    const next = this.#next;
    if (this.#rounds >= MAX_ROUNDS) {
      next.fill(0);
      this.#last = -1;
      return;
    }
    const rows = this.#rows ??= new Float64Array(WIDTH * MAX_ROUNDS);
    const at = this.#rounds++ * WIDTH;
    rows.set(next, at);
    next.fill(0);
    rows[at + Stage.Messages] = messages;
    rows[at + Stage.CommitStart] = performance.now();
    rows[at + Stage.PreviousCommitEnd] = this.#lastCommitEnd;
    this.#last = at;
  }

  /** The last round reached `stage` now. */
  mark(stage: number): void {
    if (this.#last < 0) return;
    const now = performance.now();
    if (stage === Stage.CommitEnd) this.#lastCommitEnd = now;
    this.#rows![this.#last + stage] = now;
  }

  /** The last round reached `stage` now, unless it had already. */
  markFirst(stage: number): void {
    if (this.#last < 0 || this.#rows![this.#last + stage] !== 0) return;
    this.#rows![this.#last + stage] = performance.now();
  }

  /** A write starts from the outbound line. */
  writeStart(): void {
    if (this.#last < 0) return;
    const rows = this.#rows!;
    const at = this.#last;
    const now = performance.now();
    if (rows[at + Stage.FirstWrite] === 0) rows[at + Stage.FirstWrite] = now;
    rows[at + Stage.LastWrite] = now;
    rows[at + Stage.Writes]++;
  }

  /** A write settled. */
  writeSettled(): void {
    if (this.#last >= 0) this.#rows![this.#last + Stage.LastSettled] = performance.now();
  }

  /** Forgets the rounds so far. */
  reset(): void {
    this.#rounds = 0;
    this.#last = -1;
    this.#next.fill(0);
  }

  /** Each stage's percentiles over the rounds since the last reset. */
  summary(): { rounds: number } & Record<string, StageFigures | number> {
    const rows = this.#rows;
    const n = this.#rounds;
    const figures = (value: (at: number) => number): StageFigures => {
      const values: number[] = [];
      for (let i = 0; i < n; i++) {
        const v = value(i * WIDTH);
        if (Number.isFinite(v)) values.push(v);
      }
      values.sort((a, b) => a - b);
      const p = (q: number) =>
        values.length === 0
          ? NaN
          : Math.round(values[Math.floor(q * (values.length - 1))] * 1e3) / 1e3;
      return { p10: p(0.1), p50: p(0.5), p90: p(0.9), n: values.length };
    };
    const column = (c: number) => (at: number) => rows![at + c];
    const between = (from: number, to: number) => (at: number) =>
      rows![at + from] > 0 && rows![at + to] > 0 ? rows![at + to] - rows![at + from] : NaN;
    return {
      rounds: n,
      reads: figures(column(Stage.Reads)),
      messages: figures(column(Stage.Messages)),
      writes: figures(column(Stage.Writes)),
      /** The round's earliest message: from its send (the load's clock) to its read. */
      sentToRead: figures(between(Stage.EarliestSent, Stage.EarliestSentRead)),
      /** From the end of the previous commit to this round's first read. */
      previousCommitToRead: figures(between(Stage.PreviousCommitEnd, Stage.FirstRead)),
      readToCommit: figures(between(Stage.FirstRead, Stage.CommitStart)),
      commit: figures(between(Stage.CommitStart, Stage.CommitEnd)),
      commitToFanout: figures(between(Stage.CommitEnd, Stage.FanoutStart)),
      fanout: figures(between(Stage.FanoutStart, Stage.FanoutEnd)),
      fanoutToFirstWrite: figures(between(Stage.FanoutEnd, Stage.FirstWrite)),
      /** From the first write started to the last (they start in one loop). */
      writeSpan: figures(between(Stage.FirstWrite, Stage.LastWrite)),
      firstWriteToLastSettled: figures(between(Stage.FirstWrite, Stage.LastSettled)),
      readToFirstWrite: figures(between(Stage.FirstRead, Stage.FirstWrite)),
    };
  }
}

/** The process's round stages (one fan-out per process). */
export const roundStages: RoundStages = new RoundStages();
