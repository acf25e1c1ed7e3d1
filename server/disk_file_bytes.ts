/**
 * The embedded {@linkcode FileBytes}: files in the server's file folder, `<id>.part` while
 * uploading, renamed `<id>.file` once complete, mode `0600`. Only this server writes them:
 * its readers are woken by its writer ({@linkcode FileBytes.pollMs} is null).
 *
 * Dropped bytes are renamed `<id>.<n>.gone` and deleted afterwards
 * ({@linkcode DiskFileBytes.purge}, once the file's record is removed): deleting a large
 * file takes a while (its pages and blocks are freed: 40-50 ms for 128 MiB here), a
 * recipient's `file_done` waits for the drop, and a commit's sync that ran meanwhile
 * would wait for the deletion too (one journal on ext4). Leftovers of a crash are deleted
 * with the orphans at start; {@linkcode DiskFileBytes.close} waits for the deletions.
 *
 * An upload is synced in the background as it is written (every
 * {@linkcode BACKGROUND_SYNC_BYTES}, `background_sync.ts`), so that the sync that makes
 * it durable before its last chunk is acknowledged has only the last bytes left: for
 * 128 MiB that sync took 150-200 ms, and the recipient's own final sync waited behind it.
 *
 * A reader reading bytes that an upload open here wrote within its last
 * {@linkcode CACHED_READ_BYTES} (a recipient a little behind the upload) reads them with a
 * synchronous read: they were just written, so they are in the page cache, and the copy
 * costs less than the asynchronous read's round trip to another thread (its handle
 * duplicated, a buffer allocated there and copied again). Other bytes (an upload ended or
 * written elsewhere, or long ago) are read asynchronously: a read from the disk itself
 * must not stop the server's thread.
 *
 * @module
 */

import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { BACKGROUND_SYNC_BYTES, BackgroundSync } from "../transport/background_sync.ts";
import { readFull, writeFull } from "../transport/file_io.ts";
import { FreeSpace } from "./disk_space.ts";
import type { FileBytes, FileBytesReader, FileBytesWriter } from "./file_bytes.ts";
import { PRIVATE_FILE_MODE, tighten } from "./file_modes.ts";
import { StoreError } from "./store.ts";

const log = getLogger(["chat", "server", "files"]);

/**
 * How far behind the end an upload open here has written a reader may be and still read
 * synchronously (see the module documentation): 64 MiB, four background syncs.
 */
export const CACHED_READ_BYTES: number = 64 * 1024 * 1024;

/**
 * Held files' bytes in a folder.
 *
 * @example
 * ```ts ignore
 * import { DiskFileBytes } from "./disk_file_bytes.ts";
 * const bytes = new DiskFileBytes("./chat-data/files");
 * const writer = await bytes.openWriter(7, 5);
 * await writer.append(new TextEncoder().encode("hello"));
 * writer.close();
 * await bytes.complete(7, 5); // 7.part -> 7.file
 * ```
 */
export class DiskFileBytes implements FileBytes {
  /** The folder (it must exist). */
  readonly dir: string;
  readonly pollMs: null = null;
  readonly free: FreeSpace;
  /** Dropped bytes not being deleted yet (their `.gone` paths). */
  #dropped: string[] = [];
  /** Deletions of dropped bytes under way. */
  readonly #deleting = new Set<Promise<void>>();
  /** Numbers the `.gone` names, so that two drops of one id never share one. */
  #drops = 0;
  readonly #syncEvery: number;
  /** Background syncs of writers closed while they ran: their handles close when they end. */
  readonly #closingSyncs = new Set<Promise<void>>();
  /** The uploads open here, by file id: the bytes they wrote last are in the page cache. */
  readonly #writers = new Map<number, DiskWriter>();
  readonly #cachedReadBytes: number;
  #syncReadBytes = 0;

  /**
   * Keeps bytes in `dir`, which must exist; an upload starts a sync in the background
   * every `options.backgroundSyncBytes` it writes ({@linkcode BACKGROUND_SYNC_BYTES});
   * a reader reads synchronously the bytes an upload open here wrote within its last
   * `options.cachedReadBytes` ({@linkcode CACHED_READ_BYTES}).
   */
  constructor(
    dir: string,
    options: { backgroundSyncBytes?: number; cachedReadBytes?: number } = {},
  ) {
    this.dir = dir;
    this.free = new FreeSpace(dir);
    this.#syncEvery = options.backgroundSyncBytes ?? BACKGROUND_SYNC_BYTES;
    this.#cachedReadBytes = options.cachedReadBytes ?? CACHED_READ_BYTES;
  }

  /**
   * Bytes its readers read synchronously so far, as just written by an upload open here
   * (the rest were read asynchronously).
   */
  get syncReadBytes(): number {
    return this.#syncReadBytes;
  }

  get where(): string {
    return this.dir;
  }

  /** The path of file `id`'s bytes: `<id>.file` once complete, `<id>.part` before. */
  path(id: number, complete: boolean): string {
    return join(this.dir, `${id}.${complete ? "file" : "part"}`);
  }

  async openWriter(id: number, maxSize: number): Promise<DiskWriter | CompletedWriter> {
    const completed = await this.#completedSize(id);
    if (completed !== null && completed === maxSize) return new CompletedWriter(id, completed);
    if (completed !== null && completed < maxSize) {
      // Marked complete with bytes missing (its record does not say "uploaded": the folder
      // was altered, or another writer's bytes): not complete, appended to from its end.
      log.warn("file #{id}: {completed} of its {size} bytes were marked complete: resuming", {
        id,
        completed,
        size: maxSize,
      });
      await Deno.rename(this.path(id, true), this.path(id, false));
    }
    const path = this.path(id, false);
    const file = await Deno.open(path, {
      read: true,
      write: true,
      create: true,
      mode: PRIVATE_FILE_MODE,
    });
    try {
      let size = (await file.stat()).size;
      if (size > maxSize) {
        await file.truncate(0);
        size = 0;
      }
      await file.seek(size, Deno.SeekMode.Start);
      const writer: DiskWriter = new DiskWriter(
        file,
        size,
        new BackgroundSync(path, this.#syncEvery),
        (closing) => {
          if (this.#writers.get(id) === writer) this.#writers.delete(id);
          this.#closingSyncs.add(closing);
          closing.finally(() => this.#closingSyncs.delete(closing));
        },
      );
      this.#writers.set(id, writer);
      return writer;
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * Renames `<id>.part` to `<id>.file` when it holds `size` bytes (its writer synced
   * them). Completing bytes completed already (`<id>.file` of `size` bytes without
   * `<id>.part`) changes nothing.
   */
  async complete(id: number, size: number): Promise<void> {
    let held: number | null;
    try {
      held = (await Deno.stat(this.path(id, false))).size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      held = await this.#completedSize(id);
      if (held === null) throw err;
      if (held === size) return;
    }
    if (held !== size) {
      throw new StoreError("conflict", `file #${id} holds ${held} of its ${size} bytes`);
    }
    await Deno.rename(this.path(id, false), this.path(id, true));
  }

  /**
   * The size of file `id`'s bytes when they are complete (`<id>.file`, and no `<id>.part`),
   * else null. A server that stopped between renaming them and recording the file
   * uploaded finds them so: a writer then holds them all and appends nothing.
   */
  async #completedSize(id: number): Promise<number | null> {
    try {
      await Deno.stat(this.path(id, false));
      return null;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    try {
      return (await Deno.stat(this.path(id, true))).size;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }

  async openReader(id: number, complete: boolean): Promise<FileBytesReader | null> {
    const paths = [this.path(id, complete)];
    // Completed meanwhile (renamed once complete, maybe before the record says so), or
    // dropped.
    if (!complete) paths.push(this.path(id, true));
    for (const path of paths) {
      try {
        return new DiskReader(await Deno.open(path, { read: true }), (offset, length) => {
          const written = this.#writers.get(id)?.size;
          const cached = written !== undefined && offset + length <= written &&
            written - offset <= this.#cachedReadBytes;
          if (cached) this.#syncReadBytes += length;
          return cached;
        });
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    return null;
  }

  async size(id: number): Promise<number | null> {
    try {
      return (await Deno.stat(this.path(id, false))).size;
    } catch {
      // Completed meanwhile: the `.part` file is renamed once complete.
    }
    try {
      return (await Deno.stat(this.path(id, true))).size;
    } catch {
      return null;
    }
  }

  /**
   * Renames the bytes out of the way (no reader opens them from then on); they are
   * deleted by {@linkcode DiskFileBytes.purge}.
   */
  async remove(id: number): Promise<void> {
    for (const complete of [false, true]) {
      const gone = join(this.dir, `${id}.${++this.#drops}.gone`);
      try {
        await Deno.rename(this.path(id, complete), gone);
        this.#dropped.push(gone);
      } catch {
        // not there (never written, completed, or dropped already)
      }
    }
  }

  /** Starts deleting the bytes dropped so far, in the background. */
  purge(): void {
    for (const gone of this.#dropped) {
      const deleting = Deno.remove(gone).catch(() => {}).finally(() =>
        this.#deleting.delete(deleting)
      );
      this.#deleting.add(deleting);
    }
    this.#dropped = [];
  }

  /** Also tightens to `0600` the files of known ids that others could read. */
  async removeOrphans(known: () => Promise<ReadonlySet<number>>): Promise<void> {
    const entries: { name: string; id: number }[] = [];
    for await (const entry of Deno.readDir(this.dir)) {
      const match = /^(\d+)\.(part|file)$/.exec(entry.name);
      if (match !== null) entries.push({ name: entry.name, id: Number(match[1]) });
      // Dropped, not deleted yet (a crash came first): nothing names them.
      else if (/^\d+\.\d+\.gone$/.test(entry.name)) entries.push({ name: entry.name, id: -1 });
    }
    const ids = await known();
    let tightened = 0;
    for (const { name, id } of entries) {
      const path = join(this.dir, name);
      if (ids.has(id)) {
        if (tighten(path, PRIVATE_FILE_MODE, { quiet: true })) tightened++;
        continue;
      }
      log.info("deleting {name}: no record names it", { name });
      await Deno.remove(path).catch(() => {});
    }
    if (tightened > 0) {
      log.warn("{count} held files in {dir} were readable by others: tightened to 0600", {
        count: tightened,
        dir: this.dir,
      });
    }
  }

  async used(): Promise<number> {
    let total = 0;
    for await (const entry of Deno.readDir(this.dir)) {
      if (!/^\d+\.(part|file)$/.test(entry.name)) continue;
      total += await Deno.stat(join(this.dir, entry.name)).then((s) => s.size, () => 0);
    }
    return total;
  }

  /** Deletes the bytes dropped so far; resolves once their space is freed. */
  async freed(): Promise<void> {
    this.purge();
    while (this.#deleting.size > 0) await Promise.all(this.#deleting);
  }

  /** Waits for the deletions of dropped bytes and the background syncs under way. */
  async close(): Promise<void> {
    await Promise.all(this.#closingSyncs);
    await this.freed();
  }
}

/** A writer appending to `<id>.part`, synced in the background as it grows. */
export class DiskWriter implements FileBytesWriter {
  readonly #file: Deno.FsFile;
  readonly #syncs: BackgroundSync;
  readonly #closing: (syncs: Promise<void>) => void;
  #size: number;

  /** `closing` is told of the background syncs' end once the writer is closed. */
  constructor(
    file: Deno.FsFile,
    size: number,
    syncs: BackgroundSync,
    closing: (syncs: Promise<void>) => void,
  ) {
    this.#file = file;
    this.#size = size;
    this.#syncs = syncs;
    this.#closing = closing;
  }

  get size(): number {
    return this.#size;
  }

  /** Syncs started in the background so far. */
  get backgroundSyncs(): number {
    return this.#syncs.started;
  }

  async append(bytes: Uint8Array): Promise<void> {
    await writeFull(this.#file, bytes);
    this.#size += bytes.length;
    this.#syncs.wrote(bytes.length);
  }

  async sync(): Promise<void> {
    // A failed sync rejects: the upload's last chunk is not acknowledged as stored.
    await this.#syncs.syncFinally(this.#file);
  }

  close(): void {
    this.#closing(this.#syncs.close());
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}

/** A writer on complete bytes (`<id>.file`): they are all held; appending is refused. */
export class CompletedWriter implements FileBytesWriter {
  readonly #id: number;
  readonly size: number;

  constructor(id: number, size: number) {
    this.#id = id;
    this.size = size;
  }

  append(): Promise<void> {
    return Promise.reject(new StoreError("conflict", `file #${this.#id} is complete`));
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {}
}

class DiskReader implements FileBytesReader {
  readonly #file: Deno.FsFile;
  /** Whether `length` bytes at `offset` were just written here (counted as read so if so). */
  readonly #cached: (offset: number, length: number) => boolean;
  /** Where the next read of the file starts (-1: unknown). */
  #position = -1;

  constructor(file: Deno.FsFile, cached: (offset: number, length: number) => boolean) {
    this.#file = file;
    this.#cached = cached;
  }

  read(offset: number, into: Uint8Array): Promise<number> {
    if (!this.#cached(offset, into.length)) return this.#readAsync(offset, into);
    try {
      if (this.#position !== offset) this.#file.seekSync(offset, Deno.SeekMode.Start);
      this.#position = offset;
      let n = 0;
      while (n < into.length) {
        const got = this.#file.readSync(into.subarray(n));
        if (got === null) break;
        n += got;
      }
      this.#position += n;
      return Promise.resolve(n);
    } catch (err) {
      this.#position = -1;
      return Promise.reject(err);
    }
  }

  async #readAsync(offset: number, into: Uint8Array): Promise<number> {
    if (this.#position !== offset) await this.#file.seek(offset, Deno.SeekMode.Start);
    this.#position = offset;
    const n = await readFull(this.#file, into);
    this.#position += n;
    return n;
  }

  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}
