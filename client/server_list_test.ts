import assert from "node:assert/strict";
import {
  formatServerAddress,
  parseServerList,
  ServerListError,
  shuffleServers,
} from "./server_list.ts";

Deno.test("parseServerList: one host, a list with and without ports, IPv6 in brackets or bare", () => {
  assert.deepEqual(parseServerList("127.0.0.1", 44444), [{ host: "127.0.0.1", port: 44444 }]);
  assert.deepEqual(parseServerList(" a:1 , b ,[::1]:3,[fd00::5],::1", 9), [
    { host: "a", port: 1 },
    { host: "b", port: 9 },
    { host: "::1", port: 3 },
    { host: "fd00::5", port: 9 },
    { host: "::1", port: 9 },
  ]);
  assert.deepEqual(parseServerList("chat.example.org:65535", 1), [
    { host: "chat.example.org", port: 65535 },
  ]);
});

Deno.test("parseServerList refuses bad lists, naming the entry", () => {
  const bad: [string, RegExp][] = [
    ["", /no server address/],
    ["  ", /no server address/],
    ["a:1,,b:2", /entry 2 of "a:1,,b:2" is empty/],
    ["a:1,", /entry 2 of "a:1," is empty/],
    [",a", /entry 1 of ",a" is empty/],
    ["a:0", /"a:0": the port must be a number from 1 to 65535/],
    ["a:1,b:70000", /entry 2 \("b:70000"\): the port must be/],
    ["a:x", /the port must be/],
    ["a:", /the port must be/],
    ["a:-1", /the port must be/],
    [":44444", /no host/],
    ["[::1]:", /the port must be/],
    ["[::1", /expected \[IPV6\]:PORT/],
    ["[]:1", /expected \[IPV6\]:PORT/],
    ["nats://a:4222", /not a URL/],
    ["a b:1", /no spaces/],
    ["a:1,A:1", /entry 2 \("A:1"\) repeats entry 1 \(a:1\)/],
    ["a,a:44444", /repeats entry 1/],
  ];
  for (const [text, message] of bad) {
    assert.throws(
      () => parseServerList(text, 44444),
      (err: unknown) => err instanceof ServerListError && err.code === "bad_server_list",
      text,
    );
    assert.throws(() => parseServerList(text, 44444), message, text);
  }
});

Deno.test("formatServerAddress brackets IPv6; shuffleServers permutes a copy", () => {
  assert.equal(formatServerAddress({ host: "::1", port: 5 }), "[::1]:5");
  assert.equal(formatServerAddress({ host: "a", port: 5 }), "a:5");
  const list = [1, 2, 3, 4];
  // random() = 0 always picks the first remaining slot: a rotation-like permutation.
  assert.deepEqual(shuffleServers(list, () => 0), [2, 3, 4, 1]);
  assert.deepEqual(shuffleServers(list, () => 0.999), [1, 2, 3, 4]);
  assert.deepEqual(list, [1, 2, 3, 4]);
  assert.deepEqual(shuffleServers(list).sort(), [1, 2, 3, 4]);
});
