import assert from "node:assert/strict";
import { withTempDir } from "../tests/helpers/files.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  claimFreeName,
  FileIoError,
  FileSource,
  hashPrefix,
  IncomingFile,
  sha256File,
  sha256Started,
} from "./file_io.ts";

const encoder = new TextEncoder();

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function isCode(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof FileIoError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  };
}

Deno.test("FileSource hashes once and reads chunks, into a reused buffer too", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("0123456789".repeat(100_000));
    const path = join(dir, "a.txt");
    await Deno.writeFile(path, bytes);
    const seen: [number, number][] = [];
    await using source = await FileSource.open(path, (hashed, size) => seen.push([hashed, size]));
    assert.ok(seen.length >= 2, "a million bytes are hashed in several blocks");
    assert.deepEqual(seen.at(-1), [bytes.length, bytes.length]);
    assert.ok(
      seen.every(([hashed, size], i) => size === bytes.length && hashed > (seen[i - 1]?.[0] ?? 0)),
    );
    assert.equal(source.name, "a.txt");
    assert.equal(source.size, bytes.length);
    assert.equal(source.sha256, sha(bytes));
    assert.deepEqual(await sha256File(path), { sha256: sha(bytes), size: bytes.length });
    assert.deepEqual(await source.read(5, 10), bytes.subarray(5, 15));
    const buffer = new Uint8Array(4);
    const into = await source.read(999_998, 10, buffer);
    assert.deepEqual(into, bytes.subarray(999_998));
    assert.equal(into.buffer, buffer.buffer);
    assert.equal((await source.read(bytes.length, 10)).length, 0);
  });
});

Deno.test("FileSource refuses what is not a readable file", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(FileSource.open(join(dir, "missing")), isCode("not_a_file"));
    await assert.rejects(FileSource.open(dir), isCode("not_a_file"));
  });
});

Deno.test("IncomingFile writes to a .part file and renames it once the SHA-256 matches", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("hello, file");
    const incoming = await IncomingFile.open({
      dir: join(dir, "dl"),
      offeredName: "../../greeting.txt",
      size: bytes.length,
      sha256: sha(bytes),
    });
    assert.equal(
      incoming.partPath,
      join(dir, "dl", `greeting.txt.${sha(bytes).slice(0, 16)}.part`),
    );
    await incoming.write(0, bytes.subarray(0, 5));
    await incoming.write(0, bytes.subarray(0, 5)); // resent: skipped
    await assert.rejects(incoming.write(9, bytes.subarray(9)), isCode("bad_offset"));
    await incoming.write(3, bytes.subarray(3)); // overlaps: only the new part is written
    await assert.rejects(incoming.write(11, encoder.encode("!")), isCode("too_long"));
    assert.equal(incoming.complete, true);
    const path = await incoming.finish();
    assert.equal(path, join(dir, "dl", "greeting.txt"));
    assert.equal(await Deno.readTextFile(path), "hello, file");
    assert.deepEqual([...Deno.readDirSync(join(dir, "dl"))].map((e) => e.name), ["greeting.txt"]);
  });
});

Deno.test("IncomingFile resumes from its .part file and never overwrites", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("abcdefghijklmnopqrstuvwxyz");
    const init = { dir, offeredName: "abc.txt", size: bytes.length, sha256: sha(bytes) };
    await Deno.writeTextFile(join(dir, "abc.txt"), "already here");
    const first = await IncomingFile.open(init);
    await first.write(0, bytes.subarray(0, 10));
    await first.close();
    const second = await IncomingFile.open(init);
    assert.equal(second.offset, 10);
    await second.write(10, bytes.subarray(10));
    const path = await second.finish();
    assert.equal(path, join(dir, "abc (1).txt"));
    assert.equal(await Deno.readTextFile(join(dir, "abc.txt")), "already here");
    assert.equal(await Deno.readTextFile(path), "abcdefghijklmnopqrstuvwxyz");
  });
});

Deno.test("IncomingFile.openNow: a new .part is ready at once; one holding bytes waits for resume", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("abcdefghijklmnopqrstuvwxyz");
    const init = {
      dir,
      offeredName: "abc.txt",
      size: bytes.length,
      sha256: null,
      key: "k".repeat(64),
      hashing: false,
    };
    const fresh = IncomingFile.openNow(init);
    assert.equal(fresh.resuming, false);
    await fresh.write(0, bytes.subarray(0, 10));
    await fresh.close();
    const held = IncomingFile.openNow(init);
    assert.equal(held.resuming, true);
    assert.equal(held.offset, 0);
    await assert.rejects(held.write(0, bytes), RangeError); // would write over the held bytes
    await held.resume();
    assert.equal(held.resuming, false);
    assert.equal(held.offset, 10);
    assert.equal(held.resumedSha256, sha(bytes.subarray(0, 10)));
    await held.write(10, bytes.subarray(10));
    assert.equal(await Deno.readTextFile(await held.finish(null)), "abcdefghijklmnopqrstuvwxyz");
  });
});

Deno.test("hashPrefix stops at the next block once its signal is aborted; resume(signal) leaves the .part as it was", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
    const path = join(dir, "big.bin");
    await Deno.writeFile(path, bytes);
    using file = await Deno.open(path, { read: true });
    const stop = new AbortController();
    const blocks: number[] = [];
    const reason = new Error("stopped");
    const hashing = hashPrefix(file, createHash("sha256"), bytes.length, (hashed) => {
      blocks.push(hashed);
      if (blocks.length === 2) stop.abort(reason);
    }, stop.signal);
    await assert.rejects(hashing, (err) => err === reason);
    assert.equal(blocks.length, 2, "no block hashed after the abort");
    assert.ok(blocks[1] < bytes.length);
    // A resume stopped so: rejected with the reason, the .part file untouched.
    const init = { dir, offeredName: "big.bin", size: bytes.length, sha256: null, key: sha(bytes) };
    const fresh = IncomingFile.openNow(init);
    await fresh.write(0, bytes.subarray(0, 3 * 1024 * 1024));
    await fresh.close();
    const held = IncomingFile.openNow(init);
    assert.equal(held.resuming, true);
    const aborted = new AbortController();
    aborted.abort(reason);
    await assert.rejects(held.resume(aborted.signal), (err) => err === reason);
    assert.deepEqual(await Deno.readFile(held.partPath), bytes.subarray(0, 3 * 1024 * 1024));
  });
});

Deno.test("IncomingFile: a SHA-256 mismatch empties the .part file for a new start", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("right bytes");
    const incoming = await IncomingFile.open({
      dir,
      offeredName: "x",
      size: bytes.length,
      sha256: sha(bytes),
    });
    await incoming.write(0, encoder.encode("wrong bytes"));
    await assert.rejects(incoming.finish(), isCode("corrupt"));
    assert.equal(incoming.offset, 0);
    assert.equal((await Deno.stat(incoming.partPath)).size, 0);
    await incoming.write(0, bytes);
    assert.equal(await Deno.readTextFile(await incoming.finish()), "right bytes");
  });
});

Deno.test("IncomingFile: a .part file longer than announced starts over; a link is refused", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("tiny");
    const init = { dir, offeredName: "t", size: bytes.length, sha256: sha(bytes) };
    const partPath = join(dir, `t.${sha(bytes).slice(0, 16)}.part`);
    await Deno.writeTextFile(partPath, "much longer than four bytes");
    const incoming = await IncomingFile.open(init);
    assert.equal(incoming.offset, 0);
    await incoming.discard();
    if (Deno.build.os !== "windows") {
      await Deno.symlink(join(dir, "elsewhere"), partPath);
      await assert.rejects(IncomingFile.open(init), isCode("unwritable"));
      await assert.rejects(Deno.stat(join(dir, "elsewhere")), Deno.errors.NotFound);
    }
  });
});

Deno.test("IncomingFile creates a new .part file exclusively, looking nothing up; an existing one is looked at", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("0123456789");
    const init = { dir, offeredName: "n.bin", size: bytes.length, sha256: sha(bytes) };
    const lookups: string[] = [];
    const { lstatSync, statSync } = Deno;
    const fileStatSync = Deno.FsFile.prototype.statSync;
    Deno.lstatSync = (path) => (lookups.push(`lstat ${path}`), lstatSync(path));
    Deno.statSync = (path) => (lookups.push(`stat ${path}`), statSync(path));
    Deno.FsFile.prototype.statSync = function (this: Deno.FsFile) {
      lookups.push("fstat");
      return fileStatSync.call(this);
    };
    try {
      const first = await IncomingFile.open(init);
      assert.deepEqual(lookups, [], "a new .part file: no lookup");
      assert.equal(first.offset, 0);
      await first.write(0, bytes.subarray(0, 4));
      await first.close();
      const second = await IncomingFile.open(init);
      assert.ok(lookups.length >= 2, `an existing .part file is looked at: ${lookups}`);
      assert.equal(second.offset, 4);
      await second.write(4, bytes.subarray(4));
      assert.equal(await Deno.readTextFile(await second.finish()), "0123456789");
    } finally {
      Object.assign(Deno, { lstatSync, statSync });
      Deno.FsFile.prototype.statSync = fileStatSync;
    }
  });
});

Deno.test("claimFreeName takes the first free name and leaves existing files alone", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "r.pdf"), "1");
    await Deno.writeTextFile(join(dir, "r (1).pdf"), "2");
    if (Deno.build.os !== "windows") await Deno.symlink("/etc/passwd", join(dir, "r (2).pdf"));
    const path = await claimFreeName(dir, "r.pdf");
    assert.equal(path, join(dir, Deno.build.os !== "windows" ? "r (3).pdf" : "r (2).pdf"));
    assert.equal(await Deno.readTextFile(join(dir, "r.pdf")), "1");
  });
});

Deno.test("FileSource.openToStream reads nothing up front; hashPrefix hashes the start, then the rest can follow", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(700_000).map((_, i) => (i * 31) & 0xff);
    const path = join(dir, "f.bin");
    await Deno.writeFile(path, bytes);
    await using source = await FileSource.openToStream(path);
    assert.equal(source.sha256, null);
    assert.equal(source.size, bytes.length);
    const hash = await source.hashPrefix(300_001);
    assert.equal(hash.copy().digest("hex"), sha(bytes.subarray(0, 300_001)));
    hash.update(await source.read(300_001, bytes.length));
    assert.equal(hash.digest("hex"), sha(bytes));
    assert.equal((await source.hashPrefix(0)).digest("hex"), sha(new Uint8Array()));
    await assert.rejects(source.hashPrefix(bytes.length + 1), isCode("corrupt"));
  });
});

Deno.test("FileSource.readSync reads in place, in order or not, after a resume key or a hashed prefix; a file that shrank is corrupt", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(400_000).map((_, i) => (i * 13) & 0xff);
    const path = join(dir, "s.bin");
    await Deno.writeFile(path, bytes);
    await using source = await FileSource.openToStream(path);
    const buffer = new Uint8Array(150_000);
    const first = source.readSync(0, 150_000, buffer);
    assert.equal(first.buffer, buffer.buffer);
    assert.deepEqual(first, bytes.subarray(0, 150_000));
    // Straight on (no seek needed), then back, then past a resume key's samples.
    assert.deepEqual(source.readSync(150_000, 150_000, buffer), bytes.subarray(150_000, 300_000));
    assert.deepEqual(source.readSync(10, 20), bytes.subarray(10, 30));
    await source.resumeKey();
    assert.deepEqual(source.readSync(300_000, 150_000, buffer), bytes.subarray(300_000));
    await source.hashPrefix(123_456);
    assert.deepEqual(source.readSync(123_456, 5), bytes.subarray(123_456, 123_461));
    assert.equal(source.readSync(bytes.length, 10).length, 0);
    await Deno.truncate(path, 200_000);
    assert.throws(() => source.readSync(150_000, 100_000, buffer), isCode("corrupt"));
    // Where the failed read left the file is not trusted: the next read seeks.
    assert.deepEqual(source.readSync(0, 8), bytes.subarray(0, 8));
  });
});

Deno.test("FileSource.resumeKey: the same for the same content, another for another size, head or tail", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const keyOf = async (content: Uint8Array, name = "k.bin") => {
      const path = join(dir, name);
      await Deno.writeFile(path, content);
      await using source = await FileSource.openToStream(path);
      return await source.resumeKey();
    };
    const key = await keyOf(bytes);
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(await keyOf(bytes, "other name.bin"), key);
    const head = bytes.slice();
    head[10] ^= 1;
    const tail = bytes.slice();
    tail[bytes.length - 10] ^= 1;
    const middle = bytes.slice();
    middle[150_000] ^= 1; // not sampled: the final SHA-256 catches it
    assert.notEqual(await keyOf(head), key);
    assert.notEqual(await keyOf(tail), key);
    assert.notEqual(await keyOf(bytes.subarray(0, bytes.length - 1)), key);
    assert.equal(await keyOf(middle), key);
    assert.notEqual(await keyOf(new Uint8Array()), await keyOf(new Uint8Array(1)));
  });
});

Deno.test("IncomingFile without hashing: the resumed prefix's SHA-256, no check at finish, none after a restart", async () => {
  await withTempDir(async (dir) => {
    const bytes = encoder.encode("abcdefghijklmnopqrstuvwxyz");
    const init = {
      dir,
      offeredName: "abc.txt",
      size: bytes.length,
      sha256: null,
      key: sha(bytes),
      hashing: false,
    };
    const started = sha256Started();
    const first = await IncomingFile.open(init);
    assert.equal(first.resumedSha256, null, "nothing held yet");
    await first.write(0, bytes.subarray(0, 10));
    await first.close();
    assert.equal(sha256Started(), started, "no SHA-256 without a resumed prefix");
    const second = await IncomingFile.open(init);
    assert.equal(second.offset, 10);
    assert.equal(second.resumedSha256, sha(bytes.subarray(0, 10)));
    assert.equal(sha256Started(), started + 1, "one SHA-256, of the resumed prefix");
    await second.restart();
    assert.equal(second.resumedSha256, null);
    await second.write(0, bytes);
    const path = await second.finish(null);
    assert.equal(await Deno.readTextFile(path), "abcdefghijklmnopqrstuvwxyz");
    assert.equal(sha256Started(), started + 1, "none after the restart");
  });
});

Deno.test("IncomingFile syncs in the background as it is written, then renames the whole", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(1024 * 1024);
    for (let at = 0; at < bytes.length; at += 65536) {
      crypto.getRandomValues(bytes.subarray(at, at + 65536));
    }
    const open = () =>
      IncomingFile.open({
        dir,
        offeredName: "big.bin",
        size: bytes.length,
        sha256: sha(bytes),
        backgroundSyncBytes: 256 * 1024,
      });
    const incoming = await open();
    // Written in pieces without waiting: syncs start while later pieces are written.
    const writes = [];
    for (let at = 0; at < bytes.length; at += 64 * 1024) {
      writes.push(incoming.write(at, bytes.subarray(at, at + 64 * 1024)));
    }
    await Promise.all(writes);
    assert.ok(incoming.backgroundSyncs >= 1, `${incoming.backgroundSyncs} background syncs`);
    assert.ok(incoming.backgroundSyncs <= 4, `${incoming.backgroundSyncs} background syncs`);
    const path = await incoming.finish();
    assert.equal(sha(await Deno.readFile(path)), sha(bytes));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["big.bin"]);

    // Closed or discarded with a sync under way: its handle is let go, nothing is left.
    for (const end of ["close", "discard"] as const) {
      const again = await open();
      await again.write(0, bytes.subarray(0, 512 * 1024));
      assert.ok(again.backgroundSyncs >= 1);
      await again[end]();
      const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(
        left,
        end === "close" ? ["big.bin", again.partPath.split("/").pop()!] : [
          "big.bin",
        ],
      );
      if (end === "close") await Deno.remove(again.partPath);
    }
  });
});
