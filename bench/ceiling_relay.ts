/**
 * The ceiling: a bare relay of pre-framed bytes, the most this runtime can deliver
 * on this machine with the same load clients.
 *
 * ```sh
 * deno run -A bench/ceiling_relay.ts [--read-buffer 65536]
 * ```
 *
 * A connection's first frame is `{"type":"join","room":R,"id":I}` (JSON-parsed, once);
 * the relay answers `{"type":"ok","re":I}` and from then on forwards every chunk of
 * complete frames the connection sends to every other connection of room R, without
 * parsing: it only walks the length prefixes to cut at a frame boundary. Each
 * receiver has one coalescing writer, like the server's, so a wake-up costs one
 * write per receiver, and the writers take turns in one line, like the server's. Prints `{"port": N, "pid": P}`, then serves the side channel
 * (`mem`, `gc`, `stats`, `exit`).
 *
 * @module
 */

import { concatBytes } from "../protocol/bytes.ts";
import { serveSideChannel } from "../tools/side_channel.ts";

/** Read buffer per connection: `--read-buffer N`, default 64 KiB. */
const READ_BUFFER = readBufferFlag(Deno.args);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One relayed connection. */
class RelayConn {
  readonly conn: Deno.TcpConn;
  room: Set<RelayConn> | null = null;
  closed = false;
  #queue: Uint8Array[] = [];
  #writing = false;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.#queue.push(bytes);
    if (!this.#writing) {
      this.#writing = true;
      writeLine.enter(this);
    }
  }

  /** One write of everything queued (its turn in the line); back in line if more came. */
  async writeOnce(lap: number): Promise<void> {
    try {
      const batch = this.#queue.length === 1 ? this.#queue[0] : concatBytes(this.#queue);
      this.#queue = [];
      let offset = 0;
      while (offset < batch.length) offset += await this.conn.write(batch.subarray(offset));
    } catch {
      this.close();
    } finally {
      writeLine.settled(lap);
      if (this.#queue.length > 0 && !this.closed) writeLine.enter(this);
      else this.#writing = false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#queue = [];
    this.room?.delete(this);
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * The writers' line, as the server's (`transport/outbound_queue.ts`, `WRITE_SLOTS`): Deno
 * completes at most 128 socket operations per event-loop iteration and gives them to the
 * newest writes, so without it a fan-out under constant load left some receivers' writes
 * waiting for seconds. At most 120 writes start per lap (a `setTimeout(0)`, or until they
 * settle), first come first served.
 */
const writeLine = {
  slots: 120,
  line: [] as RelayConn[],
  head: 0,
  inFlight: 0,
  lap: 0,
  kicked: false,
  lapTimer: false,
  enter(c: RelayConn): void {
    this.line.push(c);
    this.kick();
  },
  kick(): void {
    if (this.kicked) return;
    this.kicked = true;
    queueMicrotask(() => this.start());
  },
  start(): void {
    this.kicked = false;
    while (this.inFlight < this.slots && this.head < this.line.length) {
      const c = this.line[this.head++];
      if (c.closed) continue;
      this.inFlight++;
      if (!this.lapTimer) {
        this.lapTimer = true;
        setTimeout(() => {
          this.lapTimer = false;
          this.lap++;
          this.inFlight = 0;
          if (this.head < this.line.length) this.kick();
        }, 0);
      }
      c.writeOnce(this.lap);
    }
    if (this.head === this.line.length) {
      this.line = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.line.length) {
      this.line.splice(0, this.head);
      this.head = 0;
    }
  },
  settled(lap: number): void {
    if (lap === this.lap) this.inFlight--;
    if (this.head < this.line.length) this.kick();
  },
};

function readBufferFlag(args: string[]): number {
  const i = args.indexOf("--read-buffer");
  if (i < 0) return 64 * 1024;
  const n = Number(args[i + 1]);
  if (!Number.isInteger(n) || n < 16) throw new Error("--read-buffer needs a byte count ≥ 16");
  return n;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function frame(header: object): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length + 4);
  view.setUint32(4, json.length);
  out.set(json, 8);
  return out;
}

const rooms = new Map<string, Set<RelayConn>>();
let connections = 0;

async function serve(c: RelayConn): Promise<void> {
  const buffer = new Uint8Array(READ_BUFFER);
  let carry: Uint8Array | null = null;
  connections++;
  try {
    while (!c.closed) {
      const n = await c.conn.read(buffer);
      if (n === null) break;
      let data = buffer.subarray(0, n);
      if (carry !== null) {
        const joined = new Uint8Array(carry.length + n);
        joined.set(carry);
        joined.set(data, carry.length);
        data = joined;
        carry = null;
      }
      let o = 0;
      while (o + 4 <= data.length) {
        const length = u32(data, o);
        if (length > 1024 * 1024) throw new Error("frame too large");
        if (o + 4 + length > data.length) break;
        if (c.room === null) {
          // The one parsed frame: the join.
          const headerLength = u32(data, o + 4);
          const header = JSON.parse(decoder.decode(data.subarray(o + 8, o + 8 + headerLength)));
          let room = rooms.get(String(header.room));
          if (room === undefined) {
            room = new Set();
            rooms.set(String(header.room), room);
          }
          room.add(c);
          c.room = room;
          c.send(frame({ type: "ok", re: header.id }));
          data = data.subarray(o + 4 + length);
          o = 0;
          continue;
        }
        o += 4 + length;
      }
      if (c.room !== null && o > 0) {
        // One copy of the complete frames, shared by every receiver.
        const chunk = data.slice(0, o);
        for (const other of c.room) if (other !== c) other.send(chunk);
      }
      if (o < data.length) carry = data.slice(o);
    }
  } catch {
    // reset, bad frame or closed: drop the connection
  } finally {
    c.close();
    connections--;
  }
}

if (import.meta.main) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(
    JSON.stringify({ port: (listener.addr as Deno.NetAddr).port, pid: Deno.pid, store: "none" }),
  );
  (async () => {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        serve(new RelayConn(conn));
      }
    } catch {
      // listener closed
    }
  })();
  await serveSideChannel({
    stats: () => ({ sessions: connections, rooms: rooms.size }),
    exit: () => {
      try {
        listener.close();
      } catch {
        // already closed
      }
      for (const room of rooms.values()) for (const c of [...room]) c.close();
    },
  });
  Deno.exit(0);
}
