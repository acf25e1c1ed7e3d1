/**
 * Ports for tests that restart a server on the same port. A port picked by the system
 * (port 0) comes from the ephemeral range, from which outgoing connections also take
 * their local ports: another test's connection may hold it by the time the server is
 * restarted. These ports lie below every common ephemeral range (Linux 32768–60999,
 * macOS and Windows 49152–65535), so once a server has one, it can have it again.
 *
 * @module
 */

const LOW = 20_000;
const HIGH = 32_000;

/**
 * Calls `start` with random ports from 20000 to 31999 until one works (it throws when
 * the port is taken), at most `attempts` times.
 *
 * @example
 * ```ts ignore
 * import { onFreePort } from "./ports.ts";
 * const server = await onFreePort((port) => testServer({ port }));
 * ```
 */
export async function onFreePort<T>(
  start: (port: number) => Promise<T>,
  attempts = 20,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    try {
      return await start(port);
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
  }
}
