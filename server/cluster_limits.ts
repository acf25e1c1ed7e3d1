/**
 * The login limits of a server, held across the nodes of a cluster: the lockout after
 * wrong passwords ({@linkcode Lockout}), the failed-login throttle per address and the
 * registration budgets (per address and in all). Each node counts what it sees and
 * tells the others on the `limits` topic of the {@linkcode ClusterBus}; every node
 * applies every node's failures, successes and registrations to its own counters, so a
 * guesser spreading attempts over the nodes meets the same limits as on one server. A
 * failure or a registration is answered once the other nodes have applied it
 * ({@linkcode ClusterApplied}): the next attempt, on any node, meets it.
 *
 * On one server nobody else listens: the counters are the server's.
 *
 * @module
 */

import { ClusterApplied, type ClusterAppliedOptions } from "./cluster_applied.ts";
import type { ClusterBus, ClusterMessage } from "./cluster_bus.ts";
import type { ServerConfig } from "./config.ts";
import { Lockout } from "./lockout.ts";
import { KeyedBuckets, TokenBucket } from "./rate_limit.ts";

/** The bus topic of login limits. */
export const LIMITS_TOPIC = "limits";

type LimitEvent =
  | { t: "fail"; key: string; ip: string }
  | { t: "ok"; key: string; ip: string }
  | { t: "register"; ip: string };

/**
 * Login limits shared by the nodes.
 *
 * @example
 * ```ts
 * import { LocalClusterNetwork } from "./cluster_bus.ts";
 * import { LoginLimits } from "./cluster_limits.ts";
 * import { resolveServerConfig } from "./config.ts";
 * const network = new LocalClusterNetwork();
 * const config = resolveServerConfig();
 * const a = new LoginLimits(network.bus("a"), config, Date.now);
 * const b = new LoginLimits(network.bus("b"), config, Date.now);
 * await a.start();
 * await b.start();
 * for (let i = 0; i < 3; i++) await a.fail("ann", "10.0.0.9");
 * b.lockedMs("ann", "10.0.0.9") > 0; // true
 * ```
 */
export class LoginLimits {
  readonly #bus: ClusterBus;
  readonly #now: () => number;
  readonly #lockout: Lockout;
  readonly #loginFailures: KeyedBuckets;
  readonly #registrationsPerIp: KeyedBuckets;
  readonly #registrations: TokenBucket;
  readonly #events: ClusterApplied;
  #stop: (() => void) | undefined;

  /**
   * Limits from `config`, on the wall clock `now`; `applied` says how failures and
   * registrations wait for the other nodes (default: not at all).
   */
  constructor(
    bus: ClusterBus,
    config: ServerConfig,
    now: () => number,
    applied: ClusterAppliedOptions = {},
  ) {
    this.#bus = bus;
    this.#events = new ClusterApplied(bus, LIMITS_TOPIC, applied);
    this.#now = now;
    this.#lockout = new Lockout(config.blockDurationSec * 1000, config.lockoutScope);
    const perMinute = config.loginFailuresPerMinutePerIp;
    this.#loginFailures = new KeyedBuckets(perMinute / 60, perMinute);
    const perIp = config.registrationsPerMinutePerIp;
    this.#registrationsPerIp = new KeyedBuckets(perIp / 60, perIp);
    const all = config.registrationsPerMinute;
    this.#registrations = new TokenBucket(all / 60, all, now());
  }

  /** Listens to the other nodes. */
  async start(): Promise<void> {
    this.#stop = await this.#bus.listen(LIMITS_TOPIC, (message) => this.#receive(message));
  }

  /** Stops listening. */
  close(): void {
    this.#stop?.();
    this.#events.close();
  }

  /** Seconds before `ip` may try a login again after too many failures; 0 when it may. */
  throttledSeconds(ip: string): number {
    return this.#loginFailures.waitSeconds(ip, this.#now());
  }

  /** Milliseconds `key` stays locked for a login from `ip`; 0 when not locked. */
  lockedMs(key: string, ip: string): number {
    return this.#lockout.remainingMs(key, ip, this.#now());
  }

  /**
   * A wrong password for `key` from `ip`, here: resolves, once the other nodes counted it
   * too, to true when it locks `key`.
   */
  async fail(key: string, ip: string): Promise<boolean> {
    const locked = this.#apply({ t: "fail", key, ip });
    await this.#events.send({ t: "fail", key, ip } satisfies LimitEvent);
    return locked;
  }

  /** A login of `key` from `ip` succeeded here. */
  succeed(key: string, ip: string): void {
    this.#apply({ t: "ok", key, ip });
    this.#bus.send(LIMITS_TOPIC, { t: "ok", key, ip } satisfies LimitEvent);
  }

  /**
   * Takes a registration from `ip`'s budget and the cluster's; when either is spent,
   * takes nothing and returns the seconds to wait and whether `ip`'s was the one.
   * Resolves once the other nodes took it from theirs too.
   */
  async admitRegistration(ip: string): Promise<{ waitSeconds: number; fromIp: boolean } | null> {
    const now = this.#now();
    const fromIp = this.#registrationsPerIp.waitSeconds(ip, now);
    const inAll = this.#registrations.waitSeconds(1, now);
    if (fromIp > 0 || inAll > 0) {
      return { waitSeconds: Math.max(fromIp, inAll), fromIp: fromIp > 0 };
    }
    this.#apply({ t: "register", ip });
    await this.#events.send({ t: "register", ip } satisfies LimitEvent);
    return null;
  }

  #receive(message: ClusterMessage): void {
    if (message.from === this.#bus.nodeId || this.#events.receive(message)) return;
    this.#apply(message.data as LimitEvent);
    this.#events.applied(message);
  }

  #apply(event: LimitEvent): boolean {
    const now = this.#now();
    switch (event.t) {
      case "fail":
        this.#loginFailures.take(event.ip, now);
        return this.#lockout.fail(event.key, event.ip, now);
      case "ok":
        this.#lockout.succeed(event.key, event.ip);
        return false;
      case "register":
        this.#registrationsPerIp.take(event.ip, now);
        this.#registrations.take(1, now);
        return false;
    }
  }
}
