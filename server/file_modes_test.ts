import assert from "node:assert/strict";
import { join } from "node:path";
import { makePrivateDatabase, makePrivateDir, tighten } from "./file_modes.ts";

const POSIX = Deno.build.os !== "windows";

function mode(path: string): number {
  return Deno.statSync(path).mode! & 0o7777;
}

Deno.test({
  name: "file modes: private folders and databases; links followed only for folders",
  ignore: !POSIX,
  fn: async () => {
    const root = await Deno.makeTempDir();
    try {
      const real = join(root, "real");
      Deno.mkdirSync(real, { mode: 0o755 });
      Deno.chmodSync(real, 0o755);
      const link = join(root, "data");
      Deno.symlinkSync(real, link);
      makePrivateDir(link);
      assert.equal(mode(real), 0o700);

      const db = join(real, "chat.db");
      makePrivateDatabase(db);
      assert.equal(mode(db), 0o600);
      Deno.chmodSync(db, 0o644);
      Deno.writeTextFileSync(`${db}-wal`, "");
      Deno.chmodSync(`${db}-wal`, 0o664);
      makePrivateDatabase(db);
      assert.equal(mode(db), 0o600);
      assert.equal(mode(`${db}-wal`), 0o600);

      // A link among the files is not followed: its target is not the server's.
      const outside = join(root, "outside.txt");
      Deno.writeTextFileSync(outside, "not ours");
      Deno.chmodSync(outside, 0o644);
      Deno.symlinkSync(outside, join(real, "7.file"));
      assert.equal(tighten(join(real, "7.file"), 0o600), false);
      assert.equal(mode(outside), 0o644);

      // A shared folder (sticky bit, like /tmp) is left alone.
      const shared = join(root, "shared");
      Deno.mkdirSync(shared);
      Deno.chmodSync(shared, 0o1777);
      makePrivateDir(shared);
      assert.equal(mode(shared), 0o1777);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
