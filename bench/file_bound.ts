/**
 * What the machine allows a file transfer, from figures of the same run: a lower bound on
 * its time, made of the raw loopback copy's measured work and the per-byte work the
 * transfer adds (SHA-256 for a transfer through the server, ChaCha20-Poly1305 for peer to
 * peer), spread at best over the machine's cores.
 *
 * Each process of a transfer is given the least work it cannot avoid:
 *
 * - through the server: the sender reads and sends every byte as the raw sender does and
 *   hashes it; the server receives and stores every byte as the raw receiver does and sends
 *   it as the raw sender does; the receiver receives and stores it as the raw receiver does
 *   and hashes it (integrity is end to end: the server hashes nothing);
 * - peer to peer: the sender as the raw sender, and seals every byte; the receiver as the
 *   raw receiver, and opens every byte.
 *
 * The transfer then takes at least the longest of: the raw copy's own time, any one
 * process's work (a process's bytes go through one thread), and all the work divided by
 * the cores. Protocol, framing and waits cost nothing in this bound, so no transfer reaches
 * it; a goal above it cannot be met on this machine.
 *
 * ```ts
 * import { peerBound } from "./file_bound.ts";
 * const raw = { ms: 124, cpuMs: { sender: 90, receiver: 90 } };
 * const costs = { sha256: 0.65, seal: 0.65, open: 0.65 };
 * peerBound(raw, 128 * 1024 * 1024, costs, 2).ratio; // 0.70: at best 70% of raw
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { recordAead } from "../peer/record_aead_choice.ts";

/** Nanoseconds per byte of the work a transfer adds, measured as the transfers do it. */
export interface ByteCosts {
  /** SHA-256 (`node:crypto`, 512 KiB updates: a file chunk). */
  sha256: number;
  /**
   * ChaCha20-Poly1305 sealing in 1 MiB records, through the process's `recordAead` as the
   * session does (OpenSSL through FFI when allowed and present, else `node:crypto`).
   */
  seal: number;
  /** ChaCha20-Poly1305 opening, the tag checked. */
  open: number;
}

/** The raw copy's figures the bound is built on (a `TransferFigure` of `files.ts`). */
export interface RawFigure {
  /** Wall time of the copy, ms. */
  ms: number;
  /** CPU ms of each end: `sender` and `receiver`. */
  cpuMs: Record<string, number>;
}

/** A bound on a transfer. */
export interface TransferBound {
  /** The least time the transfer can take here, ms. */
  ms: number;
  /** Raw copy's time ÷ that: the most of raw throughput the transfer can reach. */
  ratio: number;
  /** The least CPU ms of each process. */
  processMs: Record<string, number>;
}

/**
 * The bound on a transfer whose processes need `processMs` of CPU each, against a raw copy
 * of `rawMs`, on `cores` cores.
 *
 * @example
 * ```ts
 * import { boundOf } from "./file_bound.ts";
 * boundOf({ a: 100, b: 100, c: 100 }, 50, 2).ms; // 150: three processes' work on two cores
 * ```
 */
export function boundOf(
  processMs: Record<string, number>,
  rawMs: number,
  cores: number,
): TransferBound {
  const work = Object.values(processMs);
  const total = work.reduce((a, b) => a + b, 0);
  const ms = Math.max(rawMs, ...work, total / Math.max(1, cores));
  return { ms, ratio: ms > 0 ? Math.round((rawMs / ms) * 1000) / 1000 : 0, processMs };
}

/** The raw copy's CPU ms of its `end`, or 0 when it was not measured. */
function rawEnd(raw: RawFigure, end: "sender" | "receiver"): number {
  return raw.cpuMs[end] ?? 0;
}

/** The bound on a transfer of `bytes` through the server (store and forward, hashed end to end). */
export function relayBound(
  raw: RawFigure,
  bytes: number,
  costs: ByteCosts,
  cores: number,
): TransferBound {
  const hash = (bytes * costs.sha256) / 1e6;
  const send = rawEnd(raw, "sender");
  const receive = rawEnd(raw, "receiver");
  return boundOf(
    { sender: send + hash, server: receive + send, receiver: receive + hash },
    raw.ms,
    cores,
  );
}

/** The bound on a transfer of `bytes` peer to peer, encrypted. */
export function peerBound(
  raw: RawFigure,
  bytes: number,
  costs: ByteCosts,
  cores: number,
): TransferBound {
  return boundOf(
    {
      sender: rawEnd(raw, "sender") + (bytes * costs.seal) / 1e6,
      receiver: rawEnd(raw, "receiver") + (bytes * costs.open) / 1e6,
    },
    raw.ms,
    cores,
  );
}

/** Plaintext bytes per peer record. */
const RECORD = 1024 * 1024;
/** Bytes per hash update: a file chunk. */
const CHUNK = 512 * 1024;

/**
 * Measures {@linkcode ByteCosts} over `bytes` (rounded up to whole records), the fastest
 * of `rounds` passes each (a bound takes the least the work can cost).
 */
export function measureByteCosts(bytes = 64 * 1024 * 1024, rounds = 3): ByteCosts {
  const records = Math.max(1, Math.ceil(bytes / RECORD));
  const total = records * RECORD;
  const plain = new Uint8Array(RECORD);
  crypto.getRandomValues(plain.subarray(0, 65536));
  const sealed = new Uint8Array(RECORD);
  const opened = new Uint8Array(RECORD);
  const key = new Uint8Array(32);
  const iv = (n: number) => {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(8, n);
    return nonce;
  };
  const timed = (work: () => void) => {
    let best = Infinity;
    for (let r = 0; r < rounds; r++) {
      const start = performance.now();
      work();
      best = Math.min(best, performance.now() - start);
    }
    return (best * 1e6) / total;
  };
  const sha256 = timed(() => {
    const hash = createHash("sha256");
    for (let i = 0; i < records; i++) {
      for (let at = 0; at < RECORD; at += CHUNK) hash.update(plain.subarray(at, at + CHUNK));
    }
    hash.digest();
  });
  const aad = new Uint8Array(4);
  const tag = new Uint8Array(16);
  const sealer = recordAead().sealer(key);
  const seal = timed(() => {
    for (let i = 0; i < records; i++) {
      sealer.begin(iv(i), aad, RECORD);
      sealer.update(plain, sealed);
      sealer.finish(tag);
    }
  });
  const opener = recordAead().opener(key);
  const open = timed(() => {
    for (let i = 0; i < records; i++) {
      opener.begin(iv(records - 1), aad, RECORD);
      opener.update(sealed, opened);
      if (!opener.finish(tag)) throw new Error("the sealed record failed authentication");
    }
  });
  return { sha256, seal, open };
}
