/**
 * A fan-out to many connections over real loopback sockets: every receiver's first
 * write must go out within a bounded number of event-loop turns while new fan-outs keep
 * coming. Deno completes at most 128 socket operations per iteration of its event loop
 * (`bench/write_budget.ts`), and the writes a turn starts take that budget before the
 * ones already waiting: without the outbound queues' own line, the receivers whose
 * writes waited were passed over as long as new messages came (issue #16, the
 * 1,000-member room: writes waiting 0.3-1.6 s with nothing queued in the kernel).
 */

import assert from "node:assert/strict";
import { OutboundQueue } from "../transport/outbound_queue.ts";

const RECEIVERS = 600;
/** Turns (timer hops) during which every receiver is sent a message. */
const MAX_HOPS = 150;
/** The line starts WRITE_SLOTS (120) writes per turn: 600 receivers take ~5; generous. */
const HOPS_ALLOWED = 60;

function hop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("a fan-out under constant new messages writes to every receiver within a bounded number of turns", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const servers: Deno.TcpConn[] = [];
  const clients: Deno.TcpConn[] = [];
  const drains: Promise<void>[] = [];
  const failures: unknown[] = [];
  let queues: OutboundQueue[] = [];
  try {
    const accepted = (async () => {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        servers.push(conn);
        if (servers.length === RECEIVERS) break; // closes the listener
      }
    })();
    for (let i = 0; i < RECEIVERS; i++) {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    await accepted;
    // The receivers read everything, as fast as they can.
    for (const c of clients) {
      drains.push((async () => {
        const buffer = new Uint8Array(64 * 1024);
        try {
          while ((await c.read(buffer)) !== null) { /* discard */ }
        } catch {
          // closed
        }
      })());
    }
    queues = servers.map((conn) =>
      new OutboundQueue(conn, {
        maxQueueBytes: 64 * 1024 * 1024,
        onWriteFailed: (err) => failures.push(err),
      })
    );
    const message = new Uint8Array(170);
    let hops = 0;
    let allWritten = -1;
    while (hops < MAX_HOPS) {
      for (const q of queues) q.push(message);
      await hop();
      hops++;
      if (allWritten < 0 && queues.every((q) => q.bytesOut > 0)) allWritten = hops;
      if (allWritten >= 0) break;
    }
    assert.ok(
      allWritten > 0 && allWritten <= HOPS_ALLOWED,
      `every receiver written to after ${allWritten < 0 ? `more than ${MAX_HOPS}` : allWritten}` +
        ` turns (${
          queues.filter((q) => q.bytesOut === 0).length
        } never were); allowed ${HOPS_ALLOWED}`,
    );
    assert.deepEqual(failures, []);
    // Everything queued still leaves, in order, once the messages stop.
    await Promise.all(queues.map((q) => q.flush()));
    for (const q of queues) assert.equal(q.queuedBytes, 0);
    assert.equal(
      queues.reduce((n, q) => n + q.bytesOut, 0),
      hops * RECEIVERS * message.length,
    );
  } finally {
    for (const q of queues) q.stop();
    for (const c of [...servers, ...clients]) {
      try {
        c.close();
      } catch {
        // closed already
      }
    }
    try {
      listener.close();
    } catch {
      // closed when the accept loop ended
    }
    await Promise.all(drains);
  }
});
