import assert from "node:assert/strict";
import {
  binaryPermissionFlags,
  mergePermissionFlags,
  PermissionFlagError,
  permissionFlags,
} from "./permissions.ts";
import { LIBCRYPTO_PATHS } from "../peer/record_aead_openssl.ts";
import denoJson from "../deno.json" with { type: "json" };

Deno.test("permissionFlags picks the --allow-* words of a command", () => {
  assert.deepEqual(
    permissionFlags("deno run --allow-net --allow-sys=networkInterfaces main.ts serve --port 1"),
    ["--allow-net", "--allow-sys=networkInterfaces"],
  );
  assert.deepEqual(permissionFlags("deno run main.ts"), []);
});

Deno.test("mergePermissionFlags unites lists and lets a bare flag win", () => {
  assert.deepEqual(
    mergePermissionFlags(
      ["--allow-env=B,A", "--allow-net=x:1", "--allow-read"],
      ["--allow-env=A,C", "--allow-net", "--allow-read=/tmp"],
    ),
    ["--allow-env=A,B,C", "--allow-net", "--allow-read"],
  );
  assert.throws(() => mergePermissionFlags(["--allow-env="]), PermissionFlagError);
  assert.throws(() => mergePermissionFlags(["-A"]), PermissionFlagError);
});

Deno.test("binaryPermissionFlags covers every mode task of deno.json and never -A", () => {
  const flags = binaryPermissionFlags(denoJson.tasks);
  for (const mode of ["serve", "connect", "peer"]) {
    const task = (denoJson.tasks as Record<string, string>)[mode]!;
    for (const flag of permissionFlags(task)) {
      const [name, list] = flag.split("=");
      const merged = flags.find((f) => f === name || f.startsWith(`${name}=`));
      assert.ok(merged !== undefined, `${flag} of ${mode} is missing`);
      if (list !== undefined && merged.includes("=")) {
        const have = merged.split("=")[1]!.split(",");
        for (const item of list.split(",")) assert.ok(have.includes(item), `${item} missing`);
      }
    }
  }
  assert.ok(!flags.includes("--allow-all"));
  assert.throws(() => binaryPermissionFlags({ serve: "deno run main.ts" }), /no "connect" task/);
});

Deno.test("the peer task and the binary may load libcrypto and nothing else; the other tasks nothing", () => {
  const tasks = denoJson.tasks as Record<string, string>;
  const listed = (flags: string[]) =>
    flags.filter((f) => f.startsWith("--allow-ffi")).map((f) => f.split("=")[1]?.split(",").sort());
  assert.deepEqual(listed(permissionFlags(tasks.peer!)), [[...LIBCRYPTO_PATHS].sort()]);
  assert.deepEqual(listed(binaryPermissionFlags(tasks)), [[...LIBCRYPTO_PATHS].sort()]);
  for (const mode of ["serve", "connect"]) {
    assert.deepEqual(listed(permissionFlags(tasks[mode]!)), [], mode);
  }
  for (const serve of ["deno run --allow-ffi", "deno run --allow-ffi=x.so --allow-ffi"]) {
    assert.throws(
      () =>
        binaryPermissionFlags({ serve, connect: "deno run", peer: "deno run --allow-ffi=y.so" }),
      (err: unknown) =>
        err instanceof PermissionFlagError && /--allow-ffi without a list/.test(err.message),
    );
  }
});
