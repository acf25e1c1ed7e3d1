import assert from "node:assert/strict";
import { PeerError } from "./errors.ts";
import type { RecordAead } from "./record_aead.ts";
import { recordAead } from "./record_aead_choice.ts";
import { nodeRecordAead } from "./record_aead_node.ts";
import {
  type LibCrypto,
  LIBCRYPTO_PATHS,
  libcryptoNames,
  loadLibcrypto,
  loadOpenSslRecordAead,
  openSslRecordAead,
} from "./record_aead_openssl.ts";
import denoJson from "../deno.json" with { type: "json" };

const openssl = loadOpenSslRecordAead();
/** Both backends where libcrypto is present (this test runs with -A), else node's alone. */
const backends: RecordAead[] = openssl === null ? [nodeRecordAead] : [nodeRecordAead, openssl];

// RFC 8439, section 2.8.2.
const RFC_KEY = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
const RFC_NONCE = Uint8Array.fromHex("070000004041424344454647");
const RFC_AAD = Uint8Array.fromHex("50515253c0c1c2c3c4c5c6c7");
const RFC_TEXT = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the " +
    "future, sunscreen would be it.",
);
const RFC_CIPHERTEXT = Uint8Array.fromHex(
  "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb" +
    "69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fa" +
    "d675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
);
const RFC_TAG = Uint8Array.fromHex("1ae10b594f09e26a7e902ecbd0600691");

/** Seals `text` under `aead` in `pieces` (updates of those sizes), out of place. */
function seal(
  aead: RecordAead,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  text: Uint8Array,
  pieces: number[] = [text.length],
): { ciphertext: Uint8Array; tag: Uint8Array } {
  const sealer = aead.sealer(key);
  const ciphertext = new Uint8Array(text.length);
  const tag = new Uint8Array(16);
  sealer.begin(nonce, aad, text.length);
  let at = 0;
  for (const size of [...pieces, text.length]) {
    const end = Math.min(text.length, at + size);
    sealer.update(text.subarray(at, end), ciphertext.subarray(at, end));
    at = end;
  }
  sealer.finish(tag);
  return { ciphertext, tag };
}

/** Opens in place (a copy of `ciphertext`); the plaintext, or null when the tag fails. */
function open(
  aead: RecordAead,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
): Uint8Array | null {
  const opener = aead.opener(key);
  const bytes = ciphertext.slice();
  opener.begin(nonce, aad, bytes.length);
  opener.update(bytes, bytes);
  return opener.finish(tag) ? bytes : null;
}

Deno.test("this machine has libcrypto 3, so both backends are tested", () => {
  // The CI image is Debian; elsewhere the node backend is still tested alone.
  if (Deno.build.os === "linux") assert.ok(openssl !== null, "libcrypto.so.3 did not load");
});

Deno.test("the RFC 8439 AEAD vector, sealed and opened by each backend", () => {
  for (const aead of backends) {
    const { ciphertext, tag } = seal(aead, RFC_KEY, RFC_NONCE, RFC_AAD, RFC_TEXT, [7, 64, 1]);
    assert.deepEqual(ciphertext, RFC_CIPHERTEXT, aead.name);
    assert.deepEqual(tag, RFC_TAG, aead.name);
    assert.deepEqual(open(aead, RFC_KEY, RFC_NONCE, RFC_AAD, RFC_CIPHERTEXT, RFC_TAG), RFC_TEXT);
  }
});

Deno.test("what one backend seals the other opens, both ways, record after record", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const text = new Uint8Array(200_000);
  for (let at = 0; at < text.length; at += 65536) {
    crypto.getRandomValues(text.subarray(at, at + 65536));
  }
  for (const [from, to] of backends.flatMap((a) => backends.map((b) => [a, b] as const))) {
    // One sealer and one opener for several records, as a channel keeps them.
    const sealer = from.sealer(key);
    const opener = to.opener(key);
    for (let record = 0; record < 4; record++) {
      const nonce = new Uint8Array(12);
      nonce[11] = record;
      const aad = Uint8Array.of(0, 3, 13, record);
      const length = 50_000 * record + 3;
      const sealed = new Uint8Array(length);
      const tag = new Uint8Array(16);
      sealer.begin(nonce, aad, length);
      sealer.update(text.subarray(0, 1), sealed.subarray(0, 1));
      sealer.update(text.subarray(1, length), sealed.subarray(1, length));
      sealer.finish(tag);
      const opened = new Uint8Array(length);
      opener.begin(nonce, aad, length);
      opener.update(sealed, opened);
      assert.ok(opener.finish(tag), `${from.name} -> ${to.name}, record ${record}`);
      assert.deepEqual(opened, text.subarray(0, length));
    }
  }
});

Deno.test("a flipped bit of the ciphertext, the tag or the additional data is refused by each backend", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const aad = Uint8Array.of(0, 0, 1, 16);
  const text = crypto.getRandomValues(new Uint8Array(256));
  for (const aead of backends) {
    const { ciphertext, tag } = seal(aead, key, nonce, aad, text);
    assert.deepEqual(open(aead, key, nonce, aad, ciphertext, tag), text);
    const flipped = (bytes: Uint8Array, at: number) => {
      const copy = bytes.slice();
      copy[at] ^= 0x04;
      return copy;
    };
    assert.equal(open(aead, key, nonce, aad, flipped(ciphertext, 100), tag), null, aead.name);
    assert.equal(open(aead, key, nonce, aad, ciphertext, flipped(tag, 15)), null, aead.name);
    assert.equal(open(aead, key, nonce, flipped(aad, 3), ciphertext, tag), null, aead.name);
    assert.equal(open(aead, key, flipped(nonce, 0), aad, ciphertext, tag), null, aead.name);
  }
});

Deno.test("bad lengths are refused before any byte is written", () => {
  for (const aead of backends) {
    assert.throws(() => aead.sealer(new Uint8Array(16)), RangeError);
    const sealer = aead.sealer(new Uint8Array(32));
    assert.throws(() => sealer.begin(new Uint8Array(8), new Uint8Array(0), 1), RangeError);
    sealer.begin(new Uint8Array(12), new Uint8Array(0), 8);
    const output = new Uint8Array(4);
    assert.throws(() => sealer.update(new Uint8Array(8), output), RangeError, aead.name);
    assert.deepEqual(output, new Uint8Array(4));
    assert.throws(() => sealer.finish(new Uint8Array(8)), RangeError);
  }
});

Deno.test("openssl: no update past the record's announced length; a short record is refused", () => {
  if (openssl === null) return;
  const sealer = openssl.sealer(new Uint8Array(32));
  sealer.begin(new Uint8Array(12), new Uint8Array(0), 4);
  const bytes = new Uint8Array(8);
  assert.throws(() => sealer.update(bytes, bytes), /more bytes than the record's announced/);
  sealer.begin(new Uint8Array(12), new Uint8Array(0), 4);
  sealer.update(bytes.subarray(0, 2), bytes.subarray(0, 2));
  assert.throws(() => sealer.finish(new Uint8Array(16)), /ended before its announced length/);
  assert.throws(() => sealer.update(bytes, bytes), /update before begin/);
});

Deno.test("openssl: every call libcrypto refuses is crypto_failed, and nothing is returned", () => {
  const lib = loadLibcrypto(libcryptoNames(Deno.build.os));
  if (lib === null) return;
  const refusing = (name: keyof LibCrypto, at = 0) => {
    let calls = 0;
    // deno-lint-ignore no-explicit-any
    const real = lib[name] as (...args: any[]) => unknown;
    return openSslRecordAead({
      ...lib,
      // deno-lint-ignore no-explicit-any
      [name]: (...args: any[]) =>
        calls++ === at ? (name === "EVP_CIPHER_CTX_new" ? null : 0) : real(...args),
    })!;
  };
  const failsWithCryptoFailed = (work: () => unknown, what: string) =>
    assert.throws(work, (err) => err instanceof PeerError && err.code === "crypto_failed", what);
  const key = new Uint8Array(32);
  const nonce = new Uint8Array(12);
  const aad = new Uint8Array(4);
  const bytes = new Uint8Array(64);
  failsWithCryptoFailed(() => refusing("EVP_CIPHER_CTX_new").sealer(key), "new");
  failsWithCryptoFailed(() => refusing("EVP_CipherInit_ex").sealer(key), "init with the key");
  failsWithCryptoFailed(
    () => refusing("EVP_CipherInit_ex", 1).sealer(key).begin(nonce, aad, 64),
    "init with the nonce",
  );
  failsWithCryptoFailed(
    () => refusing("EVP_CipherUpdate").sealer(key).begin(nonce, aad, 64),
    "aad",
  );
  failsWithCryptoFailed(() => {
    const sealer = refusing("EVP_CipherUpdate", 1).sealer(key);
    sealer.begin(nonce, aad, 64);
    sealer.update(bytes, bytes);
  }, "update");
  for (const name of ["EVP_CipherFinal_ex", "EVP_CIPHER_CTX_ctrl"] as const) {
    failsWithCryptoFailed(() => {
      const sealer = refusing(name).sealer(key);
      sealer.begin(nonce, aad, 64);
      sealer.update(bytes, bytes);
      sealer.finish(new Uint8Array(16));
    }, name);
  }
  // Opening: a refused tag is crypto_failed; a final call's 0 is a tag that fails.
  const opening = (name: keyof LibCrypto) => {
    const opener = refusing(name).opener(key);
    opener.begin(nonce, aad, 64);
    opener.update(bytes, bytes);
    return opener.finish(new Uint8Array(16));
  };
  failsWithCryptoFailed(() => opening("EVP_CIPHER_CTX_ctrl"), "set tag");
  assert.equal(opening("EVP_CipherFinal_ex"), false);
  assert.equal(openSslRecordAead({ ...lib, EVP_chacha20_poly1305: () => null }), null);
});

Deno.test("no libcrypto under the names tried: no backend, quietly", () => {
  assert.equal(loadOpenSslRecordAead(["libcrypto-does-not-exist.so.3"]), null);
  assert.deepEqual(libcryptoNames("windows"), ["libcrypto-3-x64.dll"]);
  assert.deepEqual(libcryptoNames("linux"), [
    ...LIBCRYPTO_PATHS.filter((path) => path.endsWith(".so.3")),
    "libcrypto.so.3",
  ]);
  assert.deepEqual(libcryptoNames("darwin"), [
    "/opt/homebrew/lib/libcrypto.3.dylib",
    "/usr/local/lib/libcrypto.3.dylib",
    "libcrypto.3.dylib",
  ]);
});

Deno.test("the process's choice: openssl with FFI granted, node without it, and no prompt", async () => {
  assert.equal(recordAead().name, openssl === null ? "node" : "openssl");
  assert.equal(recordAead(), recordAead());
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/choice.ts`;
    const choice = new URL("./record_aead_choice.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { recordAead } from "${choice}"; console.log(recordAead().name);`,
    );
    const peerTask = (denoJson.tasks as Record<string, string>).peer!;
    const peerFfi = peerTask.split(/\s+/).filter((word) => word.startsWith("--allow-ffi"));
    const runs: [string[], string][] = [
      [[], "node"],
      [["--allow-ffi"], openssl?.name ?? "node"],
      // The peer task's (and the binary's) permission: libcrypto's paths only.
      [peerFfi, loadOpenSslRecordAead([...LIBCRYPTO_PATHS])?.name ?? "node"],
      // A library elsewhere than those paths is not loaded under that permission.
      [["--allow-ffi=/nonexistent/libcrypto.so.3"], "node"],
    ];
    for (const [flags, expected] of runs) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", ...flags, script],
        stdin: "null",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.equal(stderr, "");
      assert.equal(new TextDecoder().decode(out.stdout), `${expected}\n`, `${flags}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openssl: a cipher's context is freed once the cipher is unreachable", async () => {
  if (openssl === null) return;
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/free.ts`;
    const module = new URL("./record_aead_openssl.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { libcryptoNames, loadLibcrypto, openSslRecordAead } from "${module}";
      const lib = loadLibcrypto(libcryptoNames(Deno.build.os));
      let freed = 0;
      const aead = openSslRecordAead({
        ...lib,
        EVP_CIPHER_CTX_free: (ctx) => { freed++; lib.EVP_CIPHER_CTX_free(ctx); },
      });
      for (let i = 0; i < 50; i++) aead.sealer(new Uint8Array(32));
      for (let i = 0; i < 100 && freed === 0; i++) {
        globalThis.gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      console.log(freed);`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--allow-ffi", "--v8-flags=--expose-gc", script],
      stdin: "null",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const freed = Number(new TextDecoder().decode(out.stdout));
    assert.ok(freed > 0 && freed <= 50, `freed ${freed}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
