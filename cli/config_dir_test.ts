import assert from "node:assert/strict";
import { userConfigDir } from "./config_dir.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("userConfigDir: XDG_CONFIG_HOME wins on every platform when absolute", () => {
  assert.equal(userConfigDir(env({ XDG_CONFIG_HOME: "/x", HOME: "/h" }), "linux"), "/x/chat");
  assert.equal(userConfigDir(env({ XDG_CONFIG_HOME: "/x", HOME: "/h" }), "darwin"), "/x/chat");
  assert.equal(
    userConfigDir(env({ XDG_CONFIG_HOME: "D:\\cfg", APPDATA: "C:\\a" }), "windows"),
    "D:\\cfg\\chat",
  );
});

Deno.test("userConfigDir: the platform's folder otherwise", () => {
  assert.equal(userConfigDir(env({ HOME: "/home/ada" }), "linux"), "/home/ada/.config/chat");
  assert.equal(userConfigDir(env({ HOME: "/home/ada" }), "freebsd"), "/home/ada/.config/chat");
  assert.equal(
    userConfigDir(env({ HOME: "/Users/ada" }), "darwin"),
    "/Users/ada/Library/Application Support/chat",
  );
  assert.equal(
    userConfigDir(env({ APPDATA: "C:\\Users\\ada\\AppData\\Roaming", HOME: "/h" }), "windows"),
    "C:\\Users\\ada\\AppData\\Roaming\\chat",
  );
});

Deno.test("userConfigDir: a relative XDG_CONFIG_HOME is ignored; no home is null", () => {
  assert.equal(
    userConfigDir(env({ XDG_CONFIG_HOME: "cfg", HOME: "/home/ada" }), "linux"),
    "/home/ada/.config/chat",
  );
  assert.equal(userConfigDir(env({}), "linux"), null);
  assert.equal(userConfigDir(env({ HOME: "" }), "darwin"), null);
  assert.equal(userConfigDir(env({ HOME: "/h" }), "windows"), null);
});
