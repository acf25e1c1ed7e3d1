/**
 * A server's file bytes (any {@linkcode FileBytes}, the real disk folder in tests) whose
 * next read, sync, size, remove, free-space measure, append or writer opening can be held back, to lay a chosen interleaving of an upload and a
 * read out on the server's one thread (no hook in the server: it is handed these bytes
 * as `ServerDeps.files`).
 *
 * @example
 * ```ts ignore
 * const bytes = new GatedFileBytes(new DiskFileBytes(dir));
 * const gate = bytes.holdNextRead();
 * // ... a file_read reaches the disk ...
 * await gate.reached; // the read is held there
 * gate.release();
 * ```
 *
 * @module
 */

import type { FileBytes, FileBytesReader, FileBytesWriter } from "../../server/file_bytes.ts";

/** One held operation: `reached` once it is held, `release` lets it go on. */
export interface Gate {
  /** Resolves once the operation is held. */
  readonly reached: Promise<void>;
  /** Lets the held operation (and the gate) go. */
  release(): void;
}

class OneGate implements Gate {
  readonly reached: Promise<void>;
  readonly #open: Promise<void>;
  #arrive!: () => void;
  #release!: () => void;

  constructor() {
    this.reached = new Promise((resolve) => this.#arrive = resolve);
    this.#open = new Promise((resolve) => this.#release = resolve);
  }

  /** Called by the held operation: waits until released. */
  pass(): Promise<void> {
    this.#arrive();
    return this.#open;
  }

  release(): void {
    this.#release();
  }
}

/** {@linkcode FileBytes} passed through to `inner`, with gates; see the module documentation. */
export class GatedFileBytes implements FileBytes {
  readonly #inner: FileBytes;
  #nextRead: OneGate | null = null;
  #nextSync: OneGate | null = null;
  #nextSize: OneGate | null = null;
  #nextRemove: OneGate | null = null;
  #nextFree: OneGate | null = null;
  #nextOpenWriter: OneGate | null = null;
  #nextComplete: OneGate | null = null;
  #nextAppend: OneGate | null = null;
  /** The byte count of every append, in order (the chunks as the server writes them). */
  readonly appends: number[] = [];

  constructor(inner: FileBytes) {
    this.#inner = inner;
  }

  /** Holds the next `read` of any reader until released. */
  holdNextRead(): Gate {
    return this.#nextRead = new OneGate();
  }

  /** Holds the next `sync` of any writer (an upload's last chunk being finished). */
  holdNextSync(): Gate {
    return this.#nextSync = new OneGate();
  }

  /** Holds the next `size` (before it measures: it sees what was written meanwhile). */
  holdNextSize(): Gate {
    return this.#nextSize = new OneGate();
  }

  /**
   * Holds the next `remove` once it has moved the bytes away (a drop under way: its
   * record not removed yet).
   */
  holdNextRemove(): Gate {
    return this.#nextRemove = new OneGate();
  }

  get where(): string {
    return this.#inner.where;
  }

  get pollMs(): number | null {
    return this.#inner.pollMs;
  }

  /** Holds the next measure of the free space (a chunk checks it before its write). */
  holdNextFree(): Gate {
    return this.#nextFree = new OneGate();
  }

  get free(): FileBytes["free"] {
    const inner = this.#inner.free;
    const bytes = async () => {
      const gate = this.#nextFree;
      this.#nextFree = null;
      await gate?.pass();
      return await inner.bytes();
    };
    return {
      bytes,
      get last() {
        return inner.last;
      },
      wrote: (n) => inner.wrote(n),
    };
  }

  /** Holds the next `append` of any writer before it writes (a chunk being written). */
  holdNextAppend(): Gate {
    return this.#nextAppend = new OneGate();
  }

  /** Holds the next `openWriter` before it opens anything (an upload being opened). */
  holdNextOpenWriter(): Gate {
    return this.#nextOpenWriter = new OneGate();
  }

  async openWriter(id: number, maxSize: number): Promise<FileBytesWriter> {
    const gate = this.#nextOpenWriter;
    this.#nextOpenWriter = null;
    await gate?.pass();
    const writer = await this.#inner.openWriter(id, maxSize);
    const sync = async () => {
      const gate = this.#nextSync;
      this.#nextSync = null;
      await gate?.pass();
      await writer.sync();
    };
    return {
      get size() {
        return writer.size;
      },
      append: async (bytes) => {
        const gate = this.#nextAppend;
        this.#nextAppend = null;
        await gate?.pass();
        this.appends.push(bytes.length);
        await writer.append(bytes);
      },
      sync,
      close: () => writer.close(),
    };
  }

  async openReader(id: number, complete: boolean): Promise<FileBytesReader | null> {
    const reader = await this.#inner.openReader(id, complete);
    if (reader === null) return null;
    const read = async (offset: number, into: Uint8Array) => {
      const gate = this.#nextRead;
      this.#nextRead = null;
      await gate?.pass();
      return await reader.read(offset, into);
    };
    return { read, close: () => reader.close() };
  }

  /** Holds the next `complete` before it marks anything (an upload's last chunk written). */
  holdNextComplete(): Gate {
    return this.#nextComplete = new OneGate();
  }

  async complete(id: number, size: number): Promise<void> {
    const gate = this.#nextComplete;
    this.#nextComplete = null;
    await gate?.pass();
    return await this.#inner.complete(id, size);
  }

  async size(id: number): Promise<number | null> {
    const gate = this.#nextSize;
    this.#nextSize = null;
    await gate?.pass();
    return await this.#inner.size(id);
  }

  async remove(id: number): Promise<void> {
    await this.#inner.remove(id);
    const gate = this.#nextRemove;
    this.#nextRemove = null;
    await gate?.pass();
  }

  removeOrphans(known: () => Promise<ReadonlySet<number>>): Promise<void> {
    return this.#inner.removeOrphans(known);
  }

  used(): Promise<number> {
    return this.#inner.used();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
