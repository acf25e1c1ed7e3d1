/**
 * Why Nagle's algorithm costs chat's fan-out milliseconds: one loopback connection in one
 * process, a writer that writes a batch of frames every millisecond (as the server writes
 * each receiver once per turn), a reader that reads at once, and the latency of every
 * frame, in three modes:
 *
 * - `nodelay, equal`: `TCP_NODELAY` on (chat's choice), every batch the same length;
 * - `nagle, equal`: Nagle on, every batch the same length (the bench's messages all have
 *   one length, so batches of as many of them have one length too);
 * - `nagle, varied`: Nagle on, no two batches in a row of the same length.
 *
 * Linux's receiver estimates the sender's MSS (`icsk_ack.rcv_mss`, `tcp_measure_rcv_mss`): the
 * longest segment seen, lowered to the length of two segments in a row of the same length
 * (at least 536 bytes). A segment shorter than the estimate is "pushed" (acknowledged once
 * read, `tcp_cleanup_rbuf`) unless it is as long as the one before: then it becomes the
 * estimate, and a lone segment of one estimate is acknowledged neither when it arrives nor
 * when it is read, only by the delayed-ACK timer (40 ms). With Nagle on, everything the
 * sender writes meanwhile waits for that ACK, and comes out as one long segment that raises
 * the estimate again. The trap opens once a burst (a login's backlog, what a stall held)
 * has raised the estimate above the batches: the first batch here is such a burst
 * (`--burst 0`: none, and nothing waits). With `TCP_NODELAY` nothing waits for ACKs.
 *
 * ```sh
 * deno run -A bench/nagle_trap.ts [--ms 2000] [--frames 8] [--burst 290]
 * ```
 *
 * @module
 */

import { Histogram } from "./histogram.ts";

/** One mode's outcome. */
interface TrapResult {
  mode: string;
  batches: number;
  p50: number;
  p99: number;
  max: number;
  /** Share of frames that waited 20 ms or more. */
  stalled: number;
}

/** The length of one frame, as a room message of the bench is (`msg` frame, stamp text). */
const FRAME = 113;
/** Frames of the first batch by default: a 32 KiB burst. */
const BURST_FRAMES = 290;

/** Writes a batch every millisecond for `ms`, reading on the other end; resolves to its latencies. */
async function measure(
  nagle: boolean,
  varied: boolean,
  frames: number,
  burst: number,
  ms: number,
): Promise<TrapResult> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await listener.accept();
  listener.close();
  server.setNoDelay(!nagle);
  client.setNoDelay(true);
  const latency = new Histogram();
  let stalled = 0;
  let received = 0;
  // Each frame: u32 length, f64 send time, padding.
  const reading = (async () => {
    const buffer = new Uint8Array(1 << 20);
    let held = 0;
    for (;;) {
      const n = await client.read(buffer.subarray(held));
      if (n === null) return;
      held += n;
      const now = performance.now();
      const view = new DataView(buffer.buffer);
      let o = 0;
      while (o + 4 <= held && o + view.getUint32(o) <= held) {
        const waited = now - view.getFloat64(o + 4);
        // The burst itself is not counted: it is there to set the receiver's MSS estimate.
        if (received >= burst) {
          latency.record(waited);
          if (waited >= 20) stalled++;
        }
        received++;
        o += view.getUint32(o);
      }
      buffer.copyWithin(0, o, held);
      held -= o;
    }
  })();
  const end = performance.now() + ms;
  let batches = 0;
  let sent = 0;
  while (performance.now() < end) {
    // The first batch is a burst (as a login's backlog, or what a stall held, is): the
    // receiver's MSS estimate grows to its length. Varied: one frame of the batch a byte
    // longer every other batch.
    const count = batches === 0 && burst > 0 ? burst : frames;
    const lengths = Array.from(
      { length: count },
      (_, i) => FRAME + (varied && i === 0 ? batches % 2 : 0),
    );
    const batch = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
    const view = new DataView(batch.buffer);
    const stamp = performance.now();
    let o = 0;
    for (const length of lengths) {
      view.setUint32(o, length);
      view.setFloat64(o + 4, stamp);
      o += length;
    }
    let written = 0;
    while (written < batch.length) written += await server.write(batch.subarray(written));
    batches++;
    sent += count;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const deadline = performance.now() + 5000;
  while (received < sent && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  server.close();
  await reading.catch(() => {});
  try {
    client.close();
  } catch {
    // closed by the end of the stream
  }
  return {
    mode: `${nagle ? "nagle" : "nodelay"}, ${varied ? "varied" : "equal"}`,
    batches,
    p50: latency.percentile(0.5),
    p99: latency.percentile(0.99),
    max: latency.max,
    stalled: latency.count > 0 ? stalled / latency.count : 0,
  };
}

if (import.meta.main) {
  const arg = (flag: string, fallback: number) => {
    const i = Deno.args.indexOf(flag);
    return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  };
  const ms = arg("--ms", 2000);
  const frames = arg("--frames", 8);
  const burst = arg("--burst", BURST_FRAMES);
  console.log(
    `a burst of ${burst} frames, then batches of ${frames} frames of ${FRAME} bytes every` +
      ` millisecond, ${ms} ms each:`,
  );
  for (const [nagle, varied] of [[false, false], [true, false], [true, true]]) {
    const r = await measure(nagle, varied, frames, burst, ms);
    console.log(
      `  ${r.mode.padEnd(16)} ${r.batches} batches: p50 ${r.p50.toFixed(3)} ms, p99 ${
        r.p99.toFixed(3)
      } ms, max ${r.max.toFixed(1)} ms, ${(100 * r.stalled).toFixed(1)}% waited 20 ms or more`,
    );
  }
}
