/**
 * Dialing the test server from another loopback address (127.0.0.2, 127.0.0.3...), so a
 * test can play clients on different IP addresses: `Deno.connect` cannot choose the
 * local address, `node:net` can.
 *
 * @module
 */

import net from "node:net";
import { FramedConnection } from "../../transport/framed_connection.ts";
import { NodeSocketChannel } from "../../transport/node_socket_channel.ts";
import type { ChatServer } from "../../server/server.ts";
import { Probe } from "./harness.ts";

/** Dials `server` from `localAddress` (a 127.x.y.z address) without saying anything. */
export function dialFrom(server: ChatServer, localAddress: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: server.addr.port, localAddress });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(new Probe(new FramedConnection(new NodeSocketChannel(socket))));
    });
  });
}

/** Dials from `localAddress` and says hello. */
export async function helloFrom(server: ChatServer, localAddress: string): Promise<Probe> {
  const probe = await dialFrom(server, localAddress);
  await probe.hello();
  return probe;
}
