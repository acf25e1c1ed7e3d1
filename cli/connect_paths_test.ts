import assert from "node:assert/strict";
import { userFolder, userPath } from "./connect_paths.ts";

Deno.test("relative paths resolve against INIT_CWD when it is absolute", () => {
  assert.equal(userFolder((n) => ({ INIT_CWD: "/home/ada/x" })[n]), "/home/ada/x");
  assert.equal(userFolder((n) => ({ INIT_CWD: "rel" })[n]), null);
  assert.equal(userFolder(() => undefined), null);
  assert.equal(userPath("a/b.txt", "/home/ada"), "/home/ada/a/b.txt");
  assert.equal(userPath("../b.txt", "/home/ada/x"), "/home/ada/b.txt");
  assert.equal(userPath("/abs/b.txt", "/home/ada"), "/abs/b.txt");
  assert.equal(userPath("b.txt", null), "b.txt");
});
