/**
 * Which server certificates `chat connect --tls` trusts, trust on first use like SSH:
 *
 * - `--ca FILE`: certificates signed by that CA; nothing is remembered.
 * - `--trust-fingerprint SHA256`: exactly that certificate; once logged in, it is
 *   remembered in the known-servers file (replacing an older one for that server).
 * - `--tls` and the server is in the known-servers file: exactly the certificate
 *   remembered. Any other is refused, loudly: it may be a machine in the middle.
 * - `--tls` and the server is not known: the system's CAs. When they do not vouch for
 *   the certificate (a self-signed server), the client shows its SHA-256 fingerprint
 *   and, in a terminal, asks whether to trust it; if so, it is remembered. Scripts are
 *   told to pass `--trust-fingerprint` instead.
 *
 * The certificate is checked with a TLS handshake of its own before `connect` is
 * called, so that nothing (not even a password prompt) happens before the server is
 * trusted.
 *
 * With several addresses (`--host a:44444,b:44444`, see {@linkcode connectTrustingAll}),
 * each address is pinned on its own: its known-servers entry, or the system's CAs, or a
 * certificate trusted on first use at that address (asked once per certificate: nodes
 * sharing one certificate are asked about once). An address that cannot be reached at
 * the start is checked against its entry if it has one, else against the system's CAs.
 *
 * @module
 */

import type { ChatClientOptions } from "../client/chat_client.ts";
import { ChatError } from "../client/chat_error.ts";
import { type KnownServer, type KnownServers, serverKey } from "../client/known_servers.ts";
import {
  dialPinned,
  PinnedTlsError,
  type PresentedCertificate,
  probeCertificate,
} from "../client/pinned_tls.ts";
import { sanitize } from "../client/render.ts";
import { formatServerAddress, type ServerAddress } from "../client/server_list.ts";
import { dial, DialError } from "../transport/net.ts";

/** The TLS setting handed to the client: CA-verified, or pinned to one fingerprint. */
export type TlsChoice = NonNullable<ChatClientOptions["tls"]>;

/** Everything the trust decision needs. */
export interface TrustSetup {
  /** The server's host, as given. */
  host: string;
  /** The server's port. */
  port: number;
  /** `--ca`: PEM certificates to verify against instead of the system's. */
  caCerts?: string[];
  /** `--trust-fingerprint`, normalized. */
  fingerprint?: string;
  /** The known-servers file; null when there is no config folder to keep it in. */
  known: KnownServers | null;
  /** Whether a person at a terminal can be asked. */
  interactive: boolean;
  /** Asks a question on the terminal and returns the answer. */
  ask(question: string): Promise<string>;
  /** Writes diagnostic lines (stderr). */
  warn(text: string): void;
}

/** Why a server's certificate was not accepted. */
export class TrustError extends Error {
  /**
   * Stable code: `certificate_changed` (not the remembered one), `certificate_untrusted`
   * (no CA vouches for it and nobody could be asked), `not_trusted` (the user said no).
   */
  readonly code: "certificate_changed" | "certificate_untrusted" | "not_trusted";

  /** Creates the error. */
  constructor(code: TrustError["code"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TrustError";
    this.code = code;
  }
}

/** The first error of a `cause` chain that `test` accepts. */
function findCause<T>(err: unknown, test: (e: unknown) => e is T): T | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (test(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function mismatchOf(err: unknown): PinnedTlsError | undefined {
  return findCause(
    err,
    (e): e is PinnedTlsError => e instanceof PinnedTlsError && e.code === "fingerprint_mismatch",
  );
}

function isTlsFailure(err: unknown): boolean {
  return findCause(
    err,
    (e): e is ChatError => e instanceof ChatError && e.code === "tls_failed",
  ) !==
    undefined;
}

/**
 * Whether a failed dial failed on the certificate (rather than reaching the server, or
 * finding a server that does not speak TLS).
 */
function isHandshakeFailure(err: unknown): boolean {
  return err instanceof DialError && err.code === "tls_failed";
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Decides how to trust the server, asking and refusing as the rules above say, then
 * connects through `connect` (which dials, logs in and retries) and remembers a newly
 * trusted certificate. Errors `connect` throws keep their `cause` chain, so that a
 * fingerprint mismatch can be told apart.
 *
 * @throws {TrustError} when the certificate is refused; otherwise what `connect` throws.
 * @example
 * ```ts ignore
 * import { connectTrusting } from "./connect_trust.ts";
 * const client = await connectTrusting(
 *   { host, port, known, interactive: true, ask, warn },
 *   (tls) => ChatClient.connect({ host, port, nick, password, tls }),
 * );
 * ```
 */
export async function connectTrusting<T>(
  setup: TrustSetup,
  connect: (tls: TlsChoice) => Promise<T>,
): Promise<T> {
  if (setup.caCerts !== undefined) return await connect({ caCerts: setup.caCerts });
  if (setup.fingerprint !== undefined) {
    const connected = await connect({ fingerprint: setup.fingerprint });
    await remember(setup, setup.fingerprint);
    return connected;
  }
  const where = serverKey(setup.host, setup.port);
  const entry = await setup.known?.lookup(setup.host, setup.port);
  if (entry !== undefined) {
    const refuse = (presented: string, cause: unknown): never => {
      setup.warn(changedWarning(where, entry, presented, setup.known!.path));
      throw new TrustError(
        "certificate_changed",
        `refusing to connect to ${where}: its certificate is not the one trusted before (see above)`,
        { cause },
      );
    };
    try {
      const channel = await dialPinned({
        host: setup.host,
        port: setup.port,
        fingerprint: entry.fingerprint,
      });
      channel.close();
    } catch (err) {
      const mismatch = mismatchOf(err);
      if (mismatch !== undefined) refuse(mismatch.presented ?? "(none)", err);
      // Not reachable now: the connection attempts below wait for it.
    }
    try {
      return await connect({ fingerprint: entry.fingerprint });
    } catch (err) {
      const mismatch = mismatchOf(err);
      if (mismatch !== undefined) refuse(mismatch.presented ?? "(none)", err);
      throw err;
    }
  }

  // Not known: the system's CAs, unless they do not vouch for the certificate.
  let firstUse: string | null = null;
  try {
    const conn = await dial({ host: setup.host, port: setup.port, tls: true });
    conn.close();
  } catch (err) {
    if (isHandshakeFailure(err)) {
      firstUse = await trustOnFirstUse(setup, `TLS with ${where} failed: ${describe(err)}`, err);
    }
    // Not reachable now: the connection attempts below wait for it.
  }
  let connected: T;
  if (firstUse !== null) {
    connected = await connect({ fingerprint: firstUse });
  } else {
    try {
      connected = await connect(true);
    } catch (err) {
      // The server came up with a certificate no CA vouches for after all.
      if (!isTlsFailure(err)) throw err;
      firstUse = await trustOnFirstUse(setup, describe(err), err);
      connected = await connect({ fingerprint: firstUse });
    }
  }
  if (firstUse !== null) await remember(setup, firstUse);
  return connected;
}

/**
 * Shows the certificate no CA vouches for and asks whether to trust it (or, without
 * a terminal, refuses with the fingerprint to pass to `--trust-fingerprint`). Returns
 * the fingerprint to pin.
 */
async function trustOnFirstUse(setup: TrustSetup, reason: string, cause: unknown): Promise<string> {
  let seen: PresentedCertificate;
  try {
    seen = await probeCertificate({ host: setup.host, port: setup.port });
  } catch {
    throw cause; // not even a TLS handshake now: the first error says why
  }
  const where = serverKey(setup.host, setup.port);
  if (!setup.interactive) {
    throw new TrustError(
      "certificate_untrusted",
      `${sanitize(reason)}; the certificate has SHA-256 fingerprint ${seen.fingerprint}: if that ` +
        `is the server's (chat serve prints it), connect once with --trust-fingerprint ` +
        `${seen.fingerprint} to trust it from then on`,
      { cause },
    );
  }
  setup.warn(firstUseNotice(where, seen, reason));
  const keep = setup.known === null
    ? "for this session (there is no config folder to remember it in)"
    : `and remember it in ${setup.known.path}`;
  const answer = await setup.ask(`Trust this certificate ${keep}? (yes/no) `);
  if (!/^y(es)?$/i.test(answer.trim())) {
    throw new TrustError("not_trusted", `the certificate of ${where} was not trusted`);
  }
  return seen.fingerprint;
}

/** Remembers the fingerprint for the server; a failure to write is a warning only. */
async function remember(setup: TrustSetup, fingerprint: string): Promise<void> {
  const where = serverKey(setup.host, setup.port);
  if (setup.known === null) {
    setup.warn(
      `chat connect: no config folder (XDG_CONFIG_HOME, HOME or APPDATA): the certificate of ` +
        `${where} is trusted for this session only`,
    );
    return;
  }
  try {
    const result = await setup.known.remember(setup.host, setup.port, fingerprint);
    if (!result.changed) return;
    setup.warn(
      result.replaced === undefined
        ? `chat connect: the certificate of ${where} (SHA-256 ${fingerprint}) is trusted from ` +
          `now on; remembered in ${setup.known.path}`
        : `chat connect: the certificate of ${where} trusted before (SHA-256 ${result.replaced}) ` +
          `is replaced by SHA-256 ${fingerprint} in ${setup.known.path}`,
    );
  } catch (err) {
    setup.warn(`chat connect: could not remember the certificate of ${where}: ${describe(err)}`);
  }
}

function firstUseNotice(where: string, seen: PresentedCertificate, reason: string): string {
  const names = seen.subject === undefined ? [] : [
    `  certificate: CN=${sanitize(seen.subject)}${
      seen.issuer === undefined ? "" : `, issued by CN=${sanitize(seen.issuer)}`
    }`,
  ];
  return [
    `The server ${where} presents a certificate that no trusted authority vouches for`,
    `(${sanitize(reason)}).`,
    ...names,
    `  SHA-256 fingerprint: ${seen.fingerprint}`,
    "Compare it with the fingerprint chat serve printed on the server, over a channel you trust.",
  ].join("\n");
}

function changedWarning(
  where: string,
  entry: KnownServer,
  presented: string,
  file: string,
): string {
  const bar = "@".repeat(72);
  return [
    bar,
    `@  WARNING: THE CERTIFICATE OF ${where} HAS CHANGED!`,
    bar,
    "Someone may be intercepting this connection (a machine in the middle), or the server",
    "has a new certificate. chat connect does not connect.",
    `  trusted (${file} line ${entry.line}):`,
    `    SHA-256 ${entry.fingerprint}`,
    "  presented now:",
    `    SHA-256 ${presented}`,
    "If the server's operator confirms the new fingerprint, connect once with",
    `  --trust-fingerprint ${presented}`,
    `or delete line ${entry.line} of ${file}.`,
  ].join("\n");
}

/** Everything the trust decision for several addresses needs. */
export interface TrustListSetup extends Omit<TrustSetup, "host" | "port"> {
  /** The addresses, in the order they are tried. */
  servers: readonly ServerAddress[];
}

/**
 * {@linkcode connectTrusting} for a server list: decides the TLS setting of each address
 * (see above), connects through `connect` with one setting per address, in the order of
 * `servers`, and remembers the certificates newly trusted. `addressOf` tells which
 * address the connection went to (a `--trust-fingerprint` is remembered for it). One
 * address is exactly {@linkcode connectTrusting}.
 *
 * @throws {TrustError} when a certificate is refused; otherwise what `connect` throws.
 */
export async function connectTrustingAll<T>(
  setup: TrustListSetup,
  connect: (tls: TlsChoice[]) => Promise<T>,
  addressOf: (connected: T) => ServerAddress,
): Promise<T> {
  const at = (address: ServerAddress): TrustSetup => ({
    ...setup,
    host: address.host,
    port: address.port,
  });
  if (setup.servers.length === 1) {
    return await connectTrusting(at(setup.servers[0]!), (tls) => connect([tls]));
  }
  if (setup.caCerts !== undefined) {
    const caCerts = setup.caCerts;
    return await connect(setup.servers.map(() => ({ caCerts })));
  }
  if (setup.fingerprint !== undefined) {
    const fingerprint = setup.fingerprint;
    const connected = await connect(setup.servers.map(() => ({ fingerprint })));
    await remember(at(addressOf(connected)), fingerprint);
    return connected;
  }
  const choices: TlsChoice[] = [];
  const firstUse = new Map<number, string>();
  const accepted = new Set<string>();
  for (const [i, address] of setup.servers.entries()) {
    const one = at(address);
    const where = formatServerAddress(address);
    const entry = await setup.known?.lookup(address.host, address.port);
    if (entry !== undefined) {
      try {
        const channel = await dialPinned({ ...address, fingerprint: entry.fingerprint });
        channel.close();
      } catch (err) {
        const mismatch = mismatchOf(err);
        if (mismatch !== undefined) {
          const presented = mismatch.presented ?? "(none)";
          setup.warn(
            changedWarning(
              serverKey(address.host, address.port),
              entry,
              presented,
              setup.known!.path,
            ),
          );
          throw new TrustError(
            "certificate_changed",
            `refusing to connect to ${where}: its certificate is not the one trusted before (see above)`,
            { cause: err },
          );
        }
      }
      choices.push({ fingerprint: entry.fingerprint });
      continue;
    }
    let pinned: string | null = null;
    try {
      const conn = await dial({ ...address, tls: true });
      conn.close();
    } catch (err) {
      if (isHandshakeFailure(err)) {
        const seen = await probeCertificate(address).catch(() => null);
        pinned = seen !== null && accepted.has(seen.fingerprint)
          ? seen.fingerprint // the same certificate as an address trusted just before
          : await trustOnFirstUse(one, `TLS with ${where} failed: ${describe(err)}`, err);
      }
      // Not reachable now: checked against the system's CAs when it is tried.
    }
    if (pinned === null) {
      choices.push(true);
    } else {
      accepted.add(pinned);
      firstUse.set(i, pinned);
      choices.push({ fingerprint: pinned });
    }
  }
  const connected = await connect(choices);
  for (const [i, fingerprint] of firstUse) await remember(at(setup.servers[i]!), fingerprint);
  return connected;
}
