/**
 * TLS material for tests: a test CA and a server certificate for `127.0.0.1` and
 * `localhost` signed by it, and a second, self-signed server certificate for the same
 * names, read from `tests/fixtures/` (see its README for how they were made). Reading
 * them needs `--allow-read`.
 *
 * @example
 * ```ts ignore
 * import { ca, cert, key } from "../tests/helpers/tls.ts";
 * import { dial, listen } from "../transport/net.ts";
 * const listener = listen({ host: "127.0.0.1", port: 0, tls: { cert, key } });
 * const conn = await dial({ port: (listener.addr as Deno.NetAddr).port, tls: { caCerts: [ca] } });
 * ```
 *
 * @module
 */

function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url));
}

/** The server certificate (PEM), valid for `IP:127.0.0.1` and `DNS:localhost`. */
export const cert: string = fixture("server.pem");
/** The server certificate's private key (PEM, PKCS#8, P-256). */
export const key: string = fixture("server-key.pem");
/** The test CA certificate (PEM) that signed {@linkcode cert}; give it to `caCerts`. */
export const ca: string = fixture("ca.pem");
/**
 * A self-signed server certificate (PEM) for `IP:127.0.0.1` and `DNS:localhost`, no CA's:
 * another certificate than {@linkcode cert} for the same server, as after a change.
 */
export const selfSignedCert: string = fixture("self-signed.pem");
/** The private key of {@linkcode selfSignedCert} (PEM, PKCS#8, P-256). */
export const selfSignedKey: string = fixture("self-signed-key.pem");
