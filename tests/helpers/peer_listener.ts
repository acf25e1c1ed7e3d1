/**
 * A `chat peer` listener for tests: on an ephemeral loopback port, its rejected
 * handshakes collected.
 *
 * @module
 */

import type { PeerError } from "../../peer/errors.ts";
import { listenPeer, type ListenPeerOptions } from "../../peer/listen.ts";
import type { PeerSession } from "../../peer/session.ts";

/** A listening peer: its port, the session it will become, what it rejected, its stop. */
export interface Listening {
  port: number;
  session: Promise<PeerSession>;
  rejected: PeerError[];
  stop: AbortController;
}

/** Listens as `nick` on 127.0.0.1, port 0, with `extra` options; resolves once bound. */
export async function listening(
  nick: string,
  extra: Partial<ListenPeerOptions> = {},
): Promise<Listening> {
  let bound!: (port: number) => void;
  const port = new Promise<number>((resolve) => bound = resolve);
  const rejected: PeerError[] = [];
  const stop = new AbortController();
  const session = listenPeer({
    host: "127.0.0.1",
    port: 0,
    nick,
    signal: stop.signal,
    onListening: (addr) => bound(addr.port),
    onRejected: (error) => rejected.push(error),
    ...extra,
  });
  session.catch(() => {});
  return { port: await port, session, rejected, stop };
}
