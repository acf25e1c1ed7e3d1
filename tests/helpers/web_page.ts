/**
 * The browser page's modules without a browser: Deno's own WebSocket (sending the page's
 * Origin, as a browser would), `File` and `Blob` run web/chat_socket.ts and
 * web/file_transfer.ts against a real server's web listener.
 *
 * @example
 * ```ts ignore
 * const alice = await asPage(server, () => page(server, "alice"));
 * const sent = await alice.files.send("bob", new File([bytes], "a.bin"));
 * ```
 *
 * @module
 */

import { ChatSocket, type Header } from "../../web/chat_socket.ts";
import { type Transfer, WebFileTransfers } from "../../web/file_transfer.ts";

/** A server with a web listener (a `ChatServer`), or the listener's port. */
export type PageTarget = number | { readonly webAddr: Deno.NetAddr | null };

function webPortOf(target: PageTarget): number {
  return typeof target === "number" ? target : target.webAddr!.port;
}

/**
 * Runs `fn` with Deno's WebSocket sending the page's Origin, as a browser would (sockets
 * a page opens meanwhile, reconnections too, send it).
 */
export async function asPage<T>(target: PageTarget, fn: () => Promise<T>): Promise<T> {
  const native = globalThis.WebSocket;
  const origin = `http://127.0.0.1:${webPortOf(target)}`;
  const Init = native as unknown as new (url: string, init: object) => WebSocket;
  class PageSocket extends Init {
    constructor(url: string) {
      super(url, { headers: { origin } });
    }
  }
  globalThis.WebSocket = PageSocket as unknown as typeof WebSocket;
  try {
    return await fn();
  } finally {
    globalThis.WebSocket = native;
  }
}

/** A page's session: its socket and its transfers, with every change recorded. */
export async function page(
  target: PageTarget,
  nick: string,
): Promise<{ chat: ChatSocket; files: WebFileTransfers; changes: Transfer[] }> {
  // Events that come while the session opens (a file of ours ending, told at login) wait
  // for the transfers, made once the socket is open.
  let files: WebFileTransfers | null = null;
  const early: Header[] = [];
  const { chat } = await ChatSocket.open(
    `ws://127.0.0.1:${webPortOf(target)}/ws`,
    nick,
    { password: "password123" },
    true,
    {
      event: (header) => files === null ? early.push(header) : files.handleEvent(header),
      state: () => {},
      resumed: () => {},
    },
  );
  const changes: Transfer[] = [];
  const made = new WebFileTransfers(chat, (t) => changes.push({ ...t }));
  files = made;
  for (const header of early.splice(0)) made.handleEvent(header);
  return { chat, files: made, changes };
}
