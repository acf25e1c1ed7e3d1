/**
 * The browser client's HTTP side: serves the page (embedded in the binary, see
 * server/web_assets.ts) and turns `/ws` into a WebSocket that the connection layer
 * serves like a TCP client (transport/websocket_channel.ts). No chat logic here.
 *
 * ## Why a port of its own (`--web-port`, by default the chat port + 1)
 *
 * One port could serve both: a chat frame starts with its length, and `GET ` read as a
 * length (1.2 GB) is past any frame the server accepts before login (64 KiB), so the
 * first four bytes tell them apart. But the accept loop hands out plain TCP (or TLS)
 * connections, and Deno 2 has no way to give an accepted connection to its HTTP server
 * (`Deno.serveHttp` is gone; `Deno.serve` owns its listener). Sharing the port would
 * mean an HTTP/1.1 parser and a WebSocket implementation of our own, in front of the
 * frames: code that browsers would exercise in every corner and that the runtime
 * already has, tested. So the page gets `Deno.serve` on a second port: HTTP/1.1 and
 * HTTP/2, WebSocket upgrade, and with `--tls-cert/--tls-key` HTTPS and WSS from the same
 * certificate. The cost is one more port to open in a firewall, printed at start.
 *
 * ## Safety
 * - Every response carries a strict Content-Security-Policy (scripts and styles from
 *   the page's own origin only, no inline script, nothing framed or posted elsewhere).
 * - A WebSocket is accepted only when its `Origin` is the page's own origin (the scheme,
 *   host and port the browser asked for): another site open in the same browser cannot
 *   talk to the server as the user. A request without `Origin` (not a browser) is refused too.
 * - The connection limits are the server's: a WebSocket counts against the connections
 *   in all and per IP address, and once open it is a client connection like the others
 *   (flood control, frame size, login and idle deadlines, slow-consumer cut-off).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { WebSocketChannel } from "../transport/websocket_channel.ts";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { WEB_ASSETS } from "./web_assets.ts";

const log = getLogger(["chat", "server", "web"]);

/** The path of the WebSocket endpoint. */
export const WEB_SOCKET_PATH = "/ws";

/** The Content-Security-Policy of every response. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cache-control": "no-cache",
};

/** What the web server hands to the chat server. */
export interface WebServerOptions {
  /** Address to bind. */
  hostname: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Certificate and key (PEM) for HTTPS and WSS. */
  tls?: { cert: string; key: string };
  /** Incoming bytes a WebSocket may have unread before it is closed. */
  maxUnreadBytes: number;
  /** Serves an accepted WebSocket as a client connection (admission included). */
  admit(channel: ByteChannel, hostname: string, port: number): void;
}

/** The running web server. */
export interface WebServer {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** Stops listening and ends open requests. */
  shutdown(): Promise<void>;
}

/** Whether `origin` (the `Origin` header) is the origin of `url` (the request's own). */
export function sameOrigin(origin: string | null, url: string): boolean {
  if (origin === null) return false;
  try {
    return new URL(origin).origin === new URL(url).origin;
  } catch {
    return false;
  }
}

/**
 * Starts the web server.
 *
 * @throws {Error} as `Deno.serve` does when the port cannot be bound.
 */
export function startWebServer(options: WebServerOptions): Promise<WebServer> {
  return new Promise((resolve, reject) => {
    const abort = new AbortController();
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: options.hostname,
        port: options.port,
        signal: abort.signal,
        ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
        onListen: (addr) => {
          resolve({
            addr,
            async shutdown() {
              abort.abort();
              await server.finished.catch(() => {});
            },
          });
        },
        onError: (err) => {
          log.error("web request failed: {err}", { err });
          return new Response("internal error\n", { status: 500 });
        },
      }, (request, info) => respond(request, info, options));
    } catch (err) {
      reject(err);
    }
  });
}

function respond(
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  options: WebServerOptions,
): Response {
  const path = new URL(request.url).pathname;
  if (request.method !== "GET" && request.method !== "HEAD") {
    return text("method not allowed\n", 405, { allow: "GET, HEAD" });
  }
  if (path === WEB_SOCKET_PATH) return upgrade(request, info, options);
  const asset = WEB_ASSETS[path === "/" ? "/index.html" : path];
  if (asset === undefined) return text("not found\n", 404);
  return new Response(request.method === "HEAD" ? null : asset.body, {
    headers: { ...SECURITY_HEADERS, "content-type": asset.type },
  });
}

function upgrade(
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  options: WebServerOptions,
): Response {
  // The request's details are gone once it is upgraded: read them first.
  const { hostname: ip, port: remotePort } = info.remoteAddr;
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return text("this address takes WebSocket connections\n", 426, { upgrade: "websocket" });
  }
  const origin = request.headers.get("origin");
  if (!sameOrigin(origin, request.url)) {
    log.warn("refusing a WebSocket from {ip}: origin {origin} is not this server's", {
      ip,
      origin: origin ?? "(none)",
    });
    return text("forbidden: the page must come from this server\n", 403);
  }
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: 0 });
  const channel = new WebSocketChannel(socket, { maxUnreadBytes: options.maxUnreadBytes });
  options.admit(channel, ip, remotePort);
  return response;
}

function text(body: string, status: number, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8", ...headers },
  });
}
