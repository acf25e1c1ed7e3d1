/**
 * A TCP proxy on 127.0.0.1 in front of a server, that a test can cut: every proxied
 * connection dropped at once and new ones refused (a node that died), until resumed.
 *
 * While cut it keeps listening and closes each new connection at once: closing the
 * listener and listening again on the same port failed now and then with `AddrInUse`
 * when tests ran in parallel (the freed port was taken meanwhile).
 *
 * @module
 */

/** A TCP proxy on 127.0.0.1 that can drop every connection and refuse new ones. */
export class CuttableProxy {
  readonly port: number;
  #target: number;
  readonly #listener: Deno.Listener;
  #refusing = false;
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();

  /** Listens on a free port, forwarding to `target`. */
  constructor(target: number) {
    this.#target = target;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#track((async () => {
      try {
        for await (const inbound of listener) {
          if (this.#refusing) inbound.close();
          else this.#track(this.#forward(inbound));
        }
      } catch {
        // closed by close()
      }
    })());
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #forward(inbound: Deno.Conn): Promise<void> {
    let outbound: Deno.Conn;
    try {
      outbound = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      inbound.close();
      return;
    }
    if (this.#refusing) {
      // Cut while it was connecting.
      inbound.close();
      outbound.close();
      return;
    }
    this.#conns.add(inbound).add(outbound);
    const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
      try {
        await from.readable.pipeTo(to.writable, { preventClose: true });
      } catch {
        // cut
      }
      for (const conn of [from, to]) {
        try {
          conn.close();
        } catch {
          // already closed
        }
        this.#conns.delete(conn);
      }
    };
    await Promise.all([pipe(inbound, outbound), pipe(outbound, inbound)]);
  }

  /** Drops every proxied connection and refuses new ones (each closed at once). */
  cut(): void {
    this.#refusing = true;
    this.drop();
  }

  /** Drops every proxied connection, still accepting new ones. */
  drop(): void {
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    this.#conns.clear();
  }

  /**
   * Forwards new connections to another port from now on (a server started again
   * elsewhere, seen by its clients at the same address).
   */
  retarget(target: number): void {
    this.#target = target;
  }

  /** Forwards new connections again. */
  resume(): void {
    this.#refusing = false;
  }

  /** Stops listening, drops every connection, and waits until every task has ended. */
  async close(): Promise<void> {
    this.#refusing = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    this.drop();
    await Promise.all([...this.#tasks]);
  }
}
