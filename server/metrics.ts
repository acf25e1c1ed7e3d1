/**
 * The server's counters, gauges and latency histograms, rendered in the Prometheus
 * text exposition format.
 *
 * Counters are plain numbers incremented where things happen (cheap on the hot path);
 * gauges are read when scraped.
 *
 * @module
 */

/** Upper bounds (seconds) of the store latency histogram's buckets. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** A latency histogram with fixed buckets. */
export class Histogram {
  /** Observations per bucket (not cumulative), plus one for +Inf. */
  readonly counts: number[] = new Array(LATENCY_BUCKETS.length + 1).fill(0);
  /** Sum of observations, in seconds. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** Records one observation, in seconds. */
  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }
}

/** Every counter the server keeps. */
export interface Counters {
  /** Connections accepted. */
  connectionsAccepted: number;
  /** Connections refused by a connection cap. */
  connectionsRefused: number;
  /** Successful logins. */
  logins: number;
  /** Logins refused: wrong password, locked, throttled. */
  authFailures: number;
  /** Requests received from logged-in sessions. */
  requests: number;
  /** Message requests (say, dm, broadcast) admitted by flood control. */
  messagesIn: number;
  /** Events delivered to sessions (one per receiving session). */
  deliveries: number;
  /** Bytes received from clients. */
  bytesIn: number;
  /** Bytes written to clients. */
  bytesOut: number;
  /** Slow consumers cut off (queue over its bound or a stalled write). */
  slowConsumerCutoffs: number;
  /** Requests refused by flood control. */
  rateLimited: number;
  /** Sessions disconnected for persistent flooding. */
  floodDisconnects: number;
  /** Connections closed for a malformed or oversized frame. */
  protocolErrors: number;
  /** Sessions logged out for idling. */
  idleTimeouts: number;
  /** File bytes received from senders and stored. */
  fileBytesStored: number;
  /** File bytes sent to recipients from memory (readers keeping up with an upload). */
  fileBytesSentFromMemory: number;
  /** File bytes sent to recipients read back from disk. */
  fileBytesSentFromDisk: number;
  /** Accepts that failed (out of descriptors, mostly) and were retried after a back-off. */
  acceptErrors: number;
  /** Connections closed because a frame did not finish arriving within the frame timeout. */
  frameTimeouts: number;
  /** Connections closed because their new frame would pass the partial-frame bound. */
  partialFramesRefused: number;
  /** TLS connections closed because their handshake failed or did not finish in time. */
  tlsHandshakeFailures: number;
  /** File and relay requests that waited for their session's file byte budget. */
  pacedRequests: number;
  /** Sessions and connections disconnected for producing nothing but errors. */
  errorDisconnects: number;
  /** Logins refused because the password hash queue was full. */
  passwordHashesRefused: number;
  /** Requests refused with `storage_full` (budget, free-space reserve or a full disk). */
  storageFull: number;
  /** Requests refused with `store_unavailable` (PostgreSQL unreachable or too slow). */
  storeUnavailable: number;
}

/** Values read when the metrics are scraped. */
export interface Gauges {
  /** Open connections. */
  connections: number;
  /** Logged-in sessions. */
  sessions: number;
  /** Accounts with at least one session. */
  onlineAccounts: number;
  /** Whether the server is draining (shutting down). */
  draining: boolean;
  /** Bytes held for incoming frames not complete yet. */
  partialFrameBytes?: number;
  /** Bytes free on the disk of the held files, when known. */
  diskFreeBytes?: number | null;
}

const COUNTER_HELP: Record<keyof Counters, [string, string]> = {
  connectionsAccepted: ["chat_connections_accepted_total", "Connections accepted."],
  connectionsRefused: ["chat_connections_refused_total", "Connections refused by a cap."],
  logins: ["chat_logins_total", "Successful logins."],
  authFailures: ["chat_auth_failures_total", "Refused logins (wrong password, locked, throttled)."],
  requests: ["chat_requests_total", "Requests from logged-in sessions."],
  messagesIn: ["chat_messages_in_total", "Message requests (say, dm, broadcast) admitted."],
  deliveries: ["chat_deliveries_total", "Events delivered to sessions."],
  bytesIn: ["chat_bytes_in_total", "Bytes received from clients."],
  bytesOut: ["chat_bytes_out_total", "Bytes written to clients."],
  slowConsumerCutoffs: ["chat_slow_consumer_cutoffs_total", "Slow consumers cut off."],
  rateLimited: ["chat_rate_limited_total", "Requests refused by flood control."],
  floodDisconnects: ["chat_flood_disconnects_total", "Sessions disconnected for flooding."],
  protocolErrors: ["chat_protocol_errors_total", "Connections closed for a malformed frame."],
  idleTimeouts: ["chat_idle_timeouts_total", "Sessions logged out for idling."],
  fileBytesStored: ["chat_file_bytes_stored_total", "File bytes received and stored."],
  fileBytesSentFromMemory: [
    "chat_file_bytes_sent_from_memory_total",
    "File bytes sent from memory to readers keeping up with the upload.",
  ],
  fileBytesSentFromDisk: [
    "chat_file_bytes_sent_from_disk_total",
    "File bytes sent to recipients, read back from disk.",
  ],
  acceptErrors: [
    "chat_accept_errors_total",
    "Failed accepts (out of file descriptors, mostly), retried after a back-off.",
  ],
  frameTimeouts: [
    "chat_frame_timeouts_total",
    "Connections closed for a frame not finished within the frame timeout.",
  ],
  partialFramesRefused: [
    "chat_partial_frames_refused_total",
    "Connections closed because the bytes held for unfinished frames were at their bound.",
  ],
  tlsHandshakeFailures: [
    "chat_tls_handshake_failures_total",
    "TLS connections closed: handshake failed or not finished in time.",
  ],
  pacedRequests: [
    "chat_paced_requests_total",
    "File and relay requests that waited for their session's file byte budget.",
  ],
  errorDisconnects: [
    "chat_error_disconnects_total",
    "Connections cut off for producing nothing but errors.",
  ],
  passwordHashesRefused: [
    "chat_password_hashes_refused_total",
    "Logins refused because the password hash queue was full.",
  ],
  storageFull: [
    "chat_storage_full_total",
    "Requests refused for want of storage (files budget, free-space reserve, full disk).",
  ],
  storeUnavailable: [
    "chat_store_unavailable_total",
    "Requests refused because the database (PostgreSQL) could not be reached.",
  ],
};

/**
 * The server's metrics.
 *
 * @example
 * ```ts
 * import { ServerMetrics } from "./metrics.ts";
 * const metrics = new ServerMetrics();
 * metrics.counters.logins++;
 * metrics.render({ connections: 1, sessions: 1, onlineAccounts: 1, draining: false });
 * ```
 */
export class ServerMetrics {
  /** The counters; increment them directly. */
  readonly counters: Counters = {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    logins: 0,
    authFailures: 0,
    requests: 0,
    messagesIn: 0,
    deliveries: 0,
    bytesIn: 0,
    bytesOut: 0,
    slowConsumerCutoffs: 0,
    rateLimited: 0,
    floodDisconnects: 0,
    protocolErrors: 0,
    idleTimeouts: 0,
    fileBytesStored: 0,
    fileBytesSentFromMemory: 0,
    fileBytesSentFromDisk: 0,
    acceptErrors: 0,
    frameTimeouts: 0,
    partialFramesRefused: 0,
    tlsHandshakeFailures: 0,
    pacedRequests: 0,
    errorDisconnects: 0,
    passwordHashesRefused: 0,
    storageFull: 0,
    storeUnavailable: 0,
  };
  /** Store call latency by operation name. */
  readonly storeLatency: Map<string, Histogram> = new Map();
  /** Gauges that parts of the server register, read when scraped, by metric name. */
  readonly #extraGauges = new Map<string, { help: string; read: () => number }>();

  /** Registers a gauge read when the metrics are scraped (e.g. `chat_password_hashes_running`). */
  addGauge(name: string, help: string, read: () => number): void {
    this.#extraGauges.set(name, { help, read });
  }

  /** Records the latency of one store call. */
  observeStore(op: string, seconds: number): void {
    let histogram = this.storeLatency.get(op);
    if (histogram === undefined) {
      histogram = new Histogram();
      this.storeLatency.set(op, histogram);
    }
    histogram.observe(seconds);
  }

  /** The Prometheus text exposition of every metric. */
  render(gauges: Gauges, extraBytes: { bytesIn: number; bytesOut: number } = {
    bytesIn: 0,
    bytesOut: 0,
  }): string {
    const lines: string[] = [];
    for (
      const [key, [name, help]] of Object.entries(COUNTER_HELP) as [keyof Counters, string[]][]
    ) {
      let value = this.counters[key];
      if (key === "bytesIn") value += extraBytes.bytesIn;
      if (key === "bytesOut") value += extraBytes.bytesOut;
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    }
    const gauge = (name: string, help: string, value: number) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    gauge("chat_connections", "Open connections.", gauges.connections);
    gauge("chat_sessions", "Logged-in sessions.", gauges.sessions);
    gauge("chat_online_accounts", "Accounts with at least one session.", gauges.onlineAccounts);
    gauge("chat_draining", "1 while the server drains before exiting.", gauges.draining ? 1 : 0);
    gauge(
      "chat_partial_frame_bytes",
      "Bytes held for incoming frames not complete yet.",
      gauges.partialFrameBytes ?? 0,
    );
    for (const [name, { help, read }] of this.#extraGauges) gauge(name, help, read());
    if (gauges.diskFreeBytes !== undefined && gauges.diskFreeBytes !== null) {
      gauge(
        "chat_disk_free_bytes",
        "Bytes free on the disk of the held files (uploads stop at --min-free-space).",
        gauges.diskFreeBytes,
      );
    }
    const name = "chat_store_seconds";
    lines.push(`# HELP ${name} Latency of storage calls.`, `# TYPE ${name} histogram`);
    for (const [op, histogram] of [...this.storeLatency].sort(([a], [b]) => a < b ? -1 : 1)) {
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += histogram.counts[i];
        lines.push(`${name}_bucket{op="${op}",le="${le}"} ${cumulative}`);
      });
      cumulative += histogram.counts[LATENCY_BUCKETS.length];
      lines.push(`${name}_bucket{op="${op}",le="+Inf"} ${cumulative}`);
      lines.push(`${name}_sum{op="${op}"} ${histogram.sum}`);
      lines.push(`${name}_count{op="${op}"} ${histogram.count}`);
    }
    return lines.join("\n") + "\n";
  }
}
