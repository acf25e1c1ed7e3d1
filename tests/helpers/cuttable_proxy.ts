/**
 * A TCP proxy on 127.0.0.1 in front of a server, that a test can cut: every proxied
 * connection dropped at once and new ones refused (a node that died), until resumed.
 *
 * @module
 */

/** A TCP proxy on 127.0.0.1 that can drop every connection and refuse new ones. */
export class CuttableProxy {
  readonly port: number;
  readonly #target: number;
  #listener: Deno.Listener | null = null;
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();

  /** Listens on a free port, forwarding to `target`. */
  constructor(target: number) {
    this.#target = target;
    this.#listen(0);
    this.port = (this.#listener!.addr as Deno.NetAddr).port;
  }

  #listen(port: number): void {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#listener = listener;
    this.#track((async () => {
      try {
        for await (const inbound of listener) this.#track(this.#forward(inbound));
      } catch {
        // closed by cut()
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

  /** Drops every proxied connection and stops accepting. */
  cut(): void {
    this.#listener?.close();
    this.#listener = null;
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

  /** Accepts again, on the same port. */
  resume(): void {
    this.#listen(this.port);
  }

  /** Cuts, and waits until every forwarding task has ended. */
  async close(): Promise<void> {
    this.cut();
    await Promise.all([...this.#tasks]);
  }
}
