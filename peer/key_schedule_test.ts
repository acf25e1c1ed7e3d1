import assert from "node:assert/strict";
import {
  confirmationMac,
  deriveSessionSecrets,
  LABELS,
  transcriptHash,
  verifyConfirmation,
} from "./key_schedule.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("transcriptHash depends on order and on where one hello ends", async () => {
  const ab = await transcriptHash(enc("ab"), enc("c"));
  assert.equal(ab.length, 32);
  assert.deepEqual(await transcriptHash(enc("ab"), enc("c")), ab);
  assert.notDeepEqual(await transcriptHash(enc("a"), enc("bc")), ab);
  assert.notDeepEqual(await transcriptHash(enc("c"), enc("ab")), ab);
});

Deno.test("deriveSessionSecrets gives six different secrets, the same on both sides", async () => {
  const sharedSecret = crypto.getRandomValues(new Uint8Array(32));
  const th = crypto.getRandomValues(new Uint8Array(32));
  const a = await deriveSessionSecrets({ sharedSecret, transcriptHash: th });
  const b = await deriveSessionSecrets({ sharedSecret, transcriptHash: th });
  assert.deepEqual(a, b);
  const keys = [
    a.initiatorToResponder,
    a.responderToInitiator,
    a.confirmInitiator,
    a.confirmResponder,
  ];
  for (const key of keys) assert.equal(key.length, 32);
  const ivs = [a.ivInitiatorToResponder, a.ivResponderToInitiator];
  for (const iv of ivs) assert.equal(iv.length, 12);
  assert.equal(new Set([...keys, ...ivs].map((k) => k.toHex())).size, 6);
  assert.ok(sharedSecret.some((b) => b !== 0), "the caller's secret is left alone");
});

Deno.test("deriveSessionSecrets changes with the transcript and with a psk", async () => {
  const sharedSecret = crypto.getRandomValues(new Uint8Array(32));
  const th = crypto.getRandomValues(new Uint8Array(32));
  const base = await deriveSessionSecrets({ sharedSecret, transcriptHash: th });
  const emptyPsk = await deriveSessionSecrets({
    sharedSecret,
    transcriptHash: th,
    psk: new Uint8Array(0),
  });
  assert.deepEqual(emptyPsk, base);
  const withPsk = await deriveSessionSecrets({ sharedSecret, transcriptHash: th, psk: enc("x") });
  assert.notDeepEqual(withPsk.initiatorToResponder, base.initiatorToResponder);
  const otherTh = new Uint8Array(th);
  otherTh[0] ^= 1;
  const moved = await deriveSessionSecrets({ sharedSecret, transcriptHash: otherTh });
  assert.notDeepEqual(moved.initiatorToResponder, base.initiatorToResponder);
});

Deno.test("confirmation MACs verify under their key only", async () => {
  const th = crypto.getRandomValues(new Uint8Array(32));
  const { confirmInitiator, confirmResponder } = await deriveSessionSecrets({
    sharedSecret: crypto.getRandomValues(new Uint8Array(32)),
    transcriptHash: th,
  });
  const mac = await confirmationMac(confirmInitiator, th);
  assert.equal(mac.length, 32);
  assert.ok(await verifyConfirmation(confirmInitiator, th, mac));
  assert.ok(!await verifyConfirmation(confirmResponder, th, mac));
  const otherTh = new Uint8Array(th);
  otherTh[5] ^= 0x80;
  assert.ok(!await verifyConfirmation(confirmInitiator, otherTh, mac));
});

Deno.test("every label is distinct and versioned", () => {
  const labels = Object.values(LABELS);
  assert.equal(new Set(labels).size, labels.length);
  for (const label of labels) assert.ok(label.startsWith("chat-peer/3 "), label);
});

// Known answers of peer protocol version 3, computed independently of this code by
// peer/testdata/v3_vectors.py (python3 with the `cryptography` package's SHA-256, HKDF
// and HMAC).
Deno.test("the key schedule matches independently computed vectors", async () => {
  const th = await transcriptHash(enc("initiator hello"), enc("responder hello"));
  assert.equal(th.toHex(), "8ac15ebe2c2e1371305a6ae2ae3ecba1ecd95de373d97e65b3a565bc0fce7ef6");
  const sharedSecret = Uint8Array.from({ length: 32 }, (_, i) => i);
  const secrets = await deriveSessionSecrets({ sharedSecret, transcriptHash: th, psk: enc("psk") });
  const hex = Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, v.toHex()]));
  assert.deepEqual(hex, {
    initiatorToResponder: "3ab1e2566af9f32134e26a03bb53a52a641e21ec74c61000891337e691b0e274",
    responderToInitiator: "c36e4c8f5bd1e4d1b7e90539e2c82437ae82d7772b51d40c29583714c507d37c",
    ivInitiatorToResponder: "bf6766496c35fcaa794cdb0b",
    ivResponderToInitiator: "dc6a84117219a56f100343ef",
    confirmInitiator: "8675393ef124c4163c10560aefece031969848d0892ab41ce62a956acbe58124",
    confirmResponder: "f79159c0c314600869541833e8d200165ce9eeecf4c3f4c9eb8501fc664616ea",
  });
  const mac = await confirmationMac(secrets.confirmInitiator, th);
  assert.equal(mac.toHex(), "30d2af4a7e5739282da4ec4fc0b01c5a743d4022f8eb89415db6ca84c503d0c9");
});
