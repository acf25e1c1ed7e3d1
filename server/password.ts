/**
 * Password hashing with scrypt (`node:crypto`).
 *
 * A hash is stored as `scrypt$N$r$p$saltB64$hashB64`: the cost parameters travel with
 * the hash, so raising the cost later leaves older hashes verifiable. Passwords are
 * normalized to Unicode NFC first, so that the same password typed on different systems
 * matches.
 *
 * A stored hash that is not of this form is a corrupt database, not a wrong password:
 * {@linkcode verifyPassword} throws a {@linkcode PasswordHashError} for it rather than
 * answering `false`, so that the operator learns of it instead of the user being locked
 * out in silence.
 *
 * @module
 */

import { randomBytes, scrypt, type ScryptOptions, timingSafeEqual } from "node:crypto";

/** Default scrypt cost N (2^15): about 50–150 ms and 32 MiB per hash. */
export const DEFAULT_PASSWORD_COST = 1 << 15;
/** Largest accepted scrypt cost N (2^20: 1 GiB of memory with r = 8). */
export const MAX_PASSWORD_COST = 1 << 20;

const BLOCK_SIZE = 8;
const PARALLELISM = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const MAX_BLOCK_SIZE = 32;
const MAX_PARALLELISM = 16;
const MAX_KEY_BYTES = 128;

/** Stable codes of {@linkcode PasswordHashError}. */
export type PasswordHashErrorCode = "bad_cost" | "malformed_hash";

/**
 * A bad cost parameter (`bad_cost`) or a stored hash that cannot be read
 * (`malformed_hash`).
 */
export class PasswordHashError extends Error {
  /** The stable, machine-readable reason. */
  readonly code: PasswordHashErrorCode;

  /** Creates the error. */
  constructor(code: PasswordHashErrorCode, message: string) {
    super(message);
    this.name = "PasswordHashError";
    this.code = code;
  }
}

/** Options of {@linkcode hashPassword}. */
export interface HashPasswordOptions {
  /** scrypt cost N: a power of two from 2 to {@linkcode MAX_PASSWORD_COST}. Default 2^15. */
  cost?: number;
}

/**
 * Hashes a password with a fresh random salt.
 *
 * @throws {PasswordHashError} `bad_cost` when `cost` is not a power of two in range.
 * @example
 * ```ts
 * import { hashPassword, verifyPassword } from "./password.ts";
 * const encoded = await hashPassword("correct horse", { cost: 1 << 10 });
 * await verifyPassword("correct horse", encoded); // true
 * ```
 */
export async function hashPassword(
  password: string,
  options: HashPasswordOptions = {},
): Promise<string> {
  const cost = options.cost ?? DEFAULT_PASSWORD_COST;
  if (!isPowerOfTwo(cost) || cost > MAX_PASSWORD_COST) {
    throw new PasswordHashError(
      "bad_cost",
      `password cost must be a power of two from 2 to ${MAX_PASSWORD_COST}, got ${cost}`,
    );
  }
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, cost, BLOCK_SIZE, PARALLELISM, KEY_BYTES);
  return [
    "scrypt",
    cost,
    BLOCK_SIZE,
    PARALLELISM,
    salt.toString("base64"),
    key.toString("base64"),
  ].join("$");
}

/**
 * Checks a password against an encoded hash from {@linkcode hashPassword}, in constant
 * time with respect to the hash.
 *
 * @throws {PasswordHashError} `malformed_hash` when `encoded` is not a readable hash
 * (wrong scheme, parameters out of range, bad base64): that is corrupt stored data.
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const { cost, blockSize, parallelism, salt, hash } = parseHash(encoded);
  const key = await derive(password, salt, cost, blockSize, parallelism, hash.length);
  return timingSafeEqual(key, hash);
}

interface ParsedHash {
  cost: number;
  blockSize: number;
  parallelism: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

function parseHash(encoded: string): ParsedHash {
  const bad = (why: string) =>
    new PasswordHashError("malformed_hash", `stored password hash is malformed: ${why}`);
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") {
    throw bad('expected "scrypt$N$r$p$salt$hash"');
  }
  const [cost, blockSize, parallelism] = parts.slice(1, 4).map((part) =>
    /^[1-9][0-9]{0,9}$/.test(part) ? Number(part) : NaN
  );
  if (!isPowerOfTwo(cost) || cost > MAX_PASSWORD_COST) throw bad(`cost N "${parts[1]}"`);
  if (!(blockSize >= 1 && blockSize <= MAX_BLOCK_SIZE)) throw bad(`block size r "${parts[2]}"`);
  if (!(parallelism >= 1 && parallelism <= MAX_PARALLELISM)) {
    throw bad(`parallelism p "${parts[3]}"`);
  }
  const salt = decodeBase64(parts[4]);
  const hash = decodeBase64(parts[5]);
  if (salt === null || salt.length === 0) throw bad("salt is not base64");
  if (hash === null || hash.length < 16 || hash.length > MAX_KEY_BYTES) {
    throw bad(`hash is not base64 of 16 to ${MAX_KEY_BYTES} bytes`);
  }
  return { cost, blockSize, parallelism, salt, hash };
}

function derive(
  password: string,
  salt: Uint8Array,
  cost: number,
  blockSize: number,
  parallelism: number,
  length: number,
): Promise<Buffer> {
  const options: ScryptOptions = {
    N: cost,
    r: blockSize,
    p: parallelism,
    // scrypt needs 128·N·r bytes for V plus 128·r·p for B; leave headroom.
    maxmem: 128 * cost * blockSize + 128 * blockSize * parallelism + (1 << 20),
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFC"), salt, length, options, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 2 && (n & (n - 1)) === 0;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(text: string): Uint8Array | null {
  if (!BASE64.test(text)) return null;
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
