import assert from "node:assert/strict";
import { hashPassword, PasswordHashError, verifyPassword } from "./password.ts";

const cost = 1 << 10;

Deno.test("password: hash then verify round-trips", async () => {
  const encoded = await hashPassword("correct horse battery", { cost });
  assert.equal(await verifyPassword("correct horse battery", encoded), true);
});

Deno.test("password: a wrong password does not verify", async () => {
  const encoded = await hashPassword("correct horse battery", { cost });
  assert.equal(await verifyPassword("correct horse batterY", encoded), false);
  assert.equal(await verifyPassword("", encoded), false);
});

Deno.test("password: the encoding carries scheme, parameters, salt and hash", async () => {
  const encoded = await hashPassword("secret-secret", { cost });
  const parts = encoded.split("$");
  assert.equal(parts.length, 6);
  assert.deepEqual(parts.slice(0, 4), ["scrypt", "1024", "8", "1"]);
  assert.equal(atob(parts[4]).length, 16);
  assert.equal(atob(parts[5]).length, 32);
});

Deno.test("password: each hash gets its own salt", async () => {
  const a = await hashPassword("same password", { cost });
  const b = await hashPassword("same password", { cost });
  assert.notEqual(a, b);
  assert.notEqual(a.split("$")[4], b.split("$")[4]);
  assert.equal(await verifyPassword("same password", a), true);
  assert.equal(await verifyPassword("same password", b), true);
});

Deno.test("password: the cost parameter is honoured and travels with the hash", async () => {
  const low = await hashPassword("pw-pw-pw-pw", { cost: 1 << 4 });
  const high = await hashPassword("pw-pw-pw-pw", { cost: 1 << 11 });
  assert.equal(low.split("$")[1], "16");
  assert.equal(high.split("$")[1], "2048");
  // Changing N in the encoding changes the derived key: the stored N is used.
  const tampered = low.replace(/^scrypt\$16\$/, "scrypt$32$");
  assert.equal(await verifyPassword("pw-pw-pw-pw", tampered), false);
  assert.equal(await verifyPassword("pw-pw-pw-pw", low), true);
});

Deno.test("password: the default cost is 2^15", async () => {
  const encoded = await hashPassword("default cost");
  assert.equal(encoded.split("$")[1], String(1 << 15));
  assert.equal(await verifyPassword("default cost", encoded), true);
});

Deno.test("password: passwords are compared after NFC normalization", async () => {
  const encoded = await hashPassword("caf\u00e9-password", { cost });
  assert.equal(await verifyPassword("cafe\u0301-password", encoded), true);
});

Deno.test("password: a bad cost is refused with a clear error", async () => {
  for (const bad of [0, 1, 3, 1000, 1.5, -2, 1 << 21, NaN]) {
    await assert.rejects(
      hashPassword("pw", { cost: bad }),
      (err: unknown) => err instanceof PasswordHashError && err.code === "bad_cost",
      `cost ${bad}`,
    );
  }
});

Deno.test("password: a malformed stored hash throws malformed_hash", async () => {
  const good = await hashPassword("pw-pw-pw-pw", { cost });
  const [, n, r, p, salt, hash] = good.split("$");
  const bad = [
    "",
    "plain-text-password",
    `bcrypt$${n}$${r}$${p}$${salt}$${hash}`,
    `scrypt$${n}$${r}$${p}$${salt}`,
    `scrypt$1000$${r}$${p}$${salt}$${hash}`,
    `scrypt$${1 << 24}$${r}$${p}$${salt}$${hash}`,
    `scrypt$${n}$0$${p}$${salt}$${hash}`,
    `scrypt$${n}$${r}$99$${salt}$${hash}`,
    `scrypt$${n}$${r}$${p}$not base64!$${hash}`,
    `scrypt$${n}$${r}$${p}$${salt}$AAAA`,
    `scrypt$${n}$${r}$${p}$${salt}$${hash}$extra`,
    `scrypt$0x400$${r}$${p}$${salt}$${hash}`,
  ];
  for (const encoded of bad) {
    await assert.rejects(
      verifyPassword("pw-pw-pw-pw", encoded),
      (err: unknown) =>
        err instanceof PasswordHashError && err.code === "malformed_hash" &&
        err.message.startsWith("stored password hash is malformed"),
      encoded,
    );
  }
});
