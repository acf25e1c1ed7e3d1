import assert from "node:assert/strict";
import {
  binaryPermissionFlags,
  mergePermissionFlags,
  NOT_IN_BINARY,
  PermissionFlagError,
  permissionFlags,
} from "./permissions.ts";
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
      if (NOT_IN_BINARY.includes(name!)) continue;
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

Deno.test("the peer task may load OpenSSL (--allow-ffi), the binary and the other tasks may not", () => {
  const tasks = denoJson.tasks as Record<string, string>;
  assert.ok(permissionFlags(tasks.peer!).includes("--allow-ffi"));
  for (const mode of ["serve", "connect"]) {
    assert.ok(!permissionFlags(tasks[mode]!).some((f) => f.startsWith("--allow-ffi")), mode);
  }
  assert.ok(!binaryPermissionFlags(tasks).some((f) => f.startsWith("--allow-ffi")));
  assert.deepEqual(
    binaryPermissionFlags({ serve: "deno run --allow-ffi=x.so", connect: "deno run", peer: "" }),
    [],
  );
});
