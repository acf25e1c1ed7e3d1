/**
 * The README's table of `chat connect` commands says what the slash-command table
 * (client/commands.ts, from which `/help` is generated) says: the same commands in the
 * same order, with the same arguments, other spellings and summaries; and the quick start
 * installs the dependencies before the first task.
 */

import assert from "node:assert/strict";
import { type CommandAlias, COMMANDS } from "../client/commands.ts";

function aliasText(alias: CommandAlias): string {
  return typeof alias === "string"
    ? `/${alias}`
    : `/${alias.name}${alias.args ? ` ${alias.args}` : ""}`;
}

Deno.test("the README's command table matches the slash-command table", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("\n## Client\n"), readme.indexOf("\n## Peer\n"));
  const rows = section.split("\n").filter((line) => line.startsWith("| `/")).map((line) =>
    line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll("\\|", "|"))
  );
  const code = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  const documented = rows.map(([usage, also, summary]) => ({
    usage: code(usage!)[0],
    also: code(also!),
    summary,
  }));
  const table = COMMANDS.map((spec) => ({
    usage: `/${spec.name}${spec.args ? ` ${spec.args}` : ""}`,
    also: spec.aliases.map(aliasText),
    summary: spec.summary,
  }));
  assert.deepEqual(
    documented,
    table,
    "README.md's Client section is out of step with COMMANDS in client/commands.ts",
  );
});

Deno.test("the quick start fetches the npm packages before the first task runs", async () => {
  // Deno draws its download progress over the program's first lines (the server's
  // `connect with:`, the password prompt) when a task downloads them while running.
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const quickStart = readme.slice(readme.indexOf("\n## Quick start"), readme.indexOf("\n## Tests"));
  const commands = [...quickStart.matchAll(/^npx -y deno@[\d.]+ (\w+)/gm)].map((m) => m[1]);
  assert.ok(commands.length > 1, quickStart);
  assert.equal(commands[0], "install", `the first command is ${commands[0]}: ${commands}`);
});
