/**
 * Syncing a file's bytes to its storage, where the storage can: a sync the file system
 * does not do (a pipe, `/dev/null`, some network or FUSE file systems answer `EINVAL`,
 * `ENOTSUP` or `ENOSYS`) has nothing to wait for and is not an error; any other failure
 * (`EIO`, `ENOSPC`, a closed handle) is, so the bytes are not acknowledged as stored.
 *
 * @example
 * ```ts
 * import { syncIfSupported } from "./sync_file.ts";
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * await file.write(new Uint8Array([1, 2, 3]));
 * await syncIfSupported(() => file.syncData());
 * await Deno.remove(path);
 * ```
 *
 * @module
 */

/** The error codes of a sync the file system does not do. */
const UNSUPPORTED_SYNC_CODES: ReadonlySet<string> = new Set([
  "EINVAL",
  "ENOTSUP",
  "EOPNOTSUPP",
  "ENOSYS",
]);

/** Whether `err`, thrown by a sync, says the file system does not sync (nothing lost). */
export function isSyncUnsupported(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNSUPPORTED_SYNC_CODES.has(code);
}

/**
 * Runs `sync` (a file's `sync` or `syncData`); resolves when it did, or when the file
 * system does not sync; rejects with its error otherwise.
 */
export async function syncIfSupported(sync: () => Promise<void>): Promise<void> {
  try {
    await sync();
  } catch (err) {
    if (!isSyncUnsupported(err)) throw err;
  }
}
