/**
 * TLS to a server whose certificate is trusted by its SHA-256 fingerprint (a
 * self-signed certificate, as `chat serve` prints it) instead of by a CA.
 *
 * Deno's own TLS API can neither skip CA verification for one connection nor show
 * the peer's certificate, so this dials with `node:tls`, checks the fingerprint of
 * the certificate the server presents before anything is sent, and adapts the
 * socket to the {@linkcode ByteChannel} a `FramedConnection` reads and writes.
 *
 * @module
 */

import * as tls from "node:tls";
import type { ByteChannel } from "../transport/framed_connection.ts";
import { handshakeFailure } from "../transport/net.ts";
import { NodeSocketChannel } from "../transport/node_socket_channel.ts";

/**
 * Stable codes of {@linkcode PinnedTlsError}: `fingerprint_mismatch` (another
 * certificate), `tls_failed` (the handshake failed otherwise), `connect_failed` (no
 * connection: refused, unreachable, or lost during the handshake; worth retrying),
 * `not_tls` (the server answered, but not in TLS).
 */
export type PinnedTlsErrorCode =
  | "fingerprint_mismatch"
  | "tls_failed"
  | "connect_failed"
  | "not_tls";

/** The reason a pinned connection was refused or failed. */
export class PinnedTlsError extends Error {
  /** Stable code, see {@linkcode PinnedTlsErrorCode}. */
  readonly code: PinnedTlsErrorCode;
  /** With `fingerprint_mismatch`: the fingerprint of the certificate the server presented. */
  readonly presented?: string;

  /** Creates the error. */
  constructor(
    code: PinnedTlsErrorCode,
    message: string,
    options?: ErrorOptions & { presented?: string },
  ) {
    super(message, options);
    this.name = "PinnedTlsError";
    this.code = code;
    if (options?.presented !== undefined) this.presented = options.presented;
  }
}

/**
 * Normalizes a SHA-256 fingerprint to uppercase hex pairs joined by colons; accepts
 * any case, with or without colons (or spaces).
 *
 * @throws {PinnedTlsError} `tls_failed` when it is not 32 bytes of hex.
 * @example
 * ```ts
 * import { normalizeFingerprint } from "./pinned_tls.ts";
 * normalizeFingerprint("ab".repeat(32)); // "AB:AB:...:AB"
 * ```
 */
export function normalizeFingerprint(text: string): string {
  const hex = text.replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new PinnedTlsError(
      "tls_failed",
      `"${text}" is not a SHA-256 fingerprint (64 hex digits, colons optional)`,
    );
  }
  return hex.match(/../g)!.join(":");
}

/**
 * Opens TLS to `host:port`, accepting exactly the certificate with SHA-256
 * fingerprint `fingerprint` (and no other, whoever signed it).
 *
 * @throws {PinnedTlsError} `fingerprint_mismatch`, or `tls_failed` when the
 * handshake fails.
 */
export function dialPinned(
  options: { host: string; port: number; fingerprint: string; serverName?: string },
): Promise<ByteChannel> {
  const expected = normalizeFingerprint(options.fingerprint);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      servername: options.serverName ?? (isIp(options.host) ? undefined : options.host),
      rejectUnauthorized: false, // the fingerprint check below replaces CA verification
    });
    const fail = (err: Error) => {
      socket.destroy();
      reject(
        err instanceof PinnedTlsError
          ? err
          : new PinnedTlsError(dialFailure(err), err.message, { cause: err }),
      );
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      const presented = socket.getPeerCertificate()?.fingerprint256?.toUpperCase() ?? "";
      if (presented !== expected) {
        fail(
          new PinnedTlsError(
            "fingerprint_mismatch",
            `the server's certificate has SHA-256 fingerprint ${presented || "(none)"}, ` +
              `not the trusted ${expected}`,
            { presented },
          ),
        );
        return;
      }
      socket.off("error", fail);
      socket.setNoDelay(true);
      resolve(new NodeSocketChannel(socket));
    });
  });
}

/** The certificate a server presents, as {@linkcode probeCertificate} saw it. */
export interface PresentedCertificate {
  /** SHA-256 fingerprint, uppercase hex pairs joined by colons. */
  fingerprint: string;
  /** The subject's common name, when it has one. */
  subject?: string;
  /** The issuer's common name, when it has one. */
  issuer?: string;
  /** Why the certificate is not trusted by the CAs `node:tls` knows (e.g. `DEPTH_ZERO_SELF_SIGNED_CERT`). */
  untrustedBecause?: string;
}

/**
 * Opens TLS to `host:port` only to look at the server's certificate, and hangs up
 * before sending anything: for trust on first use, where the user decides whether a
 * certificate no CA vouches for is the server's.
 *
 * @throws {PinnedTlsError} `tls_failed` when there is no TLS handshake (refused,
 * not TLS, timeout).
 * @example
 * ```ts ignore
 * import { probeCertificate } from "./pinned_tls.ts";
 * const { fingerprint } = await probeCertificate({ host: "127.0.0.1", port: 44444 });
 * ```
 */
export function probeCertificate(
  options: { host: string; port: number; serverName?: string; timeoutMs?: number },
): Promise<PresentedCertificate> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      servername: options.serverName ?? (isIp(options.host) ? undefined : options.host),
      rejectUnauthorized: false, // looking, not trusting: nothing is sent
    });
    const timer = setTimeout(
      () => finish(new Error(`no TLS handshake within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const finish = (err: Error | null, cert?: PresentedCertificate) => {
      clearTimeout(timer);
      socket.destroy();
      if (cert !== undefined) resolve(cert);
      else {reject(
          new PinnedTlsError("tls_failed", err?.message ?? "no certificate", { cause: err }),
        );}
    };
    socket.once("error", (err: Error) => finish(err));
    socket.once("secureConnect", () => {
      const peer = socket.getPeerCertificate();
      const fingerprint = peer?.fingerprint256?.toUpperCase();
      if (!fingerprint) {
        finish(new Error("the server presented no certificate"));
        return;
      }
      const name = (field: unknown): string | undefined => {
        const cn = (field as { CN?: unknown } | undefined)?.CN;
        return typeof cn === "string" ? cn : Array.isArray(cn) ? String(cn[0]) : undefined;
      };
      const why = socket.authorizationError;
      finish(null, {
        fingerprint,
        ...(name(peer.subject) !== undefined ? { subject: name(peer.subject) } : {}),
        ...(name(peer.issuer) !== undefined ? { issuer: name(peer.issuer) } : {}),
        ...(why ? { untrustedBecause: String(why) } : {}),
      });
    });
  });
}

/** Codes of `node:net` errors raised before a TCP connection exists. */
const NO_CONNECTION = new Set([
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EADDRNOTAVAIL",
]);

/** What a `node:tls` error before the fingerprint check means. */
function dialFailure(err: Error): PinnedTlsErrorCode {
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && NO_CONNECTION.has(code)) return "connect_failed";
  return handshakeFailure(err);
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
