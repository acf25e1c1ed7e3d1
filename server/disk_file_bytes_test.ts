import assert from "node:assert/strict";
import { DiskFileBytes } from "./disk_file_bytes.ts";
import { fileBytesConformance } from "./file_bytes_conformance.ts";

Deno.test("DiskFileBytes conforms: <id>.part while uploading, <id>.file once complete", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = new DiskFileBytes(dir);
    assert.equal(bytes.pollMs, null, "only this server writes: its readers are woken");
    await fileBytesConformance(bytes);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["3.file"]);
    await bytes.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
