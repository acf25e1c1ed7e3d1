/**
 * The NATS client's Node transport with one fix: its sockets never raise an unhandled
 * `error` event.
 *
 * `@nats-io/transport-node` 3.4 drops a socket by calling `removeAllListeners()` then
 * `destroy()`. Under Deno's `node:net` a destroyed socket may still emit `error`
 * (`read ECONNRESET`, e.g. when the server closes the connection after refusing the
 * credentials); with no listener left, that error is uncaught and ends the process. Each
 * socket of this transport keeps a listener that ignores errors after the client has let
 * go of it: the client learns of the failure from the socket's `close`, as before.
 *
 * @module
 */

import type { Socket } from "node:net";
import {
  type ConnectionOptions,
  type NatsConnection,
  NatsConnectionImpl,
  setTransportFactory,
} from "@nats-io/transport-node";
import { nodeResolveHost, NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";

function ignore(): void {}

/** Gives `socket` an error listener that stays when its listeners are all removed. */
function keepErrorSink(socket: Socket): void {
  socket.on("error", ignore);
  const removeAll = socket.removeAllListeners;
  socket.removeAllListeners = function (this: Socket, ...args: [string | symbol] | []) {
    removeAll.apply(this, args);
    if (args.length === 0 || args[0] === "error") this.on("error", ignore);
    return this;
  };
}

/** The Node transport whose sockets never raise unhandled errors. */
class GuardedNodeTransport extends NodeTransport {
  override async connect(
    hp: { hostname: string; port: number; tlsName: string },
    options: Parameters<NodeTransport["connect"]>[1],
  ): Promise<void> {
    try {
      await super.connect(hp, options);
    } finally {
      // The TCP (or TLS) socket the client keeps; it is dropped on close or discard.
      if (this.socket !== undefined) keepErrorSink(this.socket);
    }
  }
}

/**
 * Connects like the package's `connect`, with {@linkcode GuardedNodeTransport}. The
 * transport factory is process-wide: every connection made here (and its reconnects)
 * uses it.
 */
export function connectGuarded(options: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({
    factory: () => new GuardedNodeTransport(),
    dnsResolveFn: nodeResolveHost,
  });
  return NatsConnectionImpl.connect(options);
}
